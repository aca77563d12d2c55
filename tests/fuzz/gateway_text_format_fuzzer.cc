// Any body either fails with a line and a reason or parses; what parses must survive being
// written out again and merged by /federate, and both outputs must parse again.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <string_view>

#include "common/text_format/text_format.h"
#include "common/text_format/writer.h"
#include "gateway/federate.h"

using namespace meshflow;
using namespace meshflow::gateway;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view body(reinterpret_cast<const char*>(data), size);
  text_format::TextFormatLimits limits;
  limits.max_body_bytes = 1 << 20;
  auto exposition = std::make_shared<text_format::Exposition>();
  if (auto error = text_format::ParseTextFormat(body, limits, exposition.get())) {
    if (error->code.empty() || error->reason.empty() || error->line > size + 1) std::abort();
    return 0;
  }
  std::string again;
  for (const auto& family : exposition->families) {
    text_format::AppendFamilyHeader(again, family);
    for (const auto& s : family.samples)
      text_format::AppendSample(again, s.name, s.labels, s.value, s.timestamp_ms);
  }
  text_format::Exposition reparsed;
  if (text_format::ParseTextFormat(again, limits, &reparsed)) std::abort();
  if (reparsed.sample_count != exposition->sample_count) std::abort();

  std::string why;
  auto selector = ParseSelector(R"({__name__=~".+"})", &why);
  const std::string merged = Federate({{"a", exposition}, {"b", exposition}}, {*selector}, nullptr);
  text_format::Exposition federated;
  if (text_format::ParseTextFormat(merged, text_format::TextFormatLimits{.max_body_bytes = 4 << 20},
                                   &federated))
    std::abort();
  if (federated.sample_count != 2 * exposition->sample_count) std::abort();
  return 0;
}
