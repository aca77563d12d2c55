#pragma once

#include <yaml-cpp/yaml.h>

#include <chrono>
#include <cstdint>
#include <initializer_list>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "common/core/ip_address.h"

namespace meshflow {

// A config problem, already worded for the user: "FILE:LINE:COL: FIELD: expected ..., got ...".
class ConfigError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Gathers the errors of the independent parts of one file (its sections, the items of a list),
// so that a check names every one of them, not only the first. Nothing read is used until
// ThrowIfAny has passed, so a file with errors still changes nothing.
class ConfigErrorList {
 public:
  // Runs `read`; a ConfigError from it is kept, and the caller goes on with the next part.
  template <typename Read>
  void Check(Read&& read) {
    try {
      read();
    } catch (const ConfigError& e) {
      messages_.emplace_back(e.what());
    }
  }
  // Throws one ConfigError holding every kept error, one per line, in the order read.
  void ThrowIfAny() const;

 private:
  std::vector<std::string> messages_;
};

// How deeply lists and mappings may nest in a config file; no meshflow config needs a tenth of it.
inline constexpr int kMaxConfigDepth = 64;

// A YAML node that knows its file, position and dotted path, so that every check can say where
// the user has to look. All As*/Expect* methods throw ConfigError.
class ConfigNode {
 public:
  // Parses `text`; `file_name` only labels errors. A YAML syntax error, or nesting deeper than
  // kMaxConfigDepth, is a ConfigError too.
  static ConfigNode Parse(const std::string& text, const std::string& file_name);

  const std::string& path() const { return path_; }
  int line() const { return node_.Mark().line + 1; }
  bool IsNull() const { return !node_ || node_.IsNull(); }

  // Fails unless this is a mapping whose keys are all in `allowed`.
  void ExpectMap(std::initializer_list<std::string_view> allowed) const;
  // The child under `key`, or nullopt when absent or explicitly null.
  std::optional<ConfigNode> Get(std::string_view key) const;
  // The child under `key`; fails when absent.
  ConfigNode Require(std::string_view key) const;
  // Items of a sequence; fails on anything else.
  std::vector<ConfigNode> Items() const;
  // Keys of a mapping in file order (an empty section has none); fails on anything else.
  std::vector<std::string> Keys() const;

  std::string AsString() const;
  // A name that becomes a label value (a node, a role, a peer): see ValidName. `what` words the
  // error: "a <what> of 1 to 63 letters, ...".
  std::string AsName(std::string_view what = "name") const;
  int64_t AsInt(int64_t min, int64_t max) const;
  double AsDouble(double min, double max) const;
  bool AsBool() const;
  // Prometheus-style durations: 250us, 100ms, 5s, 1m30s, 2h.
  std::chrono::nanoseconds AsDuration() const;
  IpPrefix AsPrefix() const;
  // A string from `choices`.
  std::string AsEnum(std::initializer_list<std::string_view> choices) const;
  std::vector<std::string> AsStringList() const;

  [[noreturn]] void Fail(std::string_view expected) const;

 private:
  ConfigNode(YAML::Node node, std::string path, std::shared_ptr<const std::string> file,
             YAML::Mark mark);
  std::string Got() const;

  YAML::Node node_;
  std::string path_;
  std::shared_ptr<const std::string> file_;
  YAML::Mark mark_;  // where to point when node_ itself has no position (a missing key)
};

// The one rule for names that become label values and metric dimensions, so they stay readable
// and bounded: 1 to 63 letters, digits, '.', '_' or '-', starting with a letter or digit.
bool ValidName(std::string_view name);

// Parses a duration such as "1m30s"; nullopt when malformed.
std::optional<std::chrono::nanoseconds> ParseDuration(std::string_view text);

}  // namespace meshflow
