#include "tests/testbed/emulator/delay_line.h"

#include <gtest/gtest.h>

namespace meshflow::testbed {
namespace {

using std::chrono::milliseconds;

TEST(DelayLineTest, ReleasesEarliestFirstAndFifoAmongEqualTimes) {
  DelayLine line(MoverLimits{});
  const uint8_t a[] = {1}, b[] = {2}, c[] = {3}, d[] = {4};
  ASSERT_TRUE(line.Push(milliseconds(300), 1, a, 1));  // a long link first
  ASSERT_TRUE(line.Push(milliseconds(5), 2, b, 1));
  ASSERT_TRUE(line.Push(milliseconds(5), 3, c, 1));
  ASSERT_TRUE(line.Push(milliseconds(1), 4, d, 1));
  EXPECT_EQ(line.next_release(), milliseconds(1));
  std::vector<uint8_t> order;
  std::vector<size_t> to;
  while (!line.empty()) {
    auto e = line.Pop();
    order.push_back(e.data[0]);
    to.push_back(e.to_node);
  }
  EXPECT_EQ(order, (std::vector<uint8_t>{4, 2, 3, 1}));
  EXPECT_EQ(to, (std::vector<size_t>{4, 2, 3, 1}));
}

TEST(DelayLineTest, BoundedByPacketsAndBytes) {
  MoverLimits limits;
  limits.max_packets = 3;
  limits.max_bytes = 1000;
  DelayLine line(limits);
  std::vector<uint8_t> p(400, 0);
  EXPECT_TRUE(line.Push(milliseconds(1), 0, p.data(), p.size()));
  EXPECT_TRUE(line.Push(milliseconds(1), 0, p.data(), p.size()));
  EXPECT_FALSE(line.Push(milliseconds(1), 0, p.data(), p.size()));  // 1200 bytes > 1000
  EXPECT_TRUE(line.Push(milliseconds(1), 0, p.data(), 100));
  EXPECT_FALSE(line.Push(milliseconds(1), 0, p.data(), 1));  // fourth packet
  EXPECT_EQ(line.packets(), 3u);
  EXPECT_EQ(line.bytes(), 900u);
  line.Pop();
  EXPECT_EQ(line.bytes(), 500u);
  EXPECT_TRUE(line.Push(milliseconds(1), 0, p.data(), 400));
}

}  // namespace
}  // namespace meshflow::testbed
