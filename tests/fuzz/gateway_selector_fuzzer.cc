// match[] selectors come straight from HTTP query strings.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "gateway/selector.h"

using namespace meshflow::gateway;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  std::string why;
  auto selector = ParseSelector(text, &why);
  if (!selector) {
    if (why.empty()) std::abort();
    return 0;
  }
  if (selector->matchers.empty()) std::abort();
  // A valid selector never matches a series with no labels at all.
  if (selector->Matches([](std::string_view) { return std::string_view(); })) std::abort();
  return 0;
}
