#include "common/core/config_reader.h"

#include <yaml-cpp/eventhandler.h>
#include <yaml-cpp/parser.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <sstream>

namespace meshflow {
namespace {

// Walks the document's events and fails at the first collection nested deeper than
// kMaxConfigDepth. yaml-cpp builds a document by recursion, one stack frame chain per level, up to
// 2,000 levels: a file nested a few hundred levels deep is refused here, at its line, before that
// recursion can reach for the stack of a thread smaller than the main one.
class DepthCheck final : public YAML::EventHandler {
 public:
  explicit DepthCheck(const std::string& file_name) : file_name_(file_name) {}
  void OnDocumentStart(const YAML::Mark&) override { depth_ = 0; }
  void OnDocumentEnd() override {}
  void OnNull(const YAML::Mark&, YAML::anchor_t) override {}
  void OnAlias(const YAML::Mark&, YAML::anchor_t) override {}
  void OnScalar(const YAML::Mark&, const std::string&, YAML::anchor_t,
                const std::string&) override {}
  void OnSequenceStart(const YAML::Mark& mark, const std::string&, YAML::anchor_t,
                       YAML::EmitterStyle::value) override {
    Enter(mark);
  }
  void OnSequenceEnd() override { --depth_; }
  void OnMapStart(const YAML::Mark& mark, const std::string&, YAML::anchor_t,
                  YAML::EmitterStyle::value) override {
    Enter(mark);
  }
  void OnMapEnd() override { --depth_; }

 private:
  void Enter(const YAML::Mark& mark) {
    if (++depth_ <= kMaxConfigDepth) return;
    throw ConfigError(file_name_ + ":" + std::to_string(mark.line + 1) + ":" +
                      std::to_string(mark.column + 1) + ": invalid config: lists and mappings " +
                      "nested more than " + std::to_string(kMaxConfigDepth) + " levels deep");
  }

  const std::string& file_name_;
  int depth_ = 0;
};

}  // namespace

ConfigNode::ConfigNode(YAML::Node node, std::string path, std::shared_ptr<const std::string> file,
                       YAML::Mark mark)
    : node_(std::move(node)), path_(std::move(path)), file_(std::move(file)), mark_(mark) {}

ConfigNode ConfigNode::Parse(const std::string& text, const std::string& file_name) {
  auto file = std::make_shared<const std::string>(file_name);
  try {
    std::istringstream in(text);
    YAML::Parser parser(in);
    DepthCheck check(file_name);
    // The first document only, as YAML::Load reads: on some malformed input (a NUL byte ahead of
    // the text) yaml-cpp reports another document forever without consuming anything.
    parser.HandleNextDocument(check);
    YAML::Node root = YAML::Load(text);
    return ConfigNode(root, "", file, root.Mark());
  } catch (const YAML::Exception& e) {
    throw ConfigError(file_name + ":" + std::to_string(e.mark.line + 1) + ":" +
                      std::to_string(e.mark.column + 1) + ": invalid YAML: " + e.msg);
  }
}

void ConfigNode::Fail(std::string_view expected) const {
  const YAML::Mark m = (node_ && node_.Mark().line >= 0) ? node_.Mark() : mark_;
  std::string where =
      *file_ + ":" + std::to_string(m.line + 1) + ":" + std::to_string(m.column + 1);
  std::string field = path_.empty() ? "top level" : "field " + path_;
  throw ConfigError(where + ": " + field + ": expected " + std::string(expected) + Got());
}

std::string ConfigNode::Got() const {
  if (!node_ || node_.IsNull()) return ", got nothing";
  if (node_.IsScalar()) return ", got \"" + node_.Scalar() + "\"";
  if (node_.IsSequence()) return ", got a list";
  return ", got a mapping";
}

void ConfigNode::ExpectMap(std::initializer_list<std::string_view> allowed) const {
  if (IsNull()) return;  // an empty section means "all defaults"
  if (!node_.IsMap()) Fail("a mapping");
  for (const auto& kv : node_) {
    // A YAML complex key ("? [a, b]: x") is valid YAML but never a config field; without this
    // check yaml-cpp's conversion would throw its own exception past every caller.
    if (!kv.first.IsScalar()) {
      ConfigNode(kv.first, path_.empty() ? "top level" : path_, file_, kv.first.Mark())
          .Fail("a plain key");
    }
    const std::string& key = kv.first.Scalar();
    if (std::find(allowed.begin(), allowed.end(), key) != allowed.end()) continue;
    std::string known;
    for (const auto& a : allowed) known += (known.empty() ? "" : ", ") + std::string(a);
    ConfigNode(kv.first, path_.empty() ? key : path_ + "." + key, file_, kv.first.Mark())
        .Fail("one of the known keys (" + known + ") in place of unknown key");
  }
}

std::vector<std::string> ConfigNode::Keys() const {
  std::vector<std::string> keys;
  if (IsNull()) return keys;
  if (!node_.IsMap()) Fail("a mapping");
  for (const auto& kv : node_) {
    if (!kv.first.IsScalar()) {
      ConfigNode(kv.first, path_.empty() ? "top level" : path_, file_, kv.first.Mark())
          .Fail("a plain key");
    }
    keys.push_back(kv.first.Scalar());
  }
  return keys;
}

std::optional<ConfigNode> ConfigNode::Get(std::string_view key) const {
  if (IsNull() || !node_.IsMap()) return std::nullopt;
  YAML::Node child = node_[std::string(key)];
  if (!child || child.IsNull()) return std::nullopt;
  return ConfigNode(child, path_.empty() ? std::string(key) : path_ + "." + std::string(key), file_,
                    child.Mark());
}

ConfigNode ConfigNode::Require(std::string_view key) const {
  if (auto child = Get(key)) return *child;
  ConfigNode(YAML::Node(), path_.empty() ? std::string(key) : path_ + "." + std::string(key), file_,
             node_ ? node_.Mark() : mark_)
      .Fail("a value (the field is required)");
}

std::vector<ConfigNode> ConfigNode::Items() const {
  if (IsNull()) return {};
  if (!node_.IsSequence()) Fail("a list");
  std::vector<ConfigNode> out;
  size_t i = 0;
  for (const auto& item : node_) {
    out.push_back(ConfigNode(item, path_ + "[" + std::to_string(i++) + "]", file_, item.Mark()));
  }
  return out;
}

std::string ConfigNode::AsString() const {
  if (IsNull() || !node_.IsScalar()) Fail("a string");
  return node_.Scalar();
}

std::string ConfigNode::AsName(std::string_view what) const {
  std::string name = AsString();
  if (!ValidName(name)) {
    Fail("a " + std::string(what) +
         " of 1 to 63 letters, digits, '.', '_' or '-', starting with a letter or digit");
  }
  return name;
}

bool ValidName(std::string_view name) {
  const auto alnum = [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
  };
  if (name.empty() || name.size() > 63 || !alnum(name[0])) return false;
  for (const char c : name) {
    if (!alnum(c) && c != '.' && c != '_' && c != '-') return false;
  }
  return true;
}

int64_t ConfigNode::AsInt(int64_t min, int64_t max) const {
  const std::string range = "an integer from " + std::to_string(min) + " to " + std::to_string(max);
  if (IsNull() || !node_.IsScalar()) Fail(range);
  const std::string& s = node_.Scalar();
  int64_t v = 0;
  const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || end != s.data() + s.size() || v < min || v > max) Fail(range);
  return v;
}

double ConfigNode::AsDouble(double min, double max) const {
  const std::string range = "a number from " + std::to_string(min) + " to " + std::to_string(max);
  if (IsNull() || !node_.IsScalar()) Fail(range);
  const std::string& s = node_.Scalar();
  double v = 0;
  const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || end != s.data() + s.size() || !std::isfinite(v) || v < min || v > max)
    Fail(range);
  return v;
}

bool ConfigNode::AsBool() const {
  if (!IsNull() && node_.IsScalar()) {
    const std::string& s = node_.Scalar();
    if (s == "true") return true;
    if (s == "false") return false;
  }
  Fail("true or false");
}

std::chrono::nanoseconds ConfigNode::AsDuration() const {
  if (!IsNull() && node_.IsScalar()) {
    if (auto d = ParseDuration(node_.Scalar())) return *d;
  }
  Fail("a duration such as 500ms, 5s or 1m30s");
}

IpPrefix ConfigNode::AsPrefix() const {
  std::string why;
  if (!IsNull() && node_.IsScalar()) {
    if (auto p = IpPrefix::Parse(node_.Scalar(), &why)) return *p;
    Fail("an IPv4 or IPv6 CIDR such as 100.64.0.0/10 (" + why + ")");
  }
  Fail("an IPv4 or IPv6 CIDR such as 100.64.0.0/10");
}

std::string ConfigNode::AsEnum(std::initializer_list<std::string_view> choices) const {
  std::string list;
  for (const auto& c : choices) list += (list.empty() ? "" : ", ") + std::string(c);
  if (!IsNull() && node_.IsScalar()) {
    const std::string& s = node_.Scalar();
    if (std::find(choices.begin(), choices.end(), s) != choices.end()) return s;
  }
  Fail("one of " + list);
}

std::vector<std::string> ConfigNode::AsStringList() const {
  std::vector<std::string> out;
  for (const auto& item : Items()) out.push_back(item.AsString());
  return out;
}

void ConfigErrorList::ThrowIfAny() const {
  if (messages_.empty()) return;
  std::string all;
  for (const auto& m : messages_) {
    if (!all.empty()) all += '\n';
    all += m;
  }
  throw ConfigError(all);
}

std::optional<std::chrono::nanoseconds> ParseDuration(std::string_view text) {
  using std::chrono::nanoseconds;
  if (text.empty()) return std::nullopt;
  if (text == "0") return nanoseconds(0);
  double total_ns = 0;
  while (!text.empty()) {
    double value = 0;
    const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
    if (ec != std::errc() || value < 0) return std::nullopt;
    text.remove_prefix(static_cast<size_t>(end - text.data()));
    size_t unit_len = 0;
    while (unit_len < text.size() && std::isalpha(static_cast<unsigned char>(text[unit_len])))
      ++unit_len;
    const std::string_view unit = text.substr(0, unit_len);
    text.remove_prefix(unit_len);
    double scale = 0;
    if (unit == "ns")
      scale = 1;
    else if (unit == "us")
      scale = 1e3;
    else if (unit == "ms")
      scale = 1e6;
    else if (unit == "s")
      scale = 1e9;
    else if (unit == "m")
      scale = 60e9;
    else if (unit == "h")
      scale = 3600e9;
    else if (unit == "d")
      scale = 86400e9;
    else
      return std::nullopt;
    total_ns += value * scale;
  }
  if (total_ns > 9.2e18) return std::nullopt;
  return nanoseconds(static_cast<int64_t>(total_ns));
}

}  // namespace meshflow
