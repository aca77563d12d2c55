#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "collectors/flow/capture/interface_selector.h"

namespace meshflow::flow {

// One network interface as the kernel reports it.
struct LinkState {
  std::string name;
  int index = 0;
  bool up = false;  // IFF_UP: a packet socket on a down interface fails with ENETDOWN at once
};

struct LinkEvent {
  enum class Type { kNew, kDel };
  Type type = Type::kNew;
  bool from_dump = false;  // part of the answer to our RTM_GETLINK dump, not a change
  LinkState link;
};

// What rtnetlink said in one read.
struct ParsedLinkMessages {
  std::vector<LinkEvent> events;
  bool dump_done = false;          // NLMSG_DONE (or an error) ended our dump
  bool addresses_changed = false;  // RTM_NEWADDR or RTM_DELADDR: this host's addresses moved
  uint64_t malformed = 0;          // messages too short or without a name, skipped
};

// Parses a buffer of rtnetlink messages as read from the socket. Never reads past `size`.
ParsedLinkMessages ParseLinkMessages(const uint8_t* data, size_t size);

// What the capture loop must do so that exactly the selected, up interfaces are captured.
struct LinkPlan {
  std::vector<std::string> close;  // vanished, down, recreated (new ifindex) or deselected
  std::vector<LinkState> open;
};

// The interfaces the kernel has, kept from netlink events and periodic dumps, and the decision
// which handles to open and close. No I/O: events are injected, so tests drive it directly.
class LinkTable {
 public:
  explicit LinkTable(std::chrono::nanoseconds retry_interval) : retry_interval_(retry_interval) {}

  void Apply(const LinkEvent& event);
  // A complete dump: what it does not name is gone.
  void ReplaceAll(const std::vector<LinkState>& links);
  // `open` maps each captured interface to the ifindex its handle is bound to.
  LinkPlan Plan(const InterfaceSelector& selector, const std::map<std::string, int>& open,
                std::chrono::nanoseconds now) const;
  // An open that failed is retried after the retry interval, not at every event.
  void OpenFailed(const std::string& name, std::chrono::nanoseconds now);
  void OpenSucceeded(const std::string& name) { retry_after_.erase(name); }
  void set_retry_interval(std::chrono::nanoseconds interval) { retry_interval_ = interval; }
  size_t size() const { return links_.size(); }

 private:
  std::map<std::string, LinkState> links_;
  std::map<std::string, std::chrono::nanoseconds> retry_after_;
  std::chrono::nanoseconds retry_interval_;
};

// A NETLINK_ROUTE socket subscribed to link changes, non-blocking, for the capture loop's epoll.
class NetlinkLinkSource {
 public:
  // Throws std::system_error when the socket cannot be made.
  NetlinkLinkSource();
  ~NetlinkLinkSource();
  NetlinkLinkSource(const NetlinkLinkSource&) = delete;
  NetlinkLinkSource& operator=(const NetlinkLinkSource&) = delete;

  int fd() const { return fd_; }
  // Asks for every link (RTM_GETLINK dump); the answer arrives through ReadInto.
  void RequestDump();
  // Reads all pending messages into `table`. Returns true when any link changed.
  bool ReadInto(LinkTable& table);
  // True once after an address was added or removed on any interface.
  bool TakeAddressesChanged() { return std::exchange(addresses_changed_, false); }
  uint64_t malformed() const { return malformed_; }
  uint64_t overruns() const { return overruns_; }

 private:
  int fd_ = -1;
  uint32_t seq_ = 0;
  bool dump_running_ = false;
  bool dump_wanted_ = false;
  std::vector<LinkState> dump_;
  std::vector<uint8_t> buffer_;
  uint64_t malformed_ = 0;
  uint64_t overruns_ = 0;  // ENOBUFS: events were lost, so a dump follows
  bool addresses_changed_ = false;
};

}  // namespace meshflow::flow
