#include <gtest/gtest.h>

#include <cstdint>

#include "collectors/flow/capture/wrapping_counter.h"

namespace meshflow::flow {
namespace {

TEST(WrappingCounter, AddsDeltas) {
  WrappingCounter c;
  c.Update(10);
  c.Update(25);
  c.Update(25);
  EXPECT_EQ(c.total(), 25u);
}

TEST(WrappingCounter, CarriesOverA32BitWrap) {
  WrappingCounter c;
  c.Update(UINT32_MAX - 4);
  EXPECT_EQ(c.total(), uint64_t{UINT32_MAX} - 4);
  c.Update(5);  // wrapped: 4 to reach UINT32_MAX, 1 to reach 0, 5 more
  EXPECT_EQ(c.total(), uint64_t{UINT32_MAX} + 6);
}

TEST(WrappingCounter, GoesPast32BitsOverManyWraps) {
  WrappingCounter c;
  uint32_t raw = 0;
  uint64_t expected = 0;
  for (int i = 0; i < 10; ++i) {
    for (int step = 0; step < 4; ++step) {
      raw += 1u << 30;  // a quarter of the range per reading: never a full wrap between two
      expected += 1u << 30;
      c.Update(raw);
    }
  }
  EXPECT_EQ(c.total(), expected);
  EXPECT_GT(c.total(), uint64_t{UINT32_MAX} * 9);
}

TEST(WrappingCounter, RebaseKeepsTheTotalForANewSource) {
  WrappingCounter c;
  c.Update(1000);
  c.Rebase();  // the handle was reopened: its counters start from 0 again
  c.Update(7);
  EXPECT_EQ(c.total(), 1007u);
}

TEST(WrappingCounter, WithoutRebaseASmallerReadingCountsAsAWrap) {
  WrappingCounter c;
  c.Update(1000);
  c.Update(7);
  EXPECT_EQ(c.total(), uint64_t{1000} + (uint64_t{1} << 32) - 993);
}

}  // namespace
}  // namespace meshflow::flow
