#include "exporter/collector_set.h"

#include <gtest/gtest.h>

#include <set>

#include "common/core/metric_builder.h"
#include "exporter/collector_table.h"

namespace meshflow {
namespace {

class CountingCollector final : public Collector {
 public:
  explicit CountingCollector(FakeClock* clock) : clock_(clock) {}
  void Collect(std::vector<prometheus::MetricFamily>& out) override {
    clock_->Advance(std::chrono::milliseconds(3));
    FamilyBuilder("test_total", "t", prometheus::MetricType::Counter)
        .Counter({}, ++n_)
        .AppendTo(out);
  }
  int n_ = 0;
  FakeClock* clock_;
};

class ThrowingCollector final : public Collector {
 public:
  void Collect(std::vector<prometheus::MetricFamily>& out) override {
    FamilyBuilder("half_written", "h", prometheus::MetricType::Gauge).Gauge({}, 1).AppendTo(out);
    throw std::runtime_error("pcap_activate: permission denied");
  }
};

// Asks to keep the capabilities it was given.
class PrivilegedCollector final : public Collector {
 public:
  explicit PrivilegedCollector(std::vector<int> caps) : caps_(std::move(caps)) {}
  void Collect(std::vector<prometheus::MetricFamily>&) override {}
  std::vector<int> CapabilitiesWhileRunning() const override { return caps_; }

 private:
  std::vector<int> caps_;
};

const prometheus::ClientMetric* Find(const std::vector<prometheus::MetricFamily>& families,
                                     const std::string& name, const std::string& collector) {
  for (const auto& f : families) {
    if (f.name != name) continue;
    for (const auto& m : f.metric) {
      if (!m.label.empty() && m.label[0].value == collector) return &m;
    }
  }
  return nullptr;
}

TEST(CollectorSet, FailingCollectorDoesNotFailTheScrape) {
  FakeClock clock;
  CollectorSet set(clock);
  set.Add("good", std::make_unique<CountingCollector>(&clock));
  set.Add("bad", std::make_unique<ThrowingCollector>());
  std::vector<prometheus::MetricFamily> out;
  set.Collect(out);

  EXPECT_EQ(Find(out, "meshflow_collector_success", "good")->gauge.value, 1);
  EXPECT_EQ(Find(out, "meshflow_collector_success", "bad")->gauge.value, 0);
  EXPECT_DOUBLE_EQ(Find(out, "meshflow_collector_duration_seconds", "good")->gauge.value, 0.003);
  bool has_good = false;
  for (const auto& f : out) {
    EXPECT_NE(f.name, "half_written") << "a failed collector's partial output must be dropped";
    has_good |= f.name == "test_total";
  }
  EXPECT_TRUE(has_good);
}

TEST(CollectorSet, CollectorsAnswerEveryScrape) {
  FakeClock clock;
  CollectorSet set(clock);
  auto owned = std::make_unique<CountingCollector>(&clock);
  auto* counting = owned.get();
  set.Add("good", std::move(owned));
  for (int i = 0; i < 3; ++i) {
    std::vector<prometheus::MetricFamily> out;
    set.Collect(out);
  }
  EXPECT_EQ(counting->n_, 3);
}

TEST(CollectorTable, NamesAreUniqueFlagSafeAndHaveFactories) {
  std::set<std::string_view> names;
  for (const auto& entry : CollectorTable()) {
    EXPECT_TRUE(names.insert(entry.name).second) << entry.name;
    EXPECT_NE(entry.create, nullptr) << entry.name;
    EXPECT_FALSE(entry.help.empty()) << entry.name;
    EXPECT_EQ(entry.name.find_first_not_of("abcdefghijklmnopqrstuvwxyz0123456789_"),
              std::string_view::npos)
        << entry.name;
  }
}

TEST(CollectorSet, KeepsWhatAnyCollectorStillNeedsOnce) {
  CollectorSet set;
  EXPECT_TRUE(set.CapabilitiesWhileRunning().empty());
  set.Add("probe", std::make_unique<ThrowingCollector>());  // asks for nothing
  EXPECT_TRUE(set.CapabilitiesWhileRunning().empty());
  set.Add("a", std::make_unique<PrivilegedCollector>(std::vector<int>{13, 12}));
  set.Add("b", std::make_unique<PrivilegedCollector>(std::vector<int>{12}));
  EXPECT_EQ(set.CapabilitiesWhileRunning(), (std::vector<int>{12, 13}));
}

}  // namespace
}  // namespace meshflow
