#include "common/http/gzip.h"

#include <zlib.h>

#include <stdexcept>

namespace meshflow::http {

std::optional<std::string> GunzipBounded(std::string_view data, size_t max_output, bool* too_large,
                                         std::string* error) {
  *too_large = false;
  z_stream zs{};
  if (inflateInit2(&zs, 15 + 16) != Z_OK) {
    *error = "inflateInit2 failed";
    return std::nullopt;
  }
  zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(data.data()));
  zs.avail_in = static_cast<uInt>(data.size());
  // Inflated straight into the output (heap): civetweb's worker threads have small stacks.
  constexpr size_t kStep = 64 << 10;
  std::string out;
  int rc = Z_OK;
  while (rc != Z_STREAM_END) {
    const size_t before = out.size();
    out.resize(before + kStep);
    zs.next_out = reinterpret_cast<Bytef*>(out.data() + before);
    zs.avail_out = static_cast<uInt>(kStep);
    rc = inflate(&zs, Z_NO_FLUSH);
    const size_t produced = kStep - zs.avail_out;
    out.resize(before + produced);
    if (rc != Z_OK && rc != Z_STREAM_END) {
      *error = std::string("not valid gzip: ") + (zs.msg ? zs.msg : "truncated");
      inflateEnd(&zs);
      return std::nullopt;
    }
    if (out.size() > max_output) {
      *too_large = true;
      inflateEnd(&zs);
      return std::nullopt;
    }
    if (rc == Z_OK && produced == 0 && zs.avail_in == 0) {
      *error = "not valid gzip: truncated";
      inflateEnd(&zs);
      return std::nullopt;
    }
  }
  const bool trailing = zs.avail_in != 0;
  inflateEnd(&zs);
  if (trailing) {
    *error = "not valid gzip: data after the end of the stream";
    return std::nullopt;
  }
  return out;
}

}  // namespace meshflow::http
