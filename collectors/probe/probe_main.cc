// meshflow-probe: the exporter's prober and reflector from the command line. Prints every RTT
// and a summary per peer and method, like `ping` but with meshflow's methods and loss split; or,
// with --reflect-only, runs just the UDP reflector.
#include <CLI/CLI.hpp>
#include <algorithm>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <map>
#include <mutex>
#include <thread>

#include "collectors/probe/prober.h"
#include "common/core/config_reader.h"
#include "common/core/log.h"

namespace {

using namespace meshflow::probe;
using std::chrono::nanoseconds;

volatile std::sig_atomic_t g_stop = 0;
void OnSignal(int) { g_stop = 1; }

double Quantile(std::vector<double> v, double q) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  const double pos = q * static_cast<double>(v.size() - 1);
  const size_t lo = static_cast<size_t>(pos);
  const size_t hi = std::min(lo + 1, v.size() - 1);
  return v[lo] + (v[hi] - v[lo]) * (pos - static_cast<double>(lo));
}

nanoseconds DurationFlag(const std::string& text, const char* flag) {
  auto d = meshflow::ParseDuration(text);
  if (!d || d->count() <= 0) throw CLI::ValidationError(flag, "not a duration: " + text);
  return *d;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"meshflow-probe: RTT, loss and jitter to peers with kernel timestamps"};
  std::vector<std::string> peer_args, method_args{"icmp", "udp"};
  std::string interval = "1s", timeout = "3s", duration = "0s", node_name = "meshflow-probe";
  std::string reflector_address = "0.0.0.0", log_level = "warn";
  uint64_t count = 0;
  uint16_t tcp_port = 6443, udp_port = 9474, reflector_port = 0;
  double reflector_rate = 50;
  bool samples = false, reflect_only = false;
  app.add_option("--peer", peer_args, "NAME=ADDRESS to probe (IP literal or DNS name); repeatable");
  app.add_option("--method", method_args, "icmp, udp or tcp; repeatable")->delimiter(',');
  app.add_option("--interval", interval, "Time between probes per peer and method");
  app.add_option("--timeout", timeout, "Deadline of each probe; later replies count as late");
  app.add_option("--count", count, "Probes per peer and method, then print the summary and exit");
  app.add_option("--duration", duration, "Stop after this long (0s: until --count or a signal)");
  app.add_option("--tcp-port", tcp_port, "Port the tcp method connects to");
  app.add_option("--udp-port", udp_port, "Port of the peers' reflectors");
  app.add_option("--reflector-port", reflector_port, "Run a reflector on this UDP port (0: none)");
  app.add_option("--reflector-address", reflector_address, "Address the reflector listens on");
  app.add_option("--reflector-rate", reflector_rate, "Replies per second per source at most");
  app.add_option("--node-name", node_name, "src_node of the summary lines");
  app.add_flag("--samples", samples, "Print one line per reply received in time");
  app.add_flag("--reflect-only", reflect_only, "Only run the reflector (needs --reflector-port)");
  app.add_option("--log.level", log_level, "debug, info, warn or error");
  CLI11_PARSE(app, argc, argv);

  meshflow::SetUpLogging(log_level, meshflow::LogFormat::kLogfmt);
  ProberOptions o;
  o.node_name = node_name;
  try {
    o.interval = DurationFlag(interval, "--interval");
    o.timeout = DurationFlag(timeout, "--timeout");
  } catch (const CLI::Error& e) {
    return app.exit(e);
  }
  const auto run_for = meshflow::ParseDuration(duration).value_or(nanoseconds(0));
  o.reflector_enabled = reflector_port != 0;
  o.reflector_port = reflector_port;
  o.reflector_address = reflector_address;
  o.reflector_rate = reflector_rate;
  o.max_probes_per_series = count;
  std::vector<Method> methods;
  for (const auto& m : method_args) {
    auto parsed = ParseMethod(m);
    if (!parsed) {
      std::fprintf(stderr, "unknown method %s (icmp, udp, tcp)\n", m.c_str());
      return 2;
    }
    methods.push_back(*parsed);
  }
  if (!reflect_only) {
    for (const auto& p : peer_args) {
      const auto eq = p.find('=');
      if (eq == std::string::npos || eq == 0 || eq + 1 == p.size()) {
        std::fprintf(stderr, "--peer wants NAME=ADDRESS, got %s\n", p.c_str());
        return 2;
      }
      o.peers.push_back(PeerTarget{p.substr(0, eq), p.substr(eq + 1), methods, tcp_port, udp_port});
    }
  }
  if (o.peers.empty() && !o.reflector_enabled) {
    std::fprintf(stderr, "nothing to do: give --peer or --reflector-port\n");
    return 2;
  }

  std::mutex mutex;
  std::map<std::pair<std::string, Method>, std::vector<double>> rtts;
  o.on_rtt = [&](const std::string& peer, Method method, uint64_t sequence, double rtt) {
    std::lock_guard lock(mutex);
    rtts[{peer, method}].push_back(rtt);
    if (samples)
      std::printf("rtt peer=%s method=%s seq=%llu rtt_seconds=%.9f\n", peer.c_str(),
                  std::string(MethodName(method)).c_str(),
                  static_cast<unsigned long long>(sequence), rtt);
  };

  std::signal(SIGINT, OnSignal);
  std::signal(SIGTERM, OnSignal);
  Prober prober;
  prober.Start(o);
  const auto start = std::chrono::steady_clock::now();
  // The --count check reads a snapshot: poll often only then. A timed run wakes five times a
  // second, so this thread does not add to what a benchmark measures of the prober.
  const auto poll = count != 0 ? std::chrono::milliseconds(20) : std::chrono::milliseconds(200);
  while (!g_stop) {
    std::this_thread::sleep_for(poll);
    if (run_for.count() > 0 && std::chrono::steady_clock::now() - start >= run_for) break;
    if (count != 0 && !o.peers.empty()) {
      const ProberSnapshot snap = prober.Snapshot();
      const bool done = std::all_of(snap.series.begin(), snap.series.end(), [&](const auto& s) {
        return s.stats.sent >= count && s.in_flight == 0;
      });
      if (done) break;
    }
  }
  prober.Stop();
  const ProberSnapshot snap = prober.Snapshot();
  std::lock_guard lock(mutex);
  for (const auto& s : snap.series) {
    const auto& v = rtts[{s.peer, s.method}];
    double mean = 0;
    for (double x : v) mean += x;
    if (!v.empty()) mean /= static_cast<double>(v.size());
    std::string errors;
    for (const auto& [reason, n] : s.stats.errors)
      errors += (errors.empty() ? "" : ",") + reason + ":" + std::to_string(n);
    std::printf(
        "summary src=%s peer=%s method=%s sent=%llu received=%llu lost=%llu late=%llu "
        "duplicates=%llu reordered=%llu forward_lost=%llu return_lost=%llu fallbacks=%llu "
        "mean_seconds=%.9f median_seconds=%.9f p99_seconds=%.9f jitter_seconds=%.9f errors=%s\n",
        snap.node_name.c_str(), s.peer.c_str(), std::string(MethodName(s.method)).c_str(),
        static_cast<unsigned long long>(s.stats.sent),
        static_cast<unsigned long long>(s.stats.received),
        static_cast<unsigned long long>(s.stats.lost),
        static_cast<unsigned long long>(s.stats.late),
        static_cast<unsigned long long>(s.stats.duplicates),
        static_cast<unsigned long long>(s.stats.reordered),
        static_cast<unsigned long long>(s.stats.forward_lost),
        static_cast<unsigned long long>(s.stats.return_lost),
        static_cast<unsigned long long>(s.stats.timestamp_fallbacks), mean, Quantile(v, 0.5),
        Quantile(v, 0.99), s.stats.jitter_seconds, errors.empty() ? "none" : errors.c_str());
  }
  // All series of a method together: the scale benchmark's figures.
  std::map<Method, std::vector<double>> by_method;
  std::map<Method, size_t> series_count;
  for (const auto& [key, v] : rtts)
    by_method[key.second].insert(by_method[key.second].end(), v.begin(), v.end());
  for (const auto& s : snap.series) ++series_count[s.method];
  for (const auto& [method, v] : by_method) {
    std::printf(
        "overall method=%s series=%zu samples=%zu min_seconds=%.9f median_seconds=%.9f "
        "p99_seconds=%.9f p999_seconds=%.9f max_seconds=%.9f\n",
        std::string(MethodName(method)).c_str(), series_count[method], v.size(), Quantile(v, 0),
        Quantile(v, 0.5), Quantile(v, 0.99), Quantile(v, 0.999), Quantile(v, 1));
  }
  std::printf("prober icmp_socket=%s\n", snap.icmp_socket.c_str());
  if (snap.reflector_running) {
    const auto& r = snap.reflector;
    uint64_t malformed = r.not_request;
    for (auto m : r.malformed) malformed += m;
    std::printf("reflector requests=%llu replies=%llu rate_limited=%llu malformed=%llu\n",
                static_cast<unsigned long long>(r.requests),
                static_cast<unsigned long long>(r.replies),
                static_cast<unsigned long long>(r.rate_limited),
                static_cast<unsigned long long>(malformed));
  }
  std::fflush(stdout);
  return 0;
}
