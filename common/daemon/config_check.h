#pragma once

#include <functional>
#include <string>
#include <string_view>

namespace meshflow {

// --config.check: loads the config file (through `load_config`, as a start would) and the web
// config with the certificate files it names, without opening a socket. Every file is checked
// even when an earlier one fails, so one run shows every problem, each located by file, line and
// field. Prints "FILE: ok" per good file; returns the exit code: 0 when all load, else 1.
// `without_config` is said when no config file is given.
int CheckConfigFiles(const std::string& config_file,
                     const std::function<void(const std::string&)>& load_config,
                     std::string_view without_config, const std::string& web_config_file);

}  // namespace meshflow
