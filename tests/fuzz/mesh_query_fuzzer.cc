// /api/v1/mesh's query string comes straight from the request line.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "common/mesh/mesh_query.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  std::string why;
  const auto query = meshflow::mesh::ParseMeshQuery(text, 900, &why);
  if (!query) {
    if (why.empty()) std::abort();  // every refusal says why
    return 0;
  }
  // An accepted query never asks for more than the kept history, nor for nothing.
  if (!(query->window_seconds > 0) || query->window_seconds > 900) std::abort();
  if (query->series_src.empty() != query->series_dst.empty()) std::abort();
  return 0;
}
