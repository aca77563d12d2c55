#include "tests/testbed/emulator/delay_line.h"

#include <utility>

namespace meshflow::testbed {

using std::chrono::nanoseconds;

bool DelayLine::Push(nanoseconds release, size_t to_node, const uint8_t* data, size_t size) {
  if (queue_.size() >= limits_.max_packets || bytes_ + size > limits_.max_bytes) return false;
  queue_.push(Entry{release, seq_++, to_node, std::vector<uint8_t>(data, data + size)});
  bytes_ += size;
  return true;
}

DelayLine::Entry DelayLine::Pop() {
  // priority_queue::top is const; the entry is moved out just before it is popped.
  Entry e = std::move(const_cast<Entry&>(queue_.top()));
  queue_.pop();
  bytes_ -= e.data.size();
  return e;
}

}  // namespace meshflow::testbed
