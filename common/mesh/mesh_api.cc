#include "common/mesh/mesh_api.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <memory>
#include <mutex>

#include "common/mesh/mesh_page_assets.h"

namespace meshflow::mesh {

const std::string_view kMeshPageCsp =
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
    "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

namespace {

void AppendString(std::string& out, std::string_view s) {
  out += '"';
  // Names seldom need escaping: when none does, append it whole.
  if (std::none_of(s.begin(), s.end(), [](char c) {
        return c == '"' || c == '\\' || static_cast<unsigned char>(c) < 0x20;
      })) {
    out += s;
    out += '"';
    return;
  }
  for (const char c : s) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (static_cast<unsigned char>(c) < 0x20) {
      char buf[8];
      std::snprintf(buf, sizeof(buf), "\\u%04x", static_cast<unsigned>(c));
      out += buf;
    } else {
      out += c;
    }
  }
  out += '"';
}

// Finite numbers with five significant digits, more than a √2-wide histogram bucket resolves
// (an RTT of 48 ms to the microsecond); NaN and Inf as null. The common range is written by
// hand: std::to_chars with a precision was the largest single cost of a 60-node answer (tens of
// thousands of numbers). Numbers from 10^5 to 10^10 keep every digit of their whole part.
void AppendNumber(std::string& out, double v) {
  if (!std::isfinite(v)) {
    out += "null";
    return;
  }
  if (v == 0) {
    out += '0';
    return;
  }
  static constexpr double kPow10[] = {1, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10};
  const double a = std::fabs(v);
  if (a < 1e-4 || a >= 1e10) {
    char buf[32];
    const auto r = std::to_chars(buf, buf + sizeof(buf), v, std::chars_format::general, 5);
    out.append(buf, r.ptr);
    return;
  }
  // a >= 10^e; five significant digits leave 4 - e decimals.
  int e = -4;
  while (e < 9 && a >= (e >= 0 ? kPow10[e + 1] : 1 / kPow10[-e - 1])) ++e;
  const int decimals = std::max(0, 4 - e);
  const auto scaled = static_cast<uint64_t>(std::llround(a * kPow10[decimals]));
  const auto unit = static_cast<uint64_t>(kPow10[decimals]);
  if (v < 0) out += '-';
  char buf[24];
  auto r = std::to_chars(buf, buf + sizeof(buf), scaled / unit);
  out.append(buf, r.ptr);
  uint64_t frac = scaled % unit;
  if (frac == 0) return;
  int digits = decimals;
  while (frac % 10 == 0) {
    frac /= 10;
    --digits;
  }
  out += '.';
  r = std::to_chars(buf, buf + sizeof(buf), frac);
  out.append(static_cast<size_t>(digits - (r.ptr - buf)), '0');
  out.append(buf, r.ptr);
}

// Unix times and ages: fixed notation with `decimals` (at most 3) digits, so no precision is lost.
void AppendFixed(std::string& out, double v, int decimals) {
  if (!std::isfinite(v)) {
    out += "null";
    return;
  }
  static constexpr double kScale[] = {1, 10, 100, 1000};
  decimals = std::clamp(decimals, 0, 3);
  if (std::fabs(v) >= 1e14) {
    char buf[48];
    const auto r = std::to_chars(buf, buf + sizeof(buf), v, std::chars_format::fixed, decimals);
    out.append(buf, r.ptr);
    return;
  }
  const auto scaled = static_cast<uint64_t>(std::llround(std::fabs(v) * kScale[decimals]));
  const auto unit = static_cast<uint64_t>(kScale[decimals]);
  if (v < 0 && scaled != 0) out += '-';
  char buf[24];
  auto r = std::to_chars(buf, buf + sizeof(buf), scaled / unit);
  out.append(buf, r.ptr);
  if (decimals == 0) return;
  out += '.';
  r = std::to_chars(buf, buf + sizeof(buf), scaled % unit);
  out.append(static_cast<size_t>(decimals - (r.ptr - buf)), '0');
  out.append(buf, r.ptr);
}

void AppendInt(std::string& out, uint64_t v) {
  char buf[24];
  const auto r = std::to_chars(buf, buf + sizeof(buf), v);
  out.append(buf, r.ptr);
}

void Key(std::string& out, std::string_view k) {
  out += '"';
  out += k;
  out += "\":";
}

HttpResponse Json(int status, std::string body) {
  HttpResponse r;
  r.status = status;
  r.content_type = "application/json";
  r.body = std::move(body);
  r.headers.emplace_back("Cache-Control", "no-store");
  r.headers.emplace_back("X-Content-Type-Options", "nosniff");
  return r;
}

HttpResponse Asset(std::string_view content_type, std::string_view body) {
  HttpResponse r;
  r.content_type = std::string(content_type);
  r.body = std::string(body);
  r.headers.emplace_back("Content-Security-Policy", std::string(kMeshPageCsp));
  r.headers.emplace_back("X-Content-Type-Options", "nosniff");
  r.headers.emplace_back("Referrer-Policy", "no-referrer");
  return r;
}

// Keeps the memory of recent answers for the next ones. At 60 nodes an answer's view and JSON
// take about 1.5 MB; fresh pages for them cost more than the query and the JSON together (each
// page a fault, and on a virtual machine a slow one), so a page polling the API reuses them.
// Holds T's (a view, a JSON buffer) whose arrays keep their capacity when moved.
template <typename T>
class KeptMemory {
 public:
  // A kept T, or a fresh one when none is.
  T Take() {
    std::lock_guard lock(mutex_);
    if (kept_.empty()) return T{};
    T t = std::move(kept_.back());
    kept_.pop_back();
    return t;
  }
  void Keep(T&& t, size_t bytes) {
    std::lock_guard lock(mutex_);
    if (bytes <= kMaxKeptBytes && kept_.size() < kKept) kept_.push_back(std::move(t));
  }

 private:
  // Answers written at the same time that keep their memory; more are served from fresh memory.
  static constexpr size_t kKept = 2;
  // A view or JSON larger than this (a history near its 64 MiB default bound) gives its memory
  // back.
  static constexpr size_t kMaxKeptBytes = size_t{16} << 20;
  std::mutex mutex_;
  std::vector<T> kept_;
};

size_t ArrayBytes(const MeshView& v) {
  return v.links.capacity() * sizeof(LinkSummary) + v.traffic.capacity() * sizeof(TrafficSummary) +
         v.nodes.capacity() * sizeof(NodeSummary);
}

struct AnswerMemory {
  KeptMemory<MeshView> views;
  KeptMemory<std::string> bodies;
};

}  // namespace

std::string MeshJson(const MeshView& view) {
  std::string out;
  MeshJson(view, &out);
  return out;
}

void MeshJson(const MeshView& v, std::string* out_string) {
  std::string& out = *out_string;
  out.clear();
  // A udp link with its loss split takes about 240 bytes with short names.
  size_t names = 0;
  for (const auto& n : v.nodes) names += n.name.size();
  const size_t name_bytes = v.nodes.empty() ? 16 : names / v.nodes.size();
  out.reserve(256 + v.links.size() * (200 + 2 * name_bytes) + v.traffic.size() * 100 +
              v.nodes.size() * 80);
  out += '{';
  Key(out, "generated_at");
  AppendFixed(out, v.now, 3);
  out += ',';
  Key(out, "window_seconds");
  AppendNumber(out, v.window_seconds);
  out += ',';
  Key(out, "kept_seconds");
  AppendNumber(out, v.settings.retention_seconds);
  out += ',';
  Key(out, "resolution_seconds");
  AppendNumber(out, v.settings.resolution_seconds);
  out += ',';
  Key(out, "stale_after_seconds");
  AppendNumber(out, v.settings.stale_after_seconds);
  out += ',';
  Key(out, "rtt_thresholds_seconds");
  out += '[';
  for (size_t i = 0; i < v.settings.rtt_thresholds_seconds.size(); ++i) {
    if (i) out += ',';
    AppendNumber(out, v.settings.rtt_thresholds_seconds[i]);
  }
  out += "],";
  Key(out, "asymmetry");
  out += "{\"ratio\":";
  AppendNumber(out, v.settings.asymmetry_ratio);
  out += ",\"min_seconds\":";
  AppendNumber(out, v.settings.asymmetry_min_seconds);
  out += "},";
  Key(out, "history");
  out += "{\"bytes\":";
  AppendInt(out, v.bytes);
  out += ",\"max_bytes\":";
  AppendInt(out, v.settings.max_bytes);
  out += ",\"refused_nodes\":";
  AppendInt(out, v.refused_nodes);
  out += ",\"refused_links\":";
  AppendInt(out, v.refused_links);
  out += ",\"refused_traffic\":";
  AppendInt(out, v.refused_traffic);
  out += "},";
  Key(out, "methods");
  out += '[';
  for (size_t i = 0; i < v.methods.size(); ++i) {
    if (i) out += ',';
    AppendString(out, v.methods[i]);
  }
  out += "],";
  Key(out, "nodes");
  out += '[';
  for (size_t i = 0; i < v.nodes.size(); ++i) {
    const auto& n = v.nodes[i];
    if (i) out += ',';
    out += "{\"name\":";
    AppendString(out, n.name);
    out += ",\"group\":";
    AppendString(out, n.group);
    out += ",\"state\":";
    AppendString(out, n.state);
    out += ",\"age_seconds\":";
    if (n.age_seconds < 0) {
      out += "null";
    } else {
      AppendFixed(out, n.age_seconds, 1);
    }
    out += '}';
  }
  out += "],";
  Key(out, "links");
  out += '[';
  for (size_t i = 0; i < v.links.size(); ++i) {
    const auto& l = v.links[i];
    if (i) out += ',';
    out += "{\"src\":";
    AppendString(out, l.src);
    out += ",\"dst\":";
    AppendString(out, l.dst);
    out += ",\"method\":";
    AppendString(out, l.method);
    out += ",\"state\":";
    AppendString(out, l.state);
    out += ",\"age_seconds\":";
    AppendFixed(out, l.age_seconds, 1);
    out += ",\"rtt_seconds\":{\"p50\":";
    AppendNumber(out, l.p50);
    out += ",\"p90\":";
    AppendNumber(out, l.p90);
    out += ",\"min\":";
    AppendNumber(out, l.min);
    out += ",\"max\":";
    AppendNumber(out, l.max);
    out += "},\"received\":";
    AppendInt(out, l.received);
    out += ",\"lost\":";
    AppendInt(out, l.lost);
    const double done = static_cast<double>(l.received + l.lost);
    out += ",\"loss\":";
    AppendNumber(out, done > 0 ? static_cast<double>(l.lost) / done : NAN);
    if (l.has_direction) {
      out += ",\"forward_loss\":";
      AppendNumber(out, done > 0 ? static_cast<double>(l.forward_lost) / done : NAN);
      out += ",\"return_loss\":";
      AppendNumber(out, done > 0 ? static_cast<double>(l.return_lost) / done : NAN);
    }
    if (l.path_mtu_bytes > 0) {  // only when known: most meshes do not probe it
      out += ",\"path_mtu_bytes\":";
      AppendNumber(out, l.path_mtu_bytes);
    }
    if (!l.series.empty()) {
      out += ",\"series\":[";
      for (size_t k = 0; k < l.series.size(); ++k) {
        const auto& p = l.series[k];
        if (k) out += ',';
        out += '[';
        AppendFixed(out, p.t, 1);
        for (const double x : {p.p50, p.p90, p.min, p.max}) {
          out += ',';
          AppendNumber(out, x);
        }
        out += ',';
        AppendInt(out, p.received);
        out += ',';
        AppendInt(out, p.lost);
        out += ']';
      }
      out += ']';
    }
    out += '}';
  }
  out += "],";
  Key(out, "traffic");
  out += '[';
  for (size_t i = 0; i < v.traffic.size(); ++i) {
    const auto& t = v.traffic[i];
    if (i) out += ',';
    out += "{\"src\":";
    AppendString(out, t.src);
    out += ",\"dst\":";
    AppendString(out, t.dst);
    out += ",\"role\":";
    AppendString(out, t.role);
    out += ",\"observer\":";
    AppendString(out, t.observer);
    out += ",\"bytes_per_second\":";
    AppendNumber(out, t.bytes_per_second);
    out += '}';
  }
  out += "]}\n";
}

std::vector<std::pair<std::string, HttpHandler>> MeshRoutes(const MeshHistory& history,
                                                            const Clock& clock,
                                                            std::function<void()> before_query) {
  std::vector<std::pair<std::string, HttpHandler>> routes;
  auto memory = std::make_shared<AnswerMemory>();
  routes.emplace_back(
      "/api/v1/mesh", [&history, &clock, before_query, memory](const HttpRequest& request) {
        std::string why;
        const auto query = ParseMeshQuery(request.query, history.retention_seconds(), &why);
        if (!query) {
          std::string body = "{\"error\":";
          AppendString(body, why);
          return Json(400, body + "}\n");
        }
        if (before_query) before_query();
        const double now = std::chrono::duration<double>(clock.Wall().time_since_epoch()).count();
        MeshView view = memory->views.Take();
        history.Query(*query, now, &view);
        std::string body = memory->bodies.Take();
        MeshJson(view, &body);
        const size_t view_bytes = ArrayBytes(view);
        memory->views.Keep(std::move(view), view_bytes);
        HttpResponse r = Json(200, std::move(body));
        r.recycle_body = [memory](std::string&& sent) {
          const size_t bytes = sent.capacity();
          memory->bodies.Keep(std::move(sent), bytes);
        };
        return r;
      });
  routes.emplace_back(
      "/mesh", [](const HttpRequest&) { return Asset("text/html; charset=utf-8", kMeshPageHtml); });
  routes.emplace_back("/mesh/mesh.js", [](const HttpRequest&) {
    return Asset("text/javascript; charset=utf-8", kMeshPageJs);
  });
  routes.emplace_back("/mesh/mesh.css", [](const HttpRequest&) {
    return Asset("text/css; charset=utf-8", kMeshPageCss);
  });
  routes.emplace_back("/mesh/favicon.svg",
                      [](const HttpRequest&) { return Asset("image/svg+xml", kMeshPageIcon); });
  return routes;
}

}  // namespace meshflow::mesh
