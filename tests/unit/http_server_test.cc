#include "exporter/http/http_server.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <zlib.h>

namespace meshflow {
namespace {

std::string Gunzip(const std::string& data) {
  z_stream zs{};
  EXPECT_EQ(inflateInit2(&zs, 15 + 16), Z_OK);
  std::string out(1 << 20, '\0');
  zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(data.data()));
  zs.avail_in = static_cast<uInt>(data.size());
  zs.next_out = reinterpret_cast<Bytef*>(out.data());
  zs.avail_out = static_cast<uInt>(out.size());
  EXPECT_EQ(inflate(&zs, Z_FINISH), Z_STREAM_END);
  out.resize(zs.total_out);
  inflateEnd(&zs);
  return out;
}

TEST(Gzip, RoundTrips) {
  std::string text;
  for (int i = 0; i < 1000; ++i)
    text += "meshflow_flow_bytes_total{role=\"redis\"} " + std::to_string(i) + "\n";
  const auto packed = GzipCompress(text);
  EXPECT_LT(packed.size(), text.size() / 5);
  EXPECT_EQ(Gunzip(packed), text);
}

TEST(AcceptsGzip, FollowsQualityValues) {
  EXPECT_TRUE(AcceptsGzip("gzip"));
  EXPECT_TRUE(AcceptsGzip("deflate, gzip;q=0.5"));
  EXPECT_TRUE(AcceptsGzip("GZIP"));
  EXPECT_TRUE(AcceptsGzip("*"));
  EXPECT_FALSE(AcceptsGzip(""));
  EXPECT_FALSE(AcceptsGzip("identity"));
  EXPECT_FALSE(AcceptsGzip("gzip;q=0"));
  EXPECT_FALSE(AcceptsGzip("gzipx"));
}

TEST(HttpRequest, QueryValuesAreDecodedAndRepeatable) {
  HttpRequest r;
  r.query = "match%5B%5D=up&x=1&match[]=%7Bjob%3D%22a%22%7D&target=node+1";
  EXPECT_THAT(r.QueryValues("match[]"), ::testing::ElementsAre("up", "{job=\"a\"}"));
  EXPECT_EQ(r.QueryValue("target"), "node 1");
  EXPECT_FALSE(r.QueryValue("missing"));
  r.headers = {{"Accept-Encoding", "gzip"}};
  EXPECT_EQ(r.Header("accept-encoding"), "gzip");
}

TEST(ListenAddress, TranslatesExporterToolkitSyntax) {
  EXPECT_EQ(HttpServer::ToCivetwebPorts({":9474"}), "9474");
  EXPECT_EQ(HttpServer::ToCivetwebPorts({"127.0.0.1:0", "localhost:9"}), "127.0.0.1:0,127.0.0.1:9");
  EXPECT_EQ(HttpServer::ToCivetwebPorts({":9474"}, true), "9474s");
  EXPECT_THROW(HttpServer::ToCivetwebPorts({"host.example:1"}), std::invalid_argument);
  EXPECT_THROW(HttpServer::ToCivetwebPorts({":70000"}), std::invalid_argument);
  EXPECT_THROW(HttpServer::ToCivetwebPorts({"1.2.3.4"}), std::invalid_argument);
  EXPECT_THROW(HttpServer::ToCivetwebPorts({}), std::invalid_argument);
}

}  // namespace
}  // namespace meshflow
