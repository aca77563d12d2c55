#include "gateway/remote_write/relabel.h"

#include <re2/re2.h>

#include <algorithm>

namespace meshflow::gateway::remote_write {
namespace {

std::string_view ValueOf(const Labels& labels, std::string_view name) {
  for (const auto& [n, v] : labels) {
    if (n == name) return v;
  }
  return {};
}

}  // namespace

bool Relabel(const std::vector<RelabelRule>& rules, Labels& labels) {
  std::string joined;
  for (const auto& rule : rules) {
    switch (rule.action) {
      case RelabelRule::Action::kKeep:
      case RelabelRule::Action::kDrop: {
        joined.clear();
        for (size_t i = 0; i < rule.source_labels.size(); ++i) {
          if (i > 0) joined += rule.separator;
          joined += ValueOf(labels, rule.source_labels[i]);
        }
        const bool match = RE2::FullMatch(joined, *rule.regex);
        if (match != (rule.action == RelabelRule::Action::kKeep)) return false;
        break;
      }
      case RelabelRule::Action::kLabelDrop:
      case RelabelRule::Action::kLabelKeep: {
        const bool keep_matching = rule.action == RelabelRule::Action::kLabelKeep;
        std::erase_if(labels, [&](const auto& l) {
          // The metric name is never stripped: a series without one cannot be written.
          if (l.first == "__name__") return false;
          return RE2::FullMatch(l.first, *rule.regex) != keep_matching;
        });
        break;
      }
    }
  }
  return true;
}

}  // namespace meshflow::gateway::remote_write
