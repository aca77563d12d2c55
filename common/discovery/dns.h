#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "common/discovery/source.h"

namespace meshflow::discovery {

struct DnsAnswer {
  bool ok = false;
  std::string error;
  std::vector<IpAddress> addresses;  // the A or AAAA records of the answer section
};

// The addresses of a DNS response message (RFC 1035) answering a query of type `qtype` (1 A, 28
// AAAA). Other record types in the answer (the CNAMEs of a chain) are skipped; a record of the
// asked type with the wrong length fails the whole answer.
DnsAnswer ParseDnsResponse(std::span<const uint8_t> message, int qtype);

// The A and AAAA records of some names, each address a nameless node: a headless Service lists
// every pod's address, which with hostNetwork is every node's. Re-resolved at every poll.
class DnsSource final : public Source {
 public:
  // `server`: "a.b.c.d" or "a.b.c.d:port"; empty: the resolvers of /etc/resolv.conf.
  DnsSource(std::vector<std::string> names, std::string server);
  std::string_view name() const override { return "dns"; }
  PollResult Poll() override;

 private:
  std::vector<std::string> names_;
  std::string server_;
};

}  // namespace meshflow::discovery
