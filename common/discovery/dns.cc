#include "common/discovery/dns.h"

#include <arpa/inet.h>
#include <arpa/nameser.h>
#include <netdb.h>
#include <netinet/in.h>
#include <resolv.h>

#include <algorithm>
#include <charconv>
#include <cstring>

namespace meshflow::discovery {
namespace {

// Parses "a.b.c.d" or "a.b.c.d:port" into a resolver address.
bool ParseServer(const std::string& text, sockaddr_in* out) {
  std::string host = text;
  int port = 53;
  if (const auto colon = text.rfind(':'); colon != std::string::npos) {
    host = text.substr(0, colon);
    const std::string p = text.substr(colon + 1);
    const auto [end, ec] = std::from_chars(p.data(), p.data() + p.size(), port);
    if (ec != std::errc() || end != p.data() + p.size() || port < 1 || port > 65535) return false;
  }
  std::memset(out, 0, sizeof *out);
  out->sin_family = AF_INET;
  out->sin_port = htons(static_cast<uint16_t>(port));
  return inet_pton(AF_INET, host.c_str(), &out->sin_addr) == 1;
}

const char* HerrorText(int h) {
  switch (h) {
    case HOST_NOT_FOUND:
      return "no such name (NXDOMAIN)";
    case TRY_AGAIN:
      return "server failure or timeout (SERVFAIL)";
    case NO_RECOVERY:
      return "refused or unrecoverable";
    case NO_DATA:
      return "no records of that type";
    default:
      return "resolver error";
  }
}

}  // namespace

DnsAnswer ParseDnsResponse(std::span<const uint8_t> message, int qtype) {
  DnsAnswer out;
  if (message.size() > 65535) {
    out.error = "message longer than 65535 bytes";
    return out;
  }
  ns_msg msg;
  if (ns_initparse(message.data(), static_cast<int>(message.size()), &msg) != 0) {
    out.error = "malformed DNS message";
    return out;
  }
  const int rcode = ns_msg_getflag(msg, ns_f_rcode);
  if (rcode != ns_r_noerror) {
    out.error = "response code " + std::to_string(rcode);
    return out;
  }
  const int count = ns_msg_count(msg, ns_s_an);
  for (int i = 0; i < count; ++i) {
    ns_rr rr;
    if (ns_parserr(&msg, ns_s_an, i, &rr) != 0) {
      out.error = "answer record " + std::to_string(i) + " is malformed";
      out.addresses.clear();
      return out;
    }
    if (ns_rr_class(rr) != ns_c_in || ns_rr_type(rr) != qtype) continue;
    const size_t want = qtype == ns_t_a ? 4 : 16;
    if (static_cast<size_t>(ns_rr_rdlen(rr)) != want) {
      out.error = "answer record " + std::to_string(i) + " has " + std::to_string(ns_rr_rdlen(rr)) +
                  " address bytes, not " + std::to_string(want);
      out.addresses.clear();
      return out;
    }
    out.addresses.push_back(qtype == ns_t_a ? IpAddress::FromV4Bytes(ns_rr_rdata(rr))
                                            : IpAddress::FromV6Bytes(ns_rr_rdata(rr)));
  }
  out.ok = true;
  return out;
}

DnsSource::DnsSource(std::vector<std::string> names, std::string server)
    : names_(std::move(names)), server_(std::move(server)) {}

PollResult DnsSource::Poll() {
  struct __res_state state;
  std::memset(&state, 0, sizeof state);
  if (res_ninit(&state) != 0) return PollResult::Fail("cannot initialise the resolver");
  struct Closer {
    res_state s;
    ~Closer() { res_nclose(s); }
  } closer{&state};
  state.retrans = 2;  // seconds per try
  state.retry = 2;
  if (!server_.empty()) {
    sockaddr_in server{};
    if (!ParseServer(server_, &server))
      return PollResult::Fail("dns.server " + server_ + " is not an IPv4 address[:port]");
    state.nsaddr_list[0] = server;
    state.nscount = 1;
  }
  std::vector<IpAddress> all;
  for (const auto& name : names_) {
    size_t found = 0;
    for (const int qtype : {ns_t_a, ns_t_aaaa}) {
      std::vector<uint8_t> answer(65535);
      const int n = res_nquery(&state, name.c_str(), ns_c_in, qtype, answer.data(),
                               static_cast<int>(answer.size()));
      if (n < 0) {
        // A name with only A or only AAAA records answers the other type with no data.
        if (state.res_h_errno == NO_DATA) continue;
        return PollResult::Fail(name + " " + (qtype == ns_t_a ? "A" : "AAAA") + ": " +
                                HerrorText(state.res_h_errno));
      }
      DnsAnswer parsed = ParseDnsResponse(std::span(answer.data(), static_cast<size_t>(n)), qtype);
      if (!parsed.ok)
        return PollResult::Fail(name + " " + (qtype == ns_t_a ? "A" : "AAAA") + ": " +
                                parsed.error);
      found += parsed.addresses.size();
      all.insert(all.end(), parsed.addresses.begin(), parsed.addresses.end());
    }
    if (found == 0) return PollResult::Fail(name + ": no A or AAAA records");
  }
  std::sort(all.begin(), all.end());
  all.erase(std::unique(all.begin(), all.end()), all.end());
  std::vector<DiscoveredNode> nodes;
  for (const auto& a : all)
    nodes.push_back(DiscoveredNode{"", {IpPrefix{a, a.is_v4() ? 32 : 128}}, "dns"});
  return PollResult::Ok(std::move(nodes));
}

}  // namespace meshflow::discovery
