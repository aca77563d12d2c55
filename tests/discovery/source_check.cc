// Polls one discovery source each time a line arrives on stdin and prints the result, so a test
// script can change the world (a WireGuard peer, a DNS record) between polls:
//   ok <n> then one "<name>|<address>,<address>..." line per node, or
//   error <message>
// Usage: discovery_source_check wireguard <socket_dir> [interface]
//        discovery_source_check dns <server> <name>...
//        discovery_source_check tailscale <socket>
#include <iostream>
#include <memory>
#include <string>

#include "common/discovery/dns.h"
#include "common/discovery/tailscale.h"
#include "common/discovery/wireguard.h"

using namespace meshflow::discovery;

int main(int argc, char** argv) {
  if (argc < 3) {
    std::cerr << "usage: " << argv[0] << " wireguard|dns|tailscale <args>\n";
    return 2;
  }
  const std::string kind = argv[1];
  std::unique_ptr<Source> source;
  if (kind == "wireguard") {
    std::vector<std::string> interfaces;
    if (argc > 3) interfaces.push_back(argv[3]);
    source = std::make_unique<WireGuardSource>(argv[2], interfaces);
  } else if (kind == "dns" && argc > 3) {
    source = std::make_unique<DnsSource>(std::vector<std::string>(argv + 3, argv + argc), argv[2]);
  } else if (kind == "tailscale") {
    source = std::make_unique<TailscaleSource>(argv[2], TailscaleFilter{});
  } else {
    std::cerr << "unknown source " << kind << "\n";
    return 2;
  }
  std::string line;
  while (std::getline(std::cin, line)) {
    const PollResult r = source->Poll();
    if (!r.nodes) {
      std::cout << "error " << r.error << std::endl;
      continue;
    }
    std::cout << "ok " << r.nodes->size() << "\n";
    for (const auto& n : *r.nodes) {
      std::cout << n.name << "|";
      for (size_t i = 0; i < n.addresses.size(); ++i)
        std::cout << (i ? "," : "") << n.addresses[i].ToString();
      std::cout << "\n";
    }
    std::cout << std::flush;
  }
  return 0;
}
