#include "gateway/federate.h"

#include <optional>
#include <unordered_map>

#include "common/text_format/writer.h"
#include "gateway/push_store.h"

namespace meshflow::gateway {
namespace {

struct MergedFamily {
  const text_format::TextFamily* header = nullptr;
  std::string samples;
};

}  // namespace

std::string Federate(const std::vector<NodeExposition>& nodes,
                     const std::vector<Selector>& selectors, FederateStats* stats,
                     std::chrono::steady_clock::time_point deadline) {
  FederateStats local;
  // The clock is read once per this many samples looked at: often enough to stop within a few
  // milliseconds past the deadline, rarely enough to cost nothing.
  constexpr uint32_t kCheckEvery = 1024;
  uint32_t until_check = kCheckEvery;
  std::vector<MergedFamily> merged;
  std::unordered_map<std::string_view, size_t> index;
  text_format::TextLabels labels;
  for (const auto& node : nodes) {
    if (!node.exposition) continue;
    for (const auto& family : node.exposition->families) {
      if (family.samples.empty()) continue;
      auto [it, inserted] = index.try_emplace(family.name, merged.size());
      if (inserted) merged.push_back(MergedFamily{&family, {}});
      MergedFamily& target = merged[it->second];
      if (target.header->kind != family.kind) {
        ++local.type_conflicts;
        continue;
      }
      for (const auto& sample : family.samples) {
        if (--until_check == 0) {
          until_check = kCheckEvery;
          if (std::chrono::steady_clock::now() >= deadline) {
            local.out_of_time = true;
            if (stats) *stats = local;
            return {};
          }
        }
        const std::string* own_node = nullptr;
        for (const auto& [k, v] : sample.labels)
          if (k == "node") own_node = &v;
        const LabelLookup lookup = [&](std::string_view name) -> std::string_view {
          if (name == "__name__") return sample.name;
          if (name == "node") return node.node;
          if (name == "exported_node") return own_node ? std::string_view(*own_node) : "";
          for (const auto& [k, v] : sample.labels)
            if (k == name) return v;
          return {};
        };
        bool selected = false;
        for (const auto& selector : selectors) {
          if (selector.Matches(lookup)) {
            selected = true;
            break;
          }
        }
        if (!selected) continue;
        labels.clear();
        for (const auto& [k, v] : sample.labels) {
          if (k == "node")
            labels.emplace_back("exported_node", v);
          else if (k != "exported_node" || !own_node)
            labels.emplace_back(k, v);
        }
        labels.emplace_back("node", node.node);
        text_format::AppendSample(target.samples, sample.name, labels, sample.value,
                                  sample.timestamp_ms);
        ++local.samples_out;
      }
    }
  }
  // A family named like a histogram's or summary's samples would be read as part of it.
  auto kind_of = [&](const std::string& name) -> std::optional<text_format::MetricKind> {
    const auto it = index.find(name);
    if (it == index.end() || merged[it->second].samples.empty()) return std::nullopt;
    return merged[it->second].header->kind;
  };
  for (auto& m : merged) {
    if (!m.samples.empty() && CollidingBase(m.header->name, kind_of)) {
      m.samples.clear();
      ++local.type_conflicts;
    }
  }
  std::string out;
  size_t total = 0;
  for (const auto& m : merged) total += m.samples.size() + 128;
  out.reserve(total);
  for (const auto& m : merged) {
    if (m.samples.empty()) continue;
    text_format::AppendFamilyHeader(out, *m.header);
    out += m.samples;
  }
  if (stats) *stats = local;
  return out;
}

}  // namespace meshflow::gateway
