// The parsers of untrusted or hand-written text in the web and privilege layers: the web config
// file (YAML), the Authorization header of every request, and /proc/<pid>/status. The first
// byte picks the parser. Errors must come out as ConfigError or nullopt, never as a crash.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "common/core/config_reader.h"
#include "common/web/basic_auth.h"
#include "common/web/web_config.h"
#include "exporter/privileges.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const std::string text(reinterpret_cast<const char*>(data) + 1, size - 1);
  switch (data[0] % 3) {
    case 0:
      try {
        const auto config = meshflow::web::ParseWebConfig(text, "/etc/meshflow/web.yml");
        // Whatever parses must be usable as it is.
        for (const auto& [user, hash] : config.basic_auth_users) {
          if (user.empty() || meshflow::web::BcryptCost(hash) < 4) __builtin_trap();
        }
        if (config.tls && (config.tls->cert_file.empty() || config.tls->key_file.empty())) {
          __builtin_trap();
        }
      } catch (const meshflow::ConfigError&) {
      }
      break;
    case 1:
      if (auto c = meshflow::web::ParseBasicAuthorization(text)) {
        if (c->user.find(':') != std::string::npos) __builtin_trap();
      }
      break;
    case 2:
      if (auto p = meshflow::ParseProcStatus(text)) {
        std::vector<prometheus::MetricFamily> out;
        meshflow::CollectPrivilegeMetrics(*p, out);
      }
      break;
  }
  return 0;
}
