#include "common/mesh/mesh_query.h"

#include <algorithm>
#include <charconv>
#include <cstdint>

namespace meshflow::mesh {
namespace {

bool ValidName(std::string_view s, size_t max) {
  if (s.empty() || s.size() > max) return false;
  for (const char c : s) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    c == '.' || c == '_' || c == '-';
    if (!ok) return false;
  }
  return true;
}

int HexDigit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

std::optional<std::string> UrlDecode(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '+') {
      out += ' ';
    } else if (s[i] == '%') {
      if (i + 2 >= s.size()) return std::nullopt;
      const int hi = HexDigit(s[i + 1]), lo = HexDigit(s[i + 2]);
      if (hi < 0 || lo < 0) return std::nullopt;
      out += static_cast<char>(hi * 16 + lo);
      i += 2;
    } else {
      out += s[i];
    }
  }
  return out;
}

std::string Printable(std::string_view s) {
  std::string out;
  for (const char c : s.substr(0, 40)) {
    const auto u = static_cast<unsigned char>(c);
    out += (u >= 0x20 && u < 0x7f) ? c : '?';
  }
  return s.size() > 40 ? out + "..." : out;
}

}  // namespace

std::optional<double> ParseWindow(std::string_view text) {
  if (text.size() < 2 || text.size() > 7) return std::nullopt;
  const char unit = text.back();
  const double scale = unit == 's' ? 1 : unit == 'm' ? 60 : unit == 'h' ? 3600 : 0;
  if (scale == 0) return std::nullopt;
  uint32_t n = 0;
  const auto digits = text.substr(0, text.size() - 1);
  const auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), n);
  if (ec != std::errc() || end != digits.data() + digits.size() || n == 0) return std::nullopt;
  return n * scale;
}

std::optional<MeshQuery> ParseMeshQuery(std::string_view raw, double max_window_seconds,
                                        std::string* error) {
  auto fail = [&](std::string why) -> std::optional<MeshQuery> {
    if (error) *error = std::move(why);
    return std::nullopt;
  };
  if (raw.size() > kMaxQueryBytes)
    return fail("query string longer than " + std::to_string(kMaxQueryBytes) + " bytes");
  MeshQuery q;
  q.window_seconds = std::min(300.0, max_window_seconds);
  bool seen_window = false, seen_method = false, seen_src = false, seen_dst = false;
  size_t count = 0;
  for (std::string_view rest = raw; !rest.empty();) {
    const size_t amp = rest.find('&');
    if (amp != 0) ++count;
    rest = amp == std::string_view::npos ? std::string_view() : rest.substr(amp + 1);
  }
  if (count > kMaxQueryParameters)
    return fail("more than " + std::to_string(kMaxQueryParameters) + " query parameters");
  while (!raw.empty()) {
    const size_t amp = raw.find('&');
    const std::string_view part = raw.substr(0, amp);
    raw = amp == std::string_view::npos ? std::string_view() : raw.substr(amp + 1);
    if (part.empty()) continue;
    const size_t eq = part.find('=');
    const std::string_view name = part.substr(0, eq);
    const auto value = UrlDecode(eq == std::string_view::npos ? "" : part.substr(eq + 1));
    if (!value) return fail("parameter " + Printable(name) + ": bad percent-encoding");
    auto once = [&](bool& seen) {
      if (seen) return false;
      seen = true;
      return true;
    };
    if (name == "window") {
      if (!once(seen_window)) return fail("parameter window given twice");
      const auto w = ParseWindow(*value);
      if (!w) {
        return fail("window \"" + Printable(*value) +
                    "\": expected a positive whole number of s, m or h, such as 5m");
      }
      if (*w > max_window_seconds + 1e-9) {
        return fail("window \"" + Printable(*value) + "\" is longer than the kept history (" +
                    std::to_string(static_cast<int64_t>(max_window_seconds)) + "s)");
      }
      q.window_seconds = *w;
    } else if (name == "method") {
      if (!once(seen_method)) return fail("parameter method given twice");
      if (*value != "icmp" && *value != "udp" && *value != "tcp")
        return fail("method \"" + Printable(*value) + "\": expected icmp, udp or tcp");
      q.method = *value;
    } else if (name == "src" || name == "dst") {
      if (!once(name == "src" ? seen_src : seen_dst))
        return fail("parameter " + std::string(name) + " given twice");
      if (!ValidName(*value, 63)) {
        return fail(std::string(name) + " \"" + Printable(*value) +
                    "\": expected a node name (1 to 63 letters, digits, '.', '_' or '-')");
      }
      (name == "src" ? q.series_src : q.series_dst) = *value;
    } else {
      return fail("unknown query parameter \"" + Printable(name) +
                  "\" (known: window, method, src, dst)");
    }
  }
  if (seen_src != seen_dst) return fail("src and dst go together: give both or neither");
  return q;
}

}  // namespace meshflow::mesh
