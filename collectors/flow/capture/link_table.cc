#include "collectors/flow/capture/link_table.h"

#include <errno.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <net/if.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstring>
#include <system_error>

namespace meshflow::flow {
namespace {

// Netlink headers are read by copying, never by casting the buffer: the buffer's alignment is
// the socket's business and a fuzzer's input has none.
template <typename T>
T Load(const uint8_t* p) {
  T v;
  std::memcpy(&v, p, sizeof v);
  return v;
}

size_t Align4(size_t n) { return (n + 3) & ~size_t{3}; }

bool ParseLink(const uint8_t* msg, size_t len, LinkState& out) {
  const size_t header = NLMSG_HDRLEN;
  if (len < header + sizeof(ifinfomsg)) return false;
  const auto info = Load<ifinfomsg>(msg + header);
  out.index = info.ifi_index;
  out.up = (info.ifi_flags & IFF_UP) != 0;
  size_t off = header + Align4(sizeof(ifinfomsg));
  while (off + sizeof(rtattr) <= len) {
    const auto attr = Load<rtattr>(msg + off);
    if (attr.rta_len < sizeof(rtattr) || attr.rta_len > len - off) return false;
    if (attr.rta_type == IFLA_IFNAME) {
      const char* name = reinterpret_cast<const char*>(msg + off + RTA_LENGTH(0));
      const size_t max = attr.rta_len - RTA_LENGTH(0);
      out.name.assign(name, strnlen(name, max));
    }
    off += Align4(attr.rta_len);
  }
  return !out.name.empty() && out.index > 0;
}

}  // namespace

ParsedLinkMessages ParseLinkMessages(const uint8_t* data, size_t size) {
  ParsedLinkMessages parsed;
  size_t off = 0;
  while (size - off >= sizeof(nlmsghdr)) {
    const auto hdr = Load<nlmsghdr>(data + off);
    if (hdr.nlmsg_len < sizeof(nlmsghdr) || hdr.nlmsg_len > size - off) {
      ++parsed.malformed;  // the rest of the buffer cannot be framed
      break;
    }
    const uint8_t* msg = data + off;
    switch (hdr.nlmsg_type) {
      case NLMSG_DONE:
      case NLMSG_ERROR:
        parsed.dump_done = true;
        break;
      case RTM_NEWLINK:
      case RTM_DELLINK: {
        LinkEvent event;
        event.type = hdr.nlmsg_type == RTM_NEWLINK ? LinkEvent::Type::kNew : LinkEvent::Type::kDel;
        event.from_dump = (hdr.nlmsg_flags & NLM_F_MULTI) != 0;
        if (ParseLink(msg, hdr.nlmsg_len, event.link))
          parsed.events.push_back(std::move(event));
        else
          ++parsed.malformed;
        break;
      }
      case RTM_NEWADDR:
      case RTM_DELADDR:
        parsed.addresses_changed = true;
        break;
      default:
        break;  // other groups' messages are not ours to judge
    }
    off += Align4(hdr.nlmsg_len);
    if (off > size) break;
  }
  return parsed;
}

void LinkTable::Apply(const LinkEvent& event) {
  const LinkState& link = event.link;
  if (event.type == LinkEvent::Type::kDel) {
    auto it = links_.find(link.name);
    if (it != links_.end() && it->second.index == link.index) links_.erase(it);
    return;
  }
  // A rename keeps the ifindex: the old name is gone.
  for (auto it = links_.begin(); it != links_.end();) {
    if (it->second.index == link.index && it->first != link.name)
      it = links_.erase(it);
    else
      ++it;
  }
  auto it = links_.find(link.name);
  // A link that is new or came back under a new ifindex deserves a fresh open attempt.
  if (it == links_.end() || it->second.index != link.index) retry_after_.erase(link.name);
  links_[link.name] = link;
}

void LinkTable::ReplaceAll(const std::vector<LinkState>& links) {
  links_.clear();
  for (const auto& link : links) links_[link.name] = link;
}

LinkPlan LinkTable::Plan(const InterfaceSelector& selector, const std::map<std::string, int>& open,
                         std::chrono::nanoseconds now) const {
  LinkPlan plan;
  for (const auto& [name, index] : open) {
    auto it = links_.find(name);
    if (it == links_.end() || !it->second.up || it->second.index != index ||
        !selector.Selected(name))
      plan.close.push_back(name);
  }
  for (const auto& [name, link] : links_) {
    if (!link.up || !selector.Selected(name)) continue;
    auto it = open.find(name);
    // Same name, new ifindex: the interface was recreated, the old handle is closed above.
    if (it != open.end() && it->second == link.index) continue;
    auto retry = retry_after_.find(name);
    if (retry != retry_after_.end() && now < retry->second) continue;
    plan.open.push_back(link);
  }
  return plan;
}

void LinkTable::OpenFailed(const std::string& name, std::chrono::nanoseconds now) {
  retry_after_[name] = now + retry_interval_;
}

NetlinkLinkSource::NetlinkLinkSource() : buffer_(64 * 1024) {
  fd_ = socket(AF_NETLINK, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC, NETLINK_ROUTE);
  if (fd_ < 0) throw std::system_error(errno, std::generic_category(), "netlink socket");
  sockaddr_nl addr{};
  addr.nl_family = AF_NETLINK;
  // Address changes matter too: the pipeline maps this host's own addresses to node_name.
  addr.nl_groups = RTMGRP_LINK | RTMGRP_IPV4_IFADDR | RTMGRP_IPV6_IFADDR;
  if (bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    const int err = errno;
    close(fd_);
    throw std::system_error(err, std::generic_category(), "netlink bind");
  }
}

NetlinkLinkSource::~NetlinkLinkSource() {
  if (fd_ >= 0) close(fd_);
}

void NetlinkLinkSource::RequestDump() {
  if (dump_running_) {
    // The kernel allows one dump per socket at a time (EBUSY); ask again when it ends.
    dump_wanted_ = true;
    return;
  }
  struct {
    nlmsghdr hdr;
    ifinfomsg info;
  } request{};
  request.hdr.nlmsg_len = sizeof request;
  request.hdr.nlmsg_type = RTM_GETLINK;
  request.hdr.nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
  request.hdr.nlmsg_seq = ++seq_;
  request.info.ifi_family = AF_UNSPEC;
  sockaddr_nl kernel{};
  kernel.nl_family = AF_NETLINK;
  if (sendto(fd_, &request, sizeof request, 0, reinterpret_cast<sockaddr*>(&kernel),
             sizeof kernel) == static_cast<ssize_t>(sizeof request)) {
    dump_running_ = true;
    dump_wanted_ = false;
    dump_.clear();
  } else {
    dump_wanted_ = true;  // retried at the next rescan
  }
}

bool NetlinkLinkSource::ReadInto(LinkTable& table) {
  bool changed = false;
  for (;;) {
    const ssize_t n = recv(fd_, buffer_.data(), buffer_.size(), 0);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == ENOBUFS) {
        // The socket's queue overflowed and events were lost: only a full dump is the truth.
        ++overruns_;
        dump_running_ = false;
        RequestDump();
        continue;
      }
      break;  // EAGAIN: drained
    }
    if (n == 0) break;
    ParsedLinkMessages parsed = ParseLinkMessages(buffer_.data(), static_cast<size_t>(n));
    malformed_ += parsed.malformed;
    addresses_changed_ |= parsed.addresses_changed;
    for (auto& event : parsed.events) {
      if (event.from_dump) {
        dump_.push_back(std::move(event.link));
      } else {
        table.Apply(event);
        changed = true;
      }
    }
    if (parsed.dump_done && dump_running_) {
      table.ReplaceAll(dump_);
      dump_.clear();
      dump_running_ = false;
      changed = true;
      if (dump_wanted_) RequestDump();
    }
  }
  return changed;
}

}  // namespace meshflow::flow
