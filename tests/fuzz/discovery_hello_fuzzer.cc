// Any bytes as a hello request, a hello reply and a DNS answer: no crash; a decoded reply
// re-encodes to the same bytes; an answer to a request is never larger than the request.
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <span>

#include "common/discovery/dns.h"
#include "common/discovery/hello.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace meshflow::discovery;
  const std::span<const uint8_t> bytes(data, size);
  HelloError error{};
  if (const auto id = DecodeHelloReply(bytes, &error)) {
    const auto again = EncodeHelloReply(*id);
    if (!again || again->size() != size || std::memcmp(again->data(), data, size) != 0)
      std::abort();
  }
  static const std::vector<meshflow::IpPrefix> addresses(
      kHelloMaxAddresses, *meshflow::IpPrefix::Parse("fd7a:115c:a1e0::1/128"));
  if (const auto reply = AnswerHello(bytes, std::string(63, 'n'), addresses, &error)) {
    if (reply->size() > size || !DecodeHelloRequest(bytes, &error)) std::abort();
  }
  for (const int qtype : {1, 28}) {
    const DnsAnswer a = ParseDnsResponse(bytes, qtype);
    if (!a.ok && !a.addresses.empty()) std::abort();
  }
  return 0;
}
