#pragma once

#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/core/clock.h"
#include "common/http/http_server.h"
#include "common/mesh/mesh_history.h"
#include "common/mesh/mesh_query.h"

namespace meshflow::mesh {

// The view as JSON (README "The mesh view" describes the fields).
std::string MeshJson(const MeshView& view);
// The same written into `out` (cleared first), whose capacity is reused.
void MeshJson(const MeshView& view, std::string* out);

// The routes of the mesh view, for a daemon to register behind its web config:
// /api/v1/mesh and the page (/mesh, its script, style sheet and icon). `before_query`, when set,
// runs before each API answer (the exporter observes itself there when no scrape did lately).
std::vector<std::pair<std::string, HttpHandler>> MeshRoutes(
    const MeshHistory& history, const Clock& clock, std::function<void()> before_query = {});

// The Content-Security-Policy the page is served with: nothing from any other origin.
extern const std::string_view kMeshPageCsp;

}  // namespace meshflow::mesh
