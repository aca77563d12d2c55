#include "tests/web/test_certs.h"

#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <stdlib.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>

namespace meshflow::web::testing {

bool WriteSelfSignedCert(const std::string& cert_path, const std::string& key_path,
                         const std::string& common_name, int days_valid) {
  std::unique_ptr<EVP_PKEY, decltype(&EVP_PKEY_free)> key(EVP_EC_gen("P-256"), EVP_PKEY_free);
  std::unique_ptr<X509, decltype(&X509_free)> cert(X509_new(), X509_free);
  if (!key || !cert) return false;
  X509_set_version(cert.get(), 2);
  ASN1_INTEGER_set(X509_get_serialNumber(cert.get()), 1);
  const long seconds_per_day = 86400;
  if (days_valid >= 0) {
    X509_gmtime_adj(X509_getm_notBefore(cert.get()), -seconds_per_day);
    X509_gmtime_adj(X509_getm_notAfter(cert.get()), days_valid * seconds_per_day);
  } else {
    X509_gmtime_adj(X509_getm_notBefore(cert.get()), (days_valid - 2) * seconds_per_day);
    X509_gmtime_adj(X509_getm_notAfter(cert.get()), days_valid * seconds_per_day);
  }
  X509_set_pubkey(cert.get(), key.get());
  X509_NAME* name = X509_get_subject_name(cert.get());
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                             reinterpret_cast<const unsigned char*>(common_name.c_str()), -1, -1,
                             0);
  X509_set_issuer_name(cert.get(), name);
  if (X509_sign(cert.get(), key.get(), EVP_sha256()) == 0) return false;
  FILE* c = std::fopen(cert_path.c_str(), "w");
  if (c == nullptr) return false;
  const bool cert_ok = PEM_write_X509(c, cert.get()) == 1;
  std::fclose(c);
  FILE* k = std::fopen(key_path.c_str(), "w");
  if (k == nullptr) return false;
  const bool key_ok =
      PEM_write_PrivateKey(k, key.get(), nullptr, nullptr, 0, nullptr, nullptr) == 1;
  std::fclose(k);
  return cert_ok && key_ok;
}

std::string MakeTempDir() {
  const char* base = std::getenv("TMPDIR");
  std::string pattern = std::string(base && *base ? base : "/tmp") + "/meshflow-web-XXXXXX";
  if (mkdtemp(pattern.data()) == nullptr) return {};
  return pattern;
}

void RemoveTree(const std::string& dir) {
  std::error_code ignored;
  std::filesystem::remove_all(dir, ignored);
}

void WriteFile(const std::string& path, const std::string& text) {
  // Write aside and rename, as Kubernetes and editors do, so each write is a new inode.
  const std::string tmp = path + ".new";
  {
    std::ofstream out(tmp, std::ios::trunc);
    out << text;
  }
  std::filesystem::rename(tmp, path);
}

}  // namespace meshflow::web::testing
