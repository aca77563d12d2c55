#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "gateway/gateway_config.h"
#include "gateway/remote_write/write_request.h"

namespace re2 {
class RE2;
}

namespace meshflow::gateway::remote_write {

// Applies write_relabel_configs in order with Prometheus' semantics (model/relabel): replace,
// keep, drop, hashmod, labelmap, labeldrop, labelkeep, keepequal, dropequal. A label set to the
// empty string is removed. Returns false when the series is dropped, also when relabelling took its
// __name__ away (a series without a name cannot be written). `labels` comes back unsorted.
bool Relabel(const std::vector<RelabelRule>& rules, Labels& labels);

// `replacement` with $1, ${1}, $name and ${name} replaced by the groups of `regex`'s match of
// `input` ($$ is a dollar sign), as Go's Regexp.ExpandString does: a name is the longest run of
// letters, digits and underscores, so "$1x" names the group "1x" (empty) and "${1}x" is
// needed. False (and `out` untouched) when `regex` does not match `input`.
bool ExpandMatch(const re2::RE2& regex, std::string_view input, std::string_view replacement,
                 std::string& out);

// Prometheus' hashmod: the last 8 bytes of the value's MD5, big-endian, modulo `modulus`.
uint64_t HashMod(std::string_view value, uint64_t modulus);

}  // namespace meshflow::gateway::remote_write
