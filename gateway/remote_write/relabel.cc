#include "gateway/remote_write/relabel.h"

#include <openssl/evp.h>
#include <re2/re2.h>

#include <algorithm>
#include <array>

namespace meshflow::gateway::remote_write {
namespace {

std::string_view ValueOf(const Labels& labels, std::string_view name) {
  for (const auto& [n, v] : labels) {
    if (n == name) return v;
  }
  return {};
}

// labels.Builder.Set: an empty value removes the label.
void Set(Labels& labels, const std::string& name, std::string value) {
  auto it =
      std::find_if(labels.begin(), labels.end(), [&](const auto& l) { return l.first == name; });
  if (value.empty()) {
    if (it != labels.end()) labels.erase(it);
  } else if (it != labels.end()) {
    it->second = std::move(value);
  } else {
    labels.emplace_back(name, std::move(value));
  }
}

bool ValidLabelName(std::string_view name) {
  if (name.empty()) return false;
  for (size_t i = 0; i < name.size(); ++i) {
    const char c = name[i];
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' ||
                    (i > 0 && c >= '0' && c <= '9');
    if (!ok) return false;
  }
  return true;
}

bool NameChar(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
}

// Go's regexp extract(): the name after a '$', braced or not; its number, or -1 for a name.
bool ExtractName(std::string_view t, std::string_view& name, int& num, size_t& consumed) {
  if (t.empty()) return false;
  const bool brace = t[0] == '{';
  size_t i = brace ? 1 : 0;
  const size_t start = i;
  while (i < t.size() && NameChar(t[i])) ++i;
  if (i == start) return false;  // empty name is not okay
  name = t.substr(start, i - start);
  if (brace) {
    if (i >= t.size() || t[i] != '}') return false;
    ++i;
  }
  consumed = i;
  num = 0;
  for (char c : name) {
    if (c < '0' || c > '9' || num >= 100'000'000) {
      num = -1;
      break;
    }
    num = num * 10 + (c - '0');
  }
  if (name[0] == '0' && name.size() > 1) num = -1;  // no leading zeros
  return true;
}

}  // namespace

bool ExpandMatch(const re2::RE2& regex, std::string_view input, std::string_view replacement,
                 std::string& out) {
  const int groups = regex.NumberOfCapturingGroups();
  std::vector<re2::StringPiece> match(static_cast<size_t>(groups) + 1);
  if (!regex.Match(re2::StringPiece(input.data(), input.size()), 0, input.size(),
                   re2::RE2::ANCHOR_BOTH, match.data(), static_cast<int>(match.size())))
    return false;
  out.clear();
  std::string_view t = replacement;
  while (!t.empty()) {
    const size_t dollar = t.find('$');
    if (dollar == std::string_view::npos) break;
    out.append(t.substr(0, dollar));
    t.remove_prefix(dollar + 1);
    if (!t.empty() && t[0] == '$') {
      out.push_back('$');
      t.remove_prefix(1);
      continue;
    }
    std::string_view name;
    int num = -1;
    size_t consumed = 0;
    if (!ExtractName(t, name, num, consumed)) {
      out.push_back('$');  // malformed: the dollar is text
      continue;
    }
    t.remove_prefix(consumed);
    if (num >= 0) {
      // A group that did not take part in the match (data() null) expands to nothing.
      if (num <= groups && match[static_cast<size_t>(num)].data() != nullptr)
        out.append(match[static_cast<size_t>(num)].data(), match[static_cast<size_t>(num)].size());
    } else {
      const auto& named = regex.NamedCapturingGroups();
      if (auto it = named.find(std::string(name)); it != named.end()) {
        const auto& m = match[static_cast<size_t>(it->second)];
        if (m.data() != nullptr) out.append(m.data(), m.size());
      }
    }
  }
  out.append(t);
  return true;
}

uint64_t HashMod(std::string_view value, uint64_t modulus) {
  std::array<unsigned char, 16> digest{};
  unsigned int size = 0;
  EVP_Digest(value.data(), value.size(), digest.data(), &size, EVP_md5(), nullptr);
  uint64_t v = 0;
  for (size_t i = 8; i < 16; ++i) v = (v << 8) | digest[i];
  return modulus == 0 ? 0 : v % modulus;
}

bool Relabel(const std::vector<RelabelRule>& rules, Labels& labels) {
  std::string joined, expanded, target;
  using Action = RelabelRule::Action;
  for (const auto& rule : rules) {
    joined.clear();
    for (size_t i = 0; i < rule.source_labels.size(); ++i) {
      if (i > 0) joined += rule.separator;
      joined += ValueOf(labels, rule.source_labels[i]);
    }
    switch (rule.action) {
      case Action::kKeep:
      case Action::kDrop: {
        const bool match = RE2::FullMatch(joined, *rule.regex);
        if (match != (rule.action == Action::kKeep)) return false;
        break;
      }
      case Action::kKeepEqual:
      case Action::kDropEqual: {
        const bool equal = ValueOf(labels, rule.target_label) == joined;
        if (equal != (rule.action == Action::kKeepEqual)) return false;
        break;
      }
      case Action::kReplace: {
        // No match: nothing changes. The target label may itself use the groups.
        if (!ExpandMatch(*rule.regex, joined, rule.target_label, target)) break;
        if (!ValidLabelName(target)) break;
        ExpandMatch(*rule.regex, joined, rule.replacement, expanded);
        Set(labels, target, expanded);
        break;
      }
      case Action::kHashMod:
        Set(labels, rule.target_label, std::to_string(HashMod(joined, rule.modulus)));
        break;
      case Action::kLabelMap: {
        const Labels before = labels;  // every label as it was, however the rule renames
        for (const auto& [name, value] : before) {
          if (!ExpandMatch(*rule.regex, name, rule.replacement, target)) continue;
          // A result that is no label name would make the series unwritable: skipped.
          if (ValidLabelName(target)) Set(labels, target, value);
        }
        break;
      }
      case Action::kLabelDrop:
      case Action::kLabelKeep: {
        const bool keep_matching = rule.action == Action::kLabelKeep;
        std::erase_if(labels, [&](const auto& l) {
          // The metric name is never stripped: a series without one cannot be written.
          if (l.first == "__name__") return false;
          return RE2::FullMatch(l.first, *rule.regex) != keep_matching;
        });
        break;
      }
    }
  }
  // A series without a name (a replace that emptied __name__) cannot be written.
  return !ValueOf(labels, "__name__").empty();
}

}  // namespace meshflow::gateway::remote_write
