// A gateway fed with realistic pushes for the mesh page's browser test and benchmark.
//
//   mesh_fixture_server [--nodes N] [--rounds R]
//
// Without --nodes: the five nodes of the reference cluster (hybrid-tailscale) with one lossy
// link, one stale node, one asymmetric pair and one pair not probed. With --nodes N: N nodes in
// groups of ten probing each other. Each round every (live) node pushes the exposition its
// exporter would write after 10 more seconds of 1 Hz probes; a fake clock steps the gateway's
// time, so minutes of history take no waiting. Prints "listening on HOST:PORT" and the time one
// /api/v1/mesh answer takes in-process, then serves until stdin closes.
#include <time.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "common/core/clock.h"
#include "common/core/histogram.h"
#include "common/core/metric_builder.h"
#include "common/mesh/mesh_api.h"
#include "common/text_format/writer.h"
#include "gateway/gateway.h"

namespace {

using meshflow::FamilyBuilder;
using meshflow::LatencyHistogram;
using prometheus::MetricType;

struct LinkSpec {
  double rtt = 0;           // seconds
  double forward_loss = 0;  // probability per probe
  double return_loss = 0;
  double mtu = 0;  // 0: no path MTU series
};

struct LinkState {
  LinkSpec spec;
  LatencyHistogram icmp, udp;
  double sent = 0, lost_icmp = 0, lost_udp = 0, forward = 0, back = 0;
};

struct Flow {
  std::string src, dst, role;
  double bytes_per_second;
};

struct Scenario {
  std::vector<std::string> nodes;
  std::map<std::pair<std::string, std::string>, LinkState> links;  // src, dst
  std::vector<Flow> flows;
  std::map<std::string, int> stops_after;  // node -> last round it pushes
};

Scenario ReferenceCluster() {
  Scenario s;
  s.nodes = {"ct-serv-jp", "gce-agent-tw", "acer-agent", "laptop-agent", "desktop-agent"};
  // tailscale ping round trips of the reference cluster, in ms; the rest follow from them.
  std::map<std::pair<std::string, std::string>, double> ms{
      {{"gce-agent-tw", "ct-serv-jp"}, 48},   {{"gce-agent-tw", "acer-agent"}, 6},
      {{"ct-serv-jp", "acer-agent"}, 80},     {{"laptop-agent", "acer-agent"}, 1},
      {{"laptop-agent", "desktop-agent"}, 1}, {{"acer-agent", "desktop-agent"}, 1},
      {{"ct-serv-jp", "laptop-agent"}, 81},   {{"ct-serv-jp", "desktop-agent"}, 81},
      {{"gce-agent-tw", "laptop-agent"}, 7},  {{"gce-agent-tw", "desktop-agent"}, 7}};
  for (const auto& a : s.nodes) {
    for (const auto& b : s.nodes) {
      if (a == b) continue;
      auto it = ms.find({a, b});
      if (it == ms.end()) it = ms.find({b, a});
      LinkSpec spec;
      spec.rtt = it->second / 1000;
      spec.mtu = 1280;
      s.links[{a, b}].spec = spec;
    }
  }
  // The lossy link: gce-agent-tw's probes to ct-serv-jp, mostly lost on the way out.
  s.links[{"gce-agent-tw", "ct-serv-jp"}].spec.forward_loss = 0.06;
  s.links[{"gce-agent-tw", "ct-serv-jp"}].spec.return_loss = 0.02;
  // The asymmetric pair: ct-serv-jp reaches laptop-agent through a relay, twice the way back.
  s.links[{"ct-serv-jp", "laptop-agent"}].spec.rtt = 0.165;
  // Not probed: laptop-agent has no probe to gce-agent-tw (its peers list leaves it out).
  s.links.erase({"laptop-agent", "gce-agent-tw"});
  // The stale node: desktop-agent (on demand) stopped pushing after the first minute.
  s.stops_after["desktop-agent"] = 6;
  s.flows = {
      {"acer-agent", "ct-serv-jp", "k8s-api", 5200},
      {"gce-agent-tw", "ct-serv-jp", "k8s-api", 4100},
      {"laptop-agent", "ct-serv-jp", "k8s-api", 3900},
      {"acer-agent", "ct-serv-jp", "postgresql", 61000},
      {"ct-serv-jp", "acer-agent", "postgresql", 240000},
      {"gce-agent-tw", "acer-agent", "http", 88000},
      {"acer-agent", "gce-agent-tw", "http", 730000},
      {"ct-serv-jp", "acer-agent", "prometheus", 2100},
      {"ct-serv-jp", "gce-agent-tw", "prometheus", 2000},
      {"acer-agent", "ct-serv-jp", "prometheus", 36000},
      {"gce-agent-tw", "ct-serv-jp", "prometheus", 24000},
      {"acer-agent", "ct-serv-jp", "cli-relay", 9000},
  };
  return s;
}

Scenario Grid(int n) {
  Scenario s;
  for (int i = 0; i < n; ++i)
    s.nodes.push_back("site" + std::to_string(i / 10) + "-node" + std::to_string(i));
  for (int i = 0; i < n; ++i) {
    for (int j = 0; j < n; ++j) {
      if (i == j) continue;
      LinkSpec spec;
      spec.rtt = (i / 10 == j / 10 ? 0.0008 : 0.012 * (1 + std::abs(i / 10 - j / 10))) +
                 0.0001 * ((i * 7 + j * 3) % 10);
      spec.forward_loss = (i + j) % 17 == 0 ? 0.03 : 0;
      s.links[{s.nodes[i], s.nodes[j]}].spec = spec;
    }
    s.flows.push_back({s.nodes[i], s.nodes[(i + 1) % n], "k8s-api", 3000.0 + 10 * i});
    s.flows.push_back({s.nodes[i], s.nodes[(i + 7) % n], "etcd-peer", 12000.0 + 50 * i});
  }
  return s;
}

// One node's exposition after another 10 s of 1 Hz probes, as its exporter writes it.
std::string Exposition(Scenario& s, const std::string& node, int round, std::mt19937& rng) {
  std::normal_distribution<double> jitter(0, 1);
  std::uniform_real_distribution<double> unit(0, 1);
  std::vector<prometheus::MetricFamily> out;
  FamilyBuilder rtt("meshflow_probe_rtt_seconds", "Round-trip time.", MetricType::Histogram);
  FamilyBuilder sent("meshflow_probe_sent_total", "Probes sent.", MetricType::Counter);
  FamilyBuilder received("meshflow_probe_received_total", "Answered.", MetricType::Counter);
  FamilyBuilder lost("meshflow_probe_lost_total", "Lost.", MetricType::Counter);
  FamilyBuilder forward("meshflow_probe_forward_lost_total", "Lost out.", MetricType::Counter);
  FamilyBuilder back("meshflow_probe_return_lost_total", "Lost back.", MetricType::Counter);
  FamilyBuilder mtu("meshflow_probe_path_mtu_bytes", "Path MTU.", MetricType::Gauge);
  for (auto& [key, l] : s.links) {
    if (key.first != node) continue;
    for (int i = 0; i < 10; ++i) {
      l.sent += 1;
      const double r =
          std::max(0.00005, l.spec.rtt * (1 + 0.05 * jitter(rng)) + 0.0002 * std::abs(jitter(rng)));
      l.icmp.Observe(r * 1.01);
      if (unit(rng) < l.spec.forward_loss) {
        l.lost_udp += 1;
        l.forward += 1;
      } else if (unit(rng) < l.spec.return_loss) {
        l.lost_udp += 1;
        l.back += 1;
      } else {
        l.udp.Observe(r);
      }
      if (unit(rng) < l.spec.forward_loss + l.spec.return_loss) {
        l.lost_icmp += 1;
      }
    }
    for (const char* method : {"icmp", "udp"}) {
      const bool udp = std::string(method) == "udp";
      meshflow::LabelPairs labels{{"src_node", node}, {"dst_node", key.second}, {"method", method}};
      rtt.Histogram(labels, udp ? l.udp : l.icmp);
      sent.Counter(labels, l.sent);
      received.Counter(labels, static_cast<double>(udp ? l.udp.count() : l.icmp.count()));
      lost.Counter(labels, udp ? l.lost_udp : l.lost_icmp);
      if (udp) {
        forward.Counter(labels, l.forward);
        back.Counter(labels, l.back);
      }
    }
    if (l.spec.mtu > 0) mtu.Gauge({{"src_node", node}, {"dst_node", key.second}}, l.spec.mtu);
  }
  rtt.AppendTo(out);
  sent.AppendTo(out);
  received.AppendTo(out);
  lost.AppendTo(out);
  forward.AppendTo(out);
  back.AppendTo(out);
  mtu.AppendTo(out);
  FamilyBuilder info("meshflow_capture_interface_info", "Interface kinds.", MetricType::Gauge);
  info.Gauge({{"iface", "tailscale0"}, {"kind", "overlay"}}, 1);
  info.Gauge({{"iface", "eth0"}, {"kind", "underlay"}}, 1);
  info.AppendTo(out);
  FamilyBuilder bytes("meshflow_flow_bytes_total", "IP bytes.", MetricType::Counter);
  // The same bytes again on the underlay as WireGuard, one series per node pair whatever the
  // roles inside: they must not count as role traffic.
  std::map<std::pair<std::string, std::string>, double> underlay;
  for (const auto& f : s.flows) {
    if (f.src != node && f.dst != node) continue;
    const double total = f.bytes_per_second * 10 * (round + 1) * (f.src == node ? 1 : 0.99);
    bytes.Counter(
        {{"iface", "tailscale0"}, {"role", f.role}, {"src_node", f.src}, {"dst_node", f.dst}},
        total);
    underlay[{f.src, f.dst}] += total * 1.05;
  }
  for (const auto& [pair, total] : underlay) {
    bytes.Counter({{"iface", "eth0"},
                   {"role", "tailscale"},
                   {"src_node", pair.first},
                   {"dst_node", pair.second}},
                  total);
  }
  bytes.AppendTo(out);
  return meshflow::SerializeExposition(out);
}

}  // namespace

int main(int argc, char** argv) {
  int nodes = 0, rounds = 30;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string a = argv[i];
    if (a == "--nodes")
      nodes = std::atoi(argv[i + 1]);
    else if (a == "--rounds")
      rounds = std::atoi(argv[i + 1]);
    else {
      std::fprintf(stderr, "usage: %s [--nodes N] [--rounds R]\n", argv[0]);
      return 2;
    }
  }
  Scenario s = nodes > 0 ? Grid(nodes) : ReferenceCluster();

  char dir_template[] = "/tmp/mesh-fixture-XXXXXX";
  const std::filesystem::path dir = mkdtemp(dir_template);
  std::ofstream config(dir / "gateway.yaml");
  config << "targets:\n  push:\n";
  for (const auto& n : s.nodes) {
    std::ofstream(dir / n) << "token-" << n << "\n";
    config << "    - {node: " << n << ", token_file: " << n << "}\n";
  }
  // 60 nodes' stored pushes (each a full probe mesh row) need more than the default budget.
  config << "push: {max_body_bytes: 67108864}\nmemory: {budget_bytes: 4294967296}\n"
         << "mesh: {resolution: 10s, stale_after: 30s}\n";
  config.close();

  meshflow::gateway::SetMallocPolicy();  // as the gateway's main does: it decides what memory costs
  meshflow::FakeClock clock;
  clock.SetWallOffset(std::chrono::duration_cast<std::chrono::nanoseconds>(
                          std::chrono::system_clock::now().time_since_epoch()) -
                      std::chrono::seconds(10 * rounds) - clock.Monotonic());
  meshflow::gateway::GatewayOptions options;
  options.listen_addresses = {"127.0.0.1:0"};
  options.config_file = (dir / "gateway.yaml").string();
  options.http.threads = 8;
  meshflow::gateway::Gateway gateway(options, clock);
  gateway.Start();

  std::mt19937 rng(21);
  // Every node's push after another 10 s.
  auto push_round = [&](int round) {
    clock.Advance(std::chrono::seconds(10));
    for (const auto& n : s.nodes) {
      if (auto stop = s.stops_after.find(n); stop != s.stops_after.end() && round > stop->second)
        continue;
      meshflow::HttpRequest r;
      r.method = "POST";
      r.path = "/push";
      r.query = "node=" + n;
      r.body = Exposition(s, n, round, rng);
      // As an HTTP client sends it: the gateway takes only pushes whose length is known.
      r.headers = {{"Authorization", "Bearer token-" + n},
                   {"Content-Type", "text/plain; version=0.0.4"},
                   {"Content-Length", std::to_string(r.body.size())}};
      const auto response = gateway.HandlePush(r);
      if (response.status != 200) {
        std::fprintf(stderr, "push of %s refused: %d %s\n", n.c_str(), response.status,
                     response.body.c_str());
        std::exit(1);
      }
    }
  };
  for (int round = 0; round < rounds; ++round) push_round(round);

  // The API's own cost, without HTTP: the query and the JSON for a 5 minute window.
  meshflow::mesh::MeshQuery q;
  q.method = "udp";
  const double now = std::chrono::duration<double>(clock.Wall().time_since_epoch()).count();
  auto span_ms = [](const timespec& x, const timespec& y) {
    return (y.tv_sec - x.tv_sec) * 1e3 + (y.tv_nsec - x.tv_nsec) / 1e6;
  };
  {
    // The first query sums every link's window (nothing cached yet), as after every node pushed,
    // into fresh memory.
    timespec a0{}, a1{}, a2{};
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &a0);
    const auto view = gateway.mesh_history().Query(q, now);
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &a1);
    const auto json = meshflow::mesh::MeshJson(view);
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &a2);
    std::printf(
        "in-process first query (every link summed, fresh memory): query %.3f ms CPU, json %.3f ms "
        "CPU\n",
        span_ms(a0, a1), span_ms(a1, a2));
  }
  // The answer as the server makes it (the route's handler, its memory kept between answers),
  // in wall time and this thread's CPU time: on a busy machine the first includes waiting for a
  // core, the second only the work.
  meshflow::HttpHandler api;
  for (auto& [path, handler] : meshflow::mesh::MeshRoutes(gateway.mesh_history(), clock))
    if (path == "/api/v1/mesh") api = std::move(handler);
  meshflow::HttpRequest request;
  request.method = "GET";
  request.path = "/api/v1/mesh";
  request.query = "window=5m&method=udp";
  auto answer = [&] {
    auto r = api(request);
    const size_t size = r.body.size();
    if (r.recycle_body) r.recycle_body(std::move(r.body));  // as the server does once it is sent
    return size;
  };
  answer();
  const int reps = 20;
  timespec c0{}, c1{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &c0);
  const auto t0 = std::chrono::steady_clock::now();
  size_t json_bytes = 0;
  for (int i = 0; i < reps; ++i) json_bytes = answer();
  const double per_ms =
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count() /
      reps;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &c1);
  const double cpu_ms = ((c1.tv_sec - c0.tv_sec) * 1e3 + (c1.tv_nsec - c0.tv_nsec) / 1e6) / reps;
  std::printf(
      "in-process answer (query + JSON, window summaries cached, memory reused): %.3f ms wall, "
      "%.3f ms CPU for %zu bytes (%zu nodes, method udp, 5m)\n",
      per_ms, cpu_ms, json_bytes, s.nodes.size());
  if (nodes > 0) {
    // What a page polling every 5 s meets about every other answer at a 10 s resolution: every
    // link got a point since the last answer, so each one's window is summed again.
    const int fresh_rounds = 5;
    double fresh_cpu_ms = 0;
    for (int k = 0; k < fresh_rounds; ++k) {
      push_round(rounds + k);
      timespec f0{}, f1{};
      clock_gettime(CLOCK_THREAD_CPUTIME_ID, &f0);
      answer();
      clock_gettime(CLOCK_THREAD_CPUTIME_ID, &f1);
      fresh_cpu_ms += span_ms(f0, f1) / fresh_rounds;
    }
    std::printf(
        "in-process answer after a new point on every link (every window summed, memory reused): "
        "%.3f ms CPU (mean of %d)\n",
        fresh_cpu_ms, fresh_rounds);
  }
  {
    const double later = std::chrono::duration<double>(clock.Wall().time_since_epoch()).count();
    meshflow::mesh::MeshView view;
    std::string json;
    gateway.mesh_history().Query(q, later, &view);
    meshflow::mesh::MeshJson(view, &json);
    timespec a0{}, a1{}, a2{};
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &a0);
    gateway.mesh_history().Query(q, later, &view);
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &a1);
    meshflow::mesh::MeshJson(view, &json);
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &a2);
    std::printf("of which query %.3f ms CPU, json %.3f ms CPU\n", span_ms(a0, a1), span_ms(a1, a2));
  }
  std::filesystem::remove_all(dir);
  std::printf("history bytes: %zu\n", gateway.mesh_history().bytes());
  for (const auto& a : gateway.BoundAddresses()) std::printf("listening on %s\n", a.c_str());
  std::fflush(stdout);
  // Serve until whoever started us closes our stdin.
  char buf[64];
  while (read(0, buf, sizeof(buf)) > 0) {
  }
  gateway.Stop();
  return 0;
}
