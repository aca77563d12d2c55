#include "tests/testbed/emulator/control.h"

#include <charconv>
#include <cstdio>
#include <sstream>

#include "common/core/config_reader.h"

namespace meshflow::testbed {
namespace {

std::string FormatLoss(double loss) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%g%%", loss * 100);
  return buf;
}

}  // namespace

std::string FormatState(const Overlay& overlay) {
  std::ostringstream out;
  const auto& topo = overlay.topology();
  for (size_t i = 0; i < overlay.node_count(); ++i) {
    const auto& n = topo.nodes[i];
    out << "node " << n.name << " ipv4=" << n.ipv4.ToString() << " ipv6=" << n.ipv6.ToString()
        << " state=" << (overlay.node_up(i) ? "up" : "down");
    if (overlay.mode() == OverlayMode::kWireGuard)
      out << " underlay=" << n.underlay_ipv4.ToString();
    if (n.lan) {
      out << " lan=" << n.lan->segment << " lan_address=" << n.lan->address.address.ToString();
      if (n.lan->vxlan_address)
        out << " vxlan_address=" << n.lan->vxlan_address->address.ToString();
    }
    out << "\n";
  }
  for (size_t from = 0; from < overlay.node_count(); ++from) {
    for (size_t to = 0; to < overlay.node_count(); ++to) {
      if (from == to) continue;
      const LinkModel& l = overlay.link(from, to);
      const LinkParams& p = l.params();
      const LinkCounters& c = l.counters();
      out << "link " << topo.nodes[from].name << " " << topo.nodes[to].name
          << " state=" << (p.up ? "up" : "cut") << " delay=" << FormatDelay(p.delay)
          << " jitter=" << FormatDelay(p.jitter) << " loss=" << FormatLoss(p.loss)
          << " rate=" << FormatRate(p.rate_bps)
          << " mtu=" << (p.mtu > 0 ? std::to_string(p.mtu) : std::string("unlimited"))
          << " packets=" << c.packets << " bytes=" << c.bytes;
      for (int r = 1; r < static_cast<int>(DropReason::kCount); ++r)
        out << " dropped_" << DropReasonName(static_cast<DropReason>(r)) << "=" << c.dropped[r];
      out << "\n";
    }
  }
  out << "overlay mode=" << (overlay.mode() == OverlayMode::kWireGuard ? "wireguard" : "tun")
      << " ipv4=" << topo.overlay_ipv4.ToString() << " ipv6=" << topo.overlay_ipv6.ToString();
  if (overlay.mode() == OverlayMode::kWireGuard)
    out << " underlay_ipv4=" << topo.underlay.ipv4.ToString()
        << " underlay_device=" << topo.underlay.device;
  out << "\n";
  for (int r = 1; r < static_cast<int>(RouteDrop::kCount); ++r)
    out << "overlay dropped_" << RouteDropName(static_cast<RouteDrop>(r)) << "="
        << overlay.route_drops(static_cast<RouteDrop>(r)) << "\n";
  for (int r = 1; r < static_cast<int>(MalformedReason::kCount); ++r)
    out << "overlay malformed_" << MalformedReasonName(static_cast<MalformedReason>(r)) << "="
        << overlay.malformed(static_cast<MalformedReason>(r)) << "\n";
  const auto& late = overlay.lateness();
  out << "overlay released=" << late.count << " release_late_mean_us="
      << (late.count ? static_cast<double>(late.sum.count()) / 1e3 / static_cast<double>(late.count)
                     : 0.0)
      << " release_late_max_us=" << static_cast<double>(late.max.count()) / 1e3
      << " release_late_over_100us=" << late.over_100us
      << " release_late_over_500us=" << late.over_500us
      << " release_late_over_1ms=" << late.over_1ms << "\n";
  for (const auto& [reason, count] : overlay.mover_drops())
    out << "overlay dropped_" << reason << "=" << count << "\n";
  return out.str();
}

namespace {

struct Pair {
  size_t a = 0;
  size_t b = 0;
};

ControlReply Error(const std::string& message) { return {false, "error: " + message + "\n"}; }

}  // namespace

ControlReply ExecuteCommand(Overlay& overlay, const std::vector<std::string>& argv) {
  if (argv.empty()) return Error("no command; try show, cut, restore, down, up, set, reset");
  const std::string& cmd = argv[0];
  const auto& topo = overlay.topology();
  auto node = [&](size_t i, size_t* out) -> std::string {
    if (i >= argv.size()) return "missing node name";
    const auto found = topo.FindNode(argv[i]);
    if (!found) return "unknown node '" + argv[i] + "'";
    *out = *found;
    return "";
  };

  if (cmd == "show" || cmd == "stats") {
    if (argv.size() != 1) return Error(cmd + " takes no arguments");
    return {true, FormatState(overlay)};
  }
  if (cmd == "reset") {
    if (argv.size() != 1) return Error("reset takes no arguments");
    overlay.Reset();
    return {true, "ok\n"};
  }
  if (cmd == "down" || cmd == "up") {
    size_t n = 0;
    if (auto err = node(1, &n); !err.empty()) return Error(err);
    if (argv.size() != 2) return Error(cmd + " takes one node name");
    overlay.SetNodeUp(n, cmd == "up");
    return {true, "ok\n"};
  }
  if (cmd != "cut" && cmd != "restore" && cmd != "set")
    return Error("unknown command '" + cmd + "'; try show, cut, restore, down, up, set, reset");

  Pair pair;
  if (auto err = node(1, &pair.a); !err.empty()) return Error(err);
  if (auto err = node(2, &pair.b); !err.empty()) return Error(err);
  if (pair.a == pair.b) return Error("a link needs two different nodes");

  bool one_way = false;
  LinkParams change_ab = overlay.link(pair.a, pair.b).params();
  LinkParams change_ba = overlay.link(pair.b, pair.a).params();
  bool has_rtt = false;
  // Options are collected first and applied only when all of them parse.
  std::vector<std::pair<std::string, std::string>> options;
  for (size_t i = 3; i < argv.size(); ++i) {
    const std::string& opt = argv[i];
    if (opt == "--one-way") {
      one_way = true;
      continue;
    }
    if (cmd != "set") return Error(cmd + " takes only --one-way, got '" + opt + "'");
    if (opt != "--rtt" && opt != "--delay" && opt != "--jitter" && opt != "--loss" &&
        opt != "--rate" && opt != "--mtu")
      return Error("unknown option '" + opt + "'; try --rtt --delay --jitter --loss --rate --mtu");
    if (i + 1 >= argv.size()) return Error(opt + " needs a value");
    options.emplace_back(opt, argv[++i]);
  }
  if (cmd == "cut" || cmd == "restore") {
    change_ab.up = cmd == "restore";
    change_ba.up = cmd == "restore";
  } else {
    if (options.empty())
      return Error("set needs at least one of --rtt --delay --jitter --loss --rate --mtu");
    for (const auto& [opt, value] : options) {
      if (opt == "--rtt" || opt == "--delay" || opt == "--jitter") {
        const auto d = ParseDuration(value);
        if (!d) return Error(opt + ": expected a duration such as 40ms, got '" + value + "'");
        if (opt == "--rtt") {
          has_rtt = true;
          change_ab.delay = change_ba.delay = *d / 2;
        } else if (opt == "--delay") {
          change_ab.delay = change_ba.delay = *d;
        } else {
          change_ab.jitter = change_ba.jitter = *d;
        }
      } else if (opt == "--loss") {
        double loss = 0;
        if (!ParseLoss(value, &loss))
          return Error("--loss: expected 0% to 100% such as 5%, got '" + value + "'");
        change_ab.loss = change_ba.loss = loss;
      } else if (opt == "--mtu") {
        int64_t mtu = 0;
        const auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), mtu);
        if (ec != std::errc() || end != value.data() + value.size() || mtu < 0 || mtu > 65535)
          return Error("--mtu: expected bytes from 0 (no limit) to 65535, got '" + value + "'");
        change_ab.mtu = change_ba.mtu = mtu;
      } else {
        int64_t rate = 0;
        if (!ParseRate(value, &rate))
          return Error("--rate: expected a rate such as 10mbit or 0, got '" + value + "'");
        change_ab.rate_bps = change_ba.rate_bps = rate;
      }
    }
    if (has_rtt && one_way)
      return Error("--rtt covers both directions; with --one-way give --delay");
  }
  overlay.link(pair.a, pair.b).SetParams(change_ab);
  if (!one_way) overlay.link(pair.b, pair.a).SetParams(change_ba);
  return {true, "ok\n"};
}

}  // namespace meshflow::testbed
