#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

namespace meshflow::mesh {

// What /api/v1/mesh is asked for.
struct MeshQuery {
  double window_seconds = 300;
  std::string method;                  // empty: every method
  std::string series_src, series_dst;  // both set: the points of that pair's links
};

// Bounds on /api/v1/mesh's query string; anything past them is a 400, never work.
inline constexpr size_t kMaxQueryBytes = 512;
inline constexpr size_t kMaxQueryParameters = 4;

// Parses /api/v1/mesh's raw query string (window=5m, method=udp, src=A&dst=B for one pair's
// points). `max_window_seconds` is the kept history. On bad input returns nullopt and says why.
std::optional<MeshQuery> ParseMeshQuery(std::string_view raw_query, double max_window_seconds,
                                        std::string* error);

// Parses a window such as 90s, 5m or 1h; nullopt for anything else.
std::optional<double> ParseWindow(std::string_view text);

}  // namespace meshflow::mesh
