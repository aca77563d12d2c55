#include "common/web/web_config.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <string>

#include "common/core/config_reader.h"

namespace meshflow::web {
namespace {

using ::testing::HasSubstr;

constexpr char kHash[] = "$2b$04$hWnW5P6bjIh0g9PTnF3fpeXVaEIRN4P0uhbZ3cBNlA8pNRfcuKj6G";

std::string ErrorOf(const std::string& text) {
  try {
    ParseWebConfig(text, "/etc/meshflow/web.yml");
  } catch (const ConfigError& e) {
    return e.what();
  }
  return "";
}

TEST(WebConfigTest, EmptyFileMeansPlainHttpWithoutAuth) {
  const WebConfig c = ParseWebConfig("", "web.yml");
  EXPECT_FALSE(c.tls);
  EXPECT_TRUE(c.basic_auth_users.empty());
}

TEST(WebConfigTest, ParsesTheExporterToolkitFormat) {
  const WebConfig c = ParseWebConfig(std::string(R"(
tls_server_config:
  cert_file: tls/server.crt
  key_file: /etc/ssl/private/server.key
  client_auth_type: RequireAndVerifyClientCert
  client_ca_file: ca.crt
  min_version: TLS13
http_server_config:
  http2: false
basic_auth_users:
  prometheus: ')") + kHash + "'\n",
                                     "/etc/meshflow/web.yml");
  ASSERT_TRUE(c.tls);
  // Relative paths are relative to the web config file, absolute ones stay.
  EXPECT_EQ(c.tls->cert_file, "/etc/meshflow/tls/server.crt");
  EXPECT_EQ(c.tls->key_file, "/etc/ssl/private/server.key");
  EXPECT_EQ(c.tls->client_ca_file, "/etc/meshflow/ca.crt");
  EXPECT_EQ(c.tls->client_auth, ClientAuth::kRequireAndVerifyClientCert);
  EXPECT_EQ(c.tls->min_version, TlsVersion::kTls13);
  EXPECT_FALSE(c.tls->max_version);
  ASSERT_EQ(c.basic_auth_users.size(), 1u);
  EXPECT_EQ(c.basic_auth_users.at("prometheus"), kHash);
}

TEST(WebConfigTest, EveryBrokenSectionAndUserIsReported) {
  const std::string e = ErrorOf(
      "tls_server_config: {cert_fil: x}\n"
      "http_server_config: {http2: true}\n"
      "basic_auth_users:\n"
      "  ok: " +
      std::string(kHash) +
      "\n"
      "  a: plain\n"
      "  b: plain\n");
  EXPECT_THAT(e, HasSubstr("/etc/meshflow/web.yml:1:"));
  EXPECT_THAT(e, HasSubstr("tls_server_config.cert_fil"));
  EXPECT_THAT(e, HasSubstr("/etc/meshflow/web.yml:2:"));
  EXPECT_THAT(e, HasSubstr("/etc/meshflow/web.yml:5:"));
  EXPECT_THAT(e, HasSubstr("/etc/meshflow/web.yml:6:"));
  EXPECT_EQ(std::count(e.begin(), e.end(), '\n'), 3) << e;
}

TEST(WebConfigTest, DefaultsAreTls12WithoutClientCertificates) {
  const WebConfig c = ParseWebConfig("tls_server_config: {cert_file: a, key_file: b}\n", "w.yml");
  ASSERT_TRUE(c.tls);
  EXPECT_EQ(c.tls->min_version, TlsVersion::kTls12);
  EXPECT_EQ(c.tls->client_auth, ClientAuth::kNoClientCert);
  EXPECT_EQ(c.tls->cert_file, "a");
}

TEST(WebConfigTest, MissingKeyFileNamesFileLineAndField) {
  const std::string e = ErrorOf("tls_server_config:\n  cert_file: a.crt\n");
  EXPECT_THAT(e, HasSubstr("/etc/meshflow/web.yml:2:"));
  EXPECT_THAT(e, HasSubstr("tls_server_config.key_file"));
}

TEST(WebConfigTest, EmptyFilePathIsALocatedError) {
  // A tag alone ("!x") makes an empty scalar, not a null: it must not pass as a file name.
  const std::string e = ErrorOf("tls_server_config:\n  cert_file: !x\n  key_file: k.key\n");
  EXPECT_THAT(e, HasSubstr("/etc/meshflow/web.yml:2:"));
  EXPECT_THAT(e, HasSubstr("tls_server_config.cert_file: expected a file path"));
}

TEST(WebConfigTest, VerifyingClientCertificatesNeedsACa) {
  const std::string e = ErrorOf(
      "tls_server_config:\n  cert_file: a\n  key_file: b\n"
      "  client_auth_type: RequireAndVerifyClientCert\n");
  EXPECT_THAT(e, HasSubstr(":4:"));
  EXPECT_THAT(e, HasSubstr("client_ca_file"));
}

TEST(WebConfigTest, RefusesWhatItWouldSilentlyIgnore) {
  EXPECT_THAT(ErrorOf("tls_server_config:\n  cert_file: a\n  key_file: b\n"
                      "  cipher_suites: [TLS_AES_128_GCM_SHA256]\n"),
              HasSubstr("tls_server_config.cipher_suites"));
  EXPECT_THAT(ErrorOf("http_server_config:\n  http2: true\n"), HasSubstr("http2"));
  EXPECT_THAT(ErrorOf("basic_auth_user:\n  a: b\n"), HasSubstr("unknown key"));
}

TEST(WebConfigTest, RefusesBadVersions) {
  EXPECT_THAT(ErrorOf("tls_server_config: {cert_file: a, key_file: b, min_version: TLS14}\n"),
              HasSubstr("TLS10, TLS11, TLS12, TLS13"));
  EXPECT_THAT(ErrorOf("tls_server_config:\n  cert_file: a\n  key_file: b\n"
                      "  min_version: TLS13\n  max_version: TLS12\n"),
              HasSubstr(":5:"));
}

TEST(WebConfigTest, RefusesPlainPasswordsAndOtherHashes) {
  const std::string e = ErrorOf("basic_auth_users:\n  alice: hunter2\n");
  EXPECT_THAT(e, HasSubstr(":2:"));
  EXPECT_THAT(e, HasSubstr("basic_auth_users.alice"));
  EXPECT_THAT(e, HasSubstr("bcrypt"));
  EXPECT_THAT(ErrorOf("basic_auth_users:\n  alice: '$6$salt$abcdef'\n"), HasSubstr("bcrypt"));
  EXPECT_THAT(ErrorOf("basic_auth_users:\n  alice:\n"), HasSubstr("basic_auth_users.alice"));
  EXPECT_THAT(ErrorOf("basic_auth_users: [alice]\n"), HasSubstr("mapping"));
  EXPECT_THAT(ErrorOf(std::string("basic_auth_users:\n  'a:b': '") + kHash + "'\n"),
              HasSubstr("without ':'"));
}

TEST(WebConfigTest, AcceptsAllBcryptPrefixes) {
  std::string hash = kHash;
  for (const char* prefix : {"$2a$", "$2b$", "$2y$"}) {
    hash.replace(0, 4, prefix);
    EXPECT_EQ(ErrorOf("basic_auth_users:\n  alice: '" + hash + "'\n"), "") << prefix;
  }
}

TEST(WebConfigTest, InvalidYamlIsALocatedError) {
  EXPECT_THAT(ErrorOf("tls_server_config: [\n"), HasSubstr("/etc/meshflow/web.yml:"));
}

}  // namespace
}  // namespace meshflow::web
