#include "common/web/web_config_watcher.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>

#include "common/core/config_reader.h"
#include "common/web/tls_context.h"
#include "tests/web/test_certs.h"

namespace meshflow::web {
namespace {

using ::testing::HasSubstr;
using testing::MakeTempDir;
using testing::RemoveTree;
using testing::WriteFile;
using testing::WriteSelfSignedCert;

constexpr char kHash[] = "$2b$04$hWnW5P6bjIh0g9PTnF3fpeXVaEIRN4P0uhbZ3cBNlA8pNRfcuKj6G";
constexpr char kAliceRight[] = "Basic YWxpY2U6czNjcmV0";  // alice:s3cret
constexpr char kBobRight[] = "Basic Ym9iOnMzY3JldA==";    // bob:s3cret

class WebConfigWatcherTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = MakeTempDir();
    ASSERT_FALSE(dir_.empty());
    path_ = dir_ + "/web.yml";
    ASSERT_TRUE(WriteSelfSignedCert(dir_ + "/server.crt", dir_ + "/server.key", "localhost"));
    ASSERT_TRUE(WriteSelfSignedCert(dir_ + "/other.crt", dir_ + "/other.key", "other"));
  }
  void TearDown() override { RemoveTree(dir_); }

  static std::string Users(const std::string& user) {
    return "basic_auth_users:\n  " + user + ": '" + kHash + "'\n";
  }
  static std::string Tls(const std::string& extra = "") {
    return "tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n" + extra;
  }

  double Sample(const std::vector<prometheus::MetricFamily>& families, const std::string& name,
                const std::string& label_value = "") {
    for (const auto& f : families) {
      if (f.name != name) continue;
      for (const auto& m : f.metric) {
        if (!label_value.empty() && (m.label.empty() || m.label[0].value != label_value)) continue;
        return f.type == prometheus::MetricType::Counter ? m.counter.value : m.gauge.value;
      }
    }
    ADD_FAILURE() << "no sample " << name << " " << label_value;
    return -1;
  }

  std::string dir_;
  std::string path_;
};

TEST_F(WebConfigWatcherTest, WithoutAFileEverythingIsAllowed) {
  WebConfigWatcher w("");
  EXPECT_TRUE(w.Authorize(std::nullopt));
  EXPECT_FALSE(w.Current()->config.tls);
  EXPECT_EQ(w.Poll(), WebConfigWatcher::Change::kNone);
}

TEST_F(WebConfigWatcherTest, BrokenFileAtStartupIsAnError) {
  WriteFile(path_, "basic_auth_users:\n  alice: plain\n");
  EXPECT_THROW(WebConfigWatcher w(path_), ConfigError);
  EXPECT_THROW(WebConfigWatcher w(dir_ + "/missing.yml"), ConfigError);
}

TEST_F(WebConfigWatcherTest, UnloadableCertificateAtStartupIsAnError) {
  WriteFile(path_, "tls_server_config:\n  cert_file: server.crt\n  key_file: other.key\n");
  try {
    WebConfigWatcher w(path_);
    FAIL() << "mismatched key accepted";
  } catch (const ConfigError& e) {
    EXPECT_THAT(e.what(), HasSubstr("does not match"));
  }
}

TEST_F(WebConfigWatcherTest, NewUsersApplyWithoutRestartingTheListener) {
  WriteFile(path_, Users("alice"));
  WebConfigWatcher w(path_);
  EXPECT_TRUE(w.Authorize(kAliceRight));
  EXPECT_FALSE(w.Authorize(kBobRight));
  EXPECT_EQ(w.Poll(), WebConfigWatcher::Change::kNone);

  WriteFile(path_, Users("bob"));
  EXPECT_EQ(w.Poll(), WebConfigWatcher::Change::kAuth);
  EXPECT_FALSE(w.Authorize(kAliceRight));
  EXPECT_TRUE(w.Authorize(kBobRight));
  EXPECT_EQ(w.Poll(), WebConfigWatcher::Change::kNone);

  std::vector<prometheus::MetricFamily> out;
  w.Collect(out);
  EXPECT_EQ(Sample(out, "meshflow_web_config_reloads_total", "success"), 1);
  EXPECT_EQ(Sample(out, "meshflow_web_auth_failures_total"), 2);
  EXPECT_EQ(Sample(out, "meshflow_web_config_last_reload_success"), 1);
  EXPECT_EQ(Sample(out, "meshflow_web_tls_enabled"), 0);
}

TEST_F(WebConfigWatcherTest, BrokenChangeKeepsTheLastGoodConfig) {
  WriteFile(path_, Users("alice"));
  WebConfigWatcher w(path_);
  WriteFile(path_, "basic_auth_users:\n  bob: not-a-hash\n");
  EXPECT_EQ(w.Poll(), WebConfigWatcher::Change::kRejected);
  EXPECT_TRUE(w.Authorize(kAliceRight));
  // Reported once, not at every poll.
  EXPECT_EQ(w.Poll(), WebConfigWatcher::Change::kNone);
  std::vector<prometheus::MetricFamily> out;
  w.Collect(out);
  EXPECT_EQ(Sample(out, "meshflow_web_config_last_reload_success"), 0);
  EXPECT_EQ(Sample(out, "meshflow_web_config_reloads_total", "failure"), 1);

  WriteFile(path_, Users("bob"));
  EXPECT_EQ(w.Poll(), WebConfigWatcher::Change::kAuth);
  EXPECT_TRUE(w.Authorize(kBobRight));
  out.clear();
  w.Collect(out);
  EXPECT_EQ(Sample(out, "meshflow_web_config_last_reload_success"), 1);
}

TEST_F(WebConfigWatcherTest, DeletedFileKeepsTheLastGoodConfig) {
  WriteFile(path_, Users("alice"));
  WebConfigWatcher w(path_);
  std::filesystem::remove(path_);
  EXPECT_EQ(w.Poll(), WebConfigWatcher::Change::kRejected);
  EXPECT_FALSE(w.Authorize(std::nullopt));
  EXPECT_TRUE(w.Authorize(kAliceRight));
}

TEST_F(WebConfigWatcherTest, TlsChangesAskForAListenerRestart) {
  WriteFile(path_, Tls());
  WebConfigWatcher w(path_);
  ASSERT_TRUE(w.Current()->config.tls);
  EXPECT_EQ(w.Current()->config.tls->cert_file, dir_ + "/server.crt");

  WriteFile(path_, Tls("  min_version: TLS13\n"));
  EXPECT_EQ(w.Poll(), WebConfigWatcher::Change::kTls);
  EXPECT_EQ(w.Current()->config.tls->min_version, TlsVersion::kTls13);

  // A renewed certificate under the same name (cert-manager, certbot) restarts the listener
  // too, although the web config file itself did not change.
  ASSERT_TRUE(WriteSelfSignedCert(dir_ + "/new.crt", dir_ + "/new.key", "localhost"));
  std::filesystem::rename(dir_ + "/new.crt", dir_ + "/server.crt");
  std::filesystem::rename(dir_ + "/new.key", dir_ + "/server.key");
  EXPECT_EQ(w.Poll(), WebConfigWatcher::Change::kTls);
  EXPECT_EQ(w.Poll(), WebConfigWatcher::Change::kNone);

  // A key that does not fit the certificate is refused; the old pair stays.
  std::filesystem::copy_file(dir_ + "/other.key", dir_ + "/server.key",
                             std::filesystem::copy_options::overwrite_existing);
  EXPECT_EQ(w.Poll(), WebConfigWatcher::Change::kRejected);
  EXPECT_EQ(w.Current()->config.tls->min_version, TlsVersion::kTls13);

  WriteFile(path_, Users("alice"));
  EXPECT_EQ(w.Poll(), WebConfigWatcher::Change::kTls);
  EXPECT_FALSE(w.Current()->config.tls);
}

TEST(TlsContextTest, ValidatesCertificateKeyAndCa) {
  const std::string dir = MakeTempDir();
  ASSERT_TRUE(WriteSelfSignedCert(dir + "/a.crt", dir + "/a.key", "a"));
  ASSERT_TRUE(WriteSelfSignedCert(dir + "/b.crt", dir + "/b.key", "b"));
  TlsServerConfig tls;
  tls.cert_file = dir + "/a.crt";
  tls.key_file = dir + "/a.key";
  EXPECT_EQ(ValidateTlsConfig(tls), "");
  tls.min_version = TlsVersion::kTls13;
  tls.client_auth = ClientAuth::kRequireAndVerifyClientCert;
  tls.client_ca_file = dir + "/b.crt";
  EXPECT_EQ(ValidateTlsConfig(tls), "");

  tls.client_ca_file = dir + "/missing.crt";
  EXPECT_THAT(ValidateTlsConfig(tls), HasSubstr("client_ca_file"));
  tls.client_ca_file.clear();
  tls.key_file = dir + "/b.key";
  EXPECT_THAT(ValidateTlsConfig(tls), HasSubstr("does not match"));
  tls.cert_file = dir + "/missing.crt";
  EXPECT_THAT(ValidateTlsConfig(tls), HasSubstr("cannot load cert_file"));
  RemoveTree(dir);
}

}  // namespace
}  // namespace meshflow::web
