#pragma once

#include <string>

namespace meshflow::web::testing {

// Writes a self-signed EC certificate and its key as PEM files. `days_valid` < 0 makes an
// expired certificate. Returns false when OpenSSL fails.
bool WriteSelfSignedCert(const std::string& cert_path, const std::string& key_path,
                         const std::string& common_name, int days_valid = 30);

// A fresh directory under $TMPDIR (or /tmp) for one test.
std::string MakeTempDir();
void RemoveTree(const std::string& dir);
void WriteFile(const std::string& path, const std::string& text);

}  // namespace meshflow::web::testing
