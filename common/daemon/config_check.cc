#include "common/daemon/config_check.h"

#include <exception>
#include <iostream>

#include "common/web/web_config_watcher.h"

namespace meshflow {

int CheckConfigFiles(const std::string& config_file,
                     const std::function<void(const std::string&)>& load_config,
                     std::string_view without_config, const std::string& web_config_file) {
  int failed = 0;
  const auto check = [&failed](const std::string& file, const auto& load) {
    try {
      load(file);
      std::cout << file << ": ok\n";
    } catch (const std::exception& e) {
      std::cerr << e.what() << "\n";
      ++failed;
    }
  };
  if (config_file.empty()) {
    std::cout << without_config << "\n";
  } else {
    check(config_file, load_config);
  }
  if (!web_config_file.empty()) {
    check(web_config_file, [](const std::string& f) { web::WebConfigWatcher{f}; });
  }
  return failed == 0 ? 0 : 1;
}

}  // namespace meshflow
