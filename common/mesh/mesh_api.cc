#include "common/mesh/mesh_api.h"

#include <charconv>
#include <cmath>
#include <cstdio>

#include "common/mesh/mesh_page_assets.h"

namespace meshflow::mesh {

const std::string_view kMeshPageCsp =
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
    "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

namespace {

void AppendString(std::string& out, std::string_view s) {
  out += '"';
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
// (an RTT of 48 ms to the microsecond); NaN and Inf as null.
void AppendNumber(std::string& out, double v) {
  if (!std::isfinite(v)) {
    out += "null";
    return;
  }
  char buf[32];
  const auto r = std::to_chars(buf, buf + sizeof(buf), v, std::chars_format::general, 5);
  out.append(buf, r.ptr);
}

// Unix times and ages: fixed notation with `decimals` digits, so no precision is lost.
void AppendFixed(std::string& out, double v, int decimals) {
  if (!std::isfinite(v)) {
    out += "null";
    return;
  }
  char buf[48];
  const auto r = std::to_chars(buf, buf + sizeof(buf), v, std::chars_format::fixed, decimals);
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

}  // namespace

std::string MeshJson(const MeshView& v) {
  std::string out;
  out.reserve(256 + v.links.size() * 220 + v.traffic.size() * 100 + v.nodes.size() * 80);
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
    out += ",\"path_mtu_bytes\":";
    if (l.path_mtu_bytes > 0) {
      AppendNumber(out, l.path_mtu_bytes);
    } else {
      out += "null";
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
  return out;
}

std::vector<std::pair<std::string, HttpHandler>> MeshRoutes(const MeshHistory& history,
                                                            const Clock& clock,
                                                            std::function<void()> before_query) {
  std::vector<std::pair<std::string, HttpHandler>> routes;
  routes.emplace_back("/api/v1/mesh", [&history, &clock, before_query](const HttpRequest& request) {
    std::string why;
    const auto query = ParseMeshQuery(request.query, history.retention_seconds(), &why);
    if (!query) {
      std::string body = "{\"error\":";
      AppendString(body, why);
      return Json(400, body + "}\n");
    }
    if (before_query) before_query();
    const double now = std::chrono::duration<double>(clock.Wall().time_since_epoch()).count();
    return Json(200, MeshJson(history.Query(*query, now)));
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
