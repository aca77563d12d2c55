#pragma once

#include <cstddef>
#include <optional>
#include <string_view>
#include <utility>

namespace meshflow {

// One row of an enum's name table: a value and the word that stands for it in logs, metric labels
// and config. A table is a plain array of rows, one per value, so the name of a value and the
// value of a name are read from the same place.
template <typename Enum>
using EnumName = std::pair<Enum, std::string_view>;

// The name of `value` in `names`, or `fallback` when the table has no row for it.
template <typename Enum, size_t N>
constexpr std::string_view NameOf(const EnumName<Enum> (&names)[N], Enum value,
                                  std::string_view fallback = "unknown") {
  for (const auto& [v, name] : names)
    if (v == value) return name;
  return fallback;
}

// The value that `name` stands for in `names`, or nullopt when no row has that name.
template <typename Enum, size_t N>
constexpr std::optional<Enum> ValueNamed(const EnumName<Enum> (&names)[N], std::string_view name) {
  for (const auto& [v, n] : names)
    if (n == name) return v;
  return std::nullopt;
}

}  // namespace meshflow
