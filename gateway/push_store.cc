#include "gateway/push_store.h"

#include <algorithm>
#include <cctype>
#include <cstring>
#include <set>

#include "common/http/gzip.h"
#include "common/text_format/writer.h"

namespace meshflow::gateway {
namespace {

bool StartsWithIgnoreCase(std::string_view s, std::string_view prefix) {
  if (s.size() < prefix.size()) return false;
  for (size_t i = 0; i < prefix.size(); ++i) {
    if (std::tolower(static_cast<unsigned char>(s[i])) !=
        std::tolower(static_cast<unsigned char>(prefix[i])))
      return false;
  }
  return true;
}

// Bounds so a pusher cannot pin a body for days or make it expire at once.
constexpr auto kMinTtl = std::chrono::seconds(1);
constexpr auto kMaxTtl = std::chrono::hours(1);

constexpr char kStoredConsumer[] = "stored_pushes";
constexpr char kParsingConsumer[] = "pushes_in_flight";
// Heap bytes of a string beyond its own object, with the allocator's header.
size_t HeapBytes(const std::string& s) { return s.capacity() > 15 ? s.capacity() + 1 + 16 : 0; }
// What parsing a body may hold before its size is known: the text, a copy per label value and
// per line a sample, its series key and the containers' growth.
constexpr size_t kParseBytesPerLine = 256;

}  // namespace

std::optional<std::string> CollidingBase(
    const std::string& name,
    const std::function<std::optional<text_format::MetricKind>(const std::string&)>& kind_of) {
  for (const std::string_view suffix : {"_bucket", "_sum", "_count"}) {
    if (name.size() <= suffix.size() || !std::string_view(name).ends_with(suffix)) continue;
    const std::string base = name.substr(0, name.size() - suffix.size());
    const auto kind = kind_of(base);
    if (kind == text_format::MetricKind::kHistogram ||
        (kind == text_format::MetricKind::kSummary && suffix != "_bucket"))
      return base;
  }
  return std::nullopt;
}

namespace {

bool NeedsHeader(const text_format::TextFamily& family) {
  if (family.kind != text_format::MetricKind::kUntyped || family.has_help) return true;
  const std::string_view name = family.name;
  return name.ends_with("_bucket") || name.ends_with("_sum") || name.ends_with("_count");
}

}  // namespace

std::string WriteExposition(const text_format::Exposition& exposition) {
  std::string out;
  for (const auto& family : exposition.families) {
    if (family.samples.empty() && !family.has_help &&
        family.kind == text_format::MetricKind::kUntyped)
      continue;
    if (NeedsHeader(family)) text_format::AppendFamilyHeader(out, family);
    for (const auto& sample : family.samples)
      text_format::AppendSample(out, sample.name, sample.labels, sample.value, sample.timestamp_ms);
  }
  return out;
}

size_t ExpositionCost(const text_format::Exposition& exposition) {
  size_t bytes = sizeof(text_format::Exposition) +
                 exposition.families.capacity() * sizeof(text_format::TextFamily);
  for (const auto& family : exposition.families) {
    bytes += HeapBytes(family.name) + HeapBytes(family.help) +
             family.samples.capacity() * sizeof(text_format::TextSample) + 16;
    for (const auto& sample : family.samples) {
      bytes += HeapBytes(sample.name) + sample.labels.capacity() * sizeof(sample.labels[0]) + 16;
      for (const auto& [k, v] : sample.labels) bytes += HeapBytes(k) + HeapBytes(v);
    }
  }
  return bytes;
}

bool ConstantTimeEquals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  volatile unsigned char diff = 0;
  for (size_t i = 0; i < a.size(); ++i) diff = diff | static_cast<unsigned char>(a[i] ^ b[i]);
  return diff == 0;
}

const std::vector<std::string>& PushStore::Reasons() {
  static const std::vector<std::string> kReasons{
      "missing_token",   "bad_token", "wrong_node",           "unknown_node",
      "too_large",       "malformed", "unsupported_encoding", "unsupported_content_type",
      "length_required", "empty",     "too_many_series",      "type_conflict",
      "memory_budget"};
  return kReasons;
}

void PushStore::Configure(Settings settings) {
  std::lock_guard lock(mutex_);
  settings_ = std::move(settings);
  for (auto it = latest_.begin(); it != latest_.end();) {
    if (settings_.tokens.count(it->first) == 0) {
      auto gone = it++;
      Drop(gone);
    } else {
      ++it;
    }
  }
}

void PushStore::Drop(std::map<std::string, std::shared_ptr<const PushedBody>>::iterator it) {
  // Caller holds mutex_.
  if (it->second->exposition) Index(*it->second->exposition, -1);
  budget_->Release(kStoredConsumer, it->second->cost_bytes);
  latest_.erase(it);
}

void PushStore::Index(const text_format::Exposition& exposition, int delta) {
  // Caller holds mutex_.
  for (const auto& family : exposition.families) {
    if (family.samples.empty()) continue;
    auto it = families_.find(family.name);
    if (delta > 0) {
      if (it == families_.end())
        families_.emplace(family.name, std::make_pair(family.kind, 1));
      else
        ++it->second.second;
    } else if (it != families_.end() && --it->second.second <= 0) {
      families_.erase(it);
    }
  }
}

std::optional<PushOutcome> PushStore::Authorize(const std::string& node,
                                                const std::string& authorization) {
  std::lock_guard lock(mutex_);
  return AuthorizeLocked(node, authorization);
}

std::optional<PushOutcome> PushStore::AuthorizeLocked(const std::string& node,
                                                      const std::string& authorization) {
  constexpr std::string_view kBearer = "Bearer ";
  if (!StartsWithIgnoreCase(authorization, kBearer))
    return Reject(401, "missing_token", "an Authorization: Bearer token is required");
  const std::string_view token = std::string_view(authorization).substr(kBearer.size());
  // Every configured token is compared, so the time taken does not tell which node matched.
  const std::string* owner = nullptr;
  for (const auto& [name, expected] : settings_.tokens) {
    if (ConstantTimeEquals(token, expected)) owner = &name;
  }
  if (owner == nullptr) return Reject(401, "bad_token", "the token is not valid");
  if (*owner != node) {
    if (settings_.tokens.count(node) == 0)
      return Reject(404, "unknown_node", "node \"" + node + "\" is not a push node");
    return Reject(403, "wrong_node", "the token belongs to another node than \"" + node + "\"");
  }
  return std::nullopt;
}

PushOutcome PushStore::Reject(int status, std::string reason, std::string message) {
  // Caller holds mutex_.
  ++rejected_[reason];
  PushOutcome out;
  out.http_status = status;
  out.reason = std::move(reason);
  out.message = std::move(message);
  return out;
}

PushOutcome PushStore::Push(const PushRequest& request) {
  std::unique_lock lock(mutex_);
  // Authentication comes first: an unauthenticated client learns nothing about the body checks.
  if (auto refused = AuthorizeLocked(request.node, request.authorization)) return *refused;
  if (!request.length_known)
    return Reject(411, "length_required", "a push needs a Content-Length or chunked encoding");
  const bool gzipped = request.content_encoding == "gzip";
  if (!gzipped && !request.content_encoding.empty() && request.content_encoding != "identity")
    return Reject(415, "unsupported_encoding",
                  "Content-Encoding " + request.content_encoding + " is not supported");
  if (!request.content_type.empty() && !StartsWithIgnoreCase(request.content_type, "text/plain"))
    return Reject(415, "unsupported_content_type",
                  "expected the text exposition format (text/plain; version=0.0.4)");
  if (request.body.size() > settings_.max_body_bytes)
    return Reject(413, "too_large",
                  "body of " + std::to_string(request.body.size()) +
                      " bytes exceeds the limit of " + std::to_string(settings_.max_body_bytes));
  if (request.body.empty()) return Reject(400, "empty", "the push has an empty body");
  const size_t max_body = settings_.max_body_bytes;
  const size_t max_series = settings_.max_series_per_push;
  // Parsing holds several times the body; reserve it before, so concurrent large pushes cannot
  // add up past the budget.
  const size_t lines =
      static_cast<size_t>(std::count(request.body.begin(), request.body.end(), '\n')) + 1;
  size_t parse_cost = request.body.size() * 3 + lines * kParseBytesPerLine;
  // A node that already holds a push may go past the budget by that push while replacing it,
  // so nodes already in do not go stale when the budget is full.
  size_t allowance = 0;
  if (const auto it = latest_.find(request.node); it != latest_.end())
    allowance = it->second->cost_bytes;
  if (!budget_->Reserve(kParsingConsumer, parse_cost, allowance))
    return Reject(429, "memory_budget", "the gateway's memory budget is used up; try later");
  lock.unlock();  // parsing is the expensive part and needs no shared state
  struct Release {
    MemoryBudget* budget;
    size_t* bytes;
    ~Release() { budget->Release(kParsingConsumer, *bytes); }
  } release{budget_, &parse_cost};

  std::string inflated;
  if (gzipped) {
    bool too_large = false;
    std::string why;
    auto body = http::GunzipBounded(request.body, max_body, &too_large, &why);
    if (!body) {
      lock.lock();
      if (too_large)
        return Reject(413, "too_large",
                      "body inflates to more than the limit of " + std::to_string(max_body));
      return Reject(400, "malformed", why);
    }
    inflated = std::move(*body);
    // The inflated text is what is parsed: take the rest of its cost too.
    const size_t inflated_lines =
        static_cast<size_t>(std::count(inflated.begin(), inflated.end(), '\n')) + 1;
    const size_t more = inflated.size() * 3 + inflated_lines * kParseBytesPerLine;
    if (!budget_->Reserve(kParsingConsumer, more, allowance)) {
      lock.lock();
      return Reject(429, "memory_budget", "the gateway's memory budget is used up; try later");
    }
    parse_cost += more;
  }
  const std::string& text = gzipped ? inflated : request.body;

  text_format::TextFormatLimits limits;
  limits.max_body_bytes = max_body;
  limits.max_samples = max_series;
  auto exposition = std::make_shared<text_format::Exposition>();
  if (auto error = text_format::ParseTextFormat(text, limits, exposition.get())) {
    lock.lock();
    if (error->code == "too_many_samples")
      return Reject(413, "too_many_series",
                    "more than " + std::to_string(max_series) + " series in one push");
    return Reject(400, "malformed", "not valid text format: " + error->ToString());
  }
  if (exposition->sample_count == 0) {
    lock.lock();
    return Reject(400, "empty", "the push has no samples");
  }
  auto stored = std::make_shared<PushedBody>();
  stored->body = WriteExposition(*exposition);
  stored->body.shrink_to_fit();
  stored->cost_bytes = sizeof(PushedBody) + HeapBytes(stored->body) + ExpositionCost(*exposition);
  stored->exposition = std::move(exposition);
  stored->received_monotonic = clock_.Monotonic();
  stored->received_wall_seconds =
      std::chrono::duration<double>(clock_.Wall().time_since_epoch()).count();

  lock.lock();
  if (settings_.tokens.count(request.node) == 0)  // reconfigured away meanwhile
    return Reject(404, "unknown_node", "node \"" + request.node + "\" is not a push node");
  // A family another node already federates under another type would be left out of /federate
  // for one of them; refuse it here, where the pusher hears why.
  const auto previous = latest_.find(request.node);
  std::set<std::string_view> own_before;
  if (previous != latest_.end()) {
    for (const auto& f : previous->second->exposition->families)
      if (!f.samples.empty()) own_before.insert(f.name);
  }
  std::map<std::string_view, text_format::MetricKind> own;
  for (const auto& f : stored->exposition->families)
    if (!f.samples.empty()) own.emplace(f.name, f.kind);
  // The type other nodes' stored pushes give `name`, if any.
  auto others = [&](const std::string& name) -> std::optional<text_format::MetricKind> {
    const auto known = families_.find(name);
    if (known == families_.end()) return std::nullopt;
    const int count = known->second.second - (own_before.contains(name) ? 1 : 0);
    if (count <= 0) return std::nullopt;
    return known->second.first;
  };
  for (const auto& family : stored->exposition->families) {
    if (family.samples.empty()) continue;
    if (const auto kind = others(family.name); kind && *kind != family.kind)
      return Reject(409, "type_conflict",
                    "family " + family.name + " is a " +
                        std::string(text_format::MetricKindName(family.kind)) + " here but a " +
                        std::string(text_format::MetricKindName(*kind)) +
                        " in another node's push");
    if (const auto base = CollidingBase(family.name, [&](const std::string& name) {
          if (auto k = others(name)) return k;
          const auto it = own.find(name);
          return it == own.end() ? std::nullopt
                                 : std::optional<text_format::MetricKind>(it->second);
        }))
      return Reject(409, "type_conflict",
                    "family " + family.name + " would be read as part of the " + *base +
                        " family another push declares");
    if (family.kind == text_format::MetricKind::kHistogram ||
        family.kind == text_format::MetricKind::kSummary) {
      for (const std::string_view suffix : {"_bucket", "_sum", "_count"}) {
        if (family.kind == text_format::MetricKind::kSummary && suffix == "_bucket") continue;
        const std::string child = family.name + std::string(suffix);
        if (others(child))
          return Reject(409, "type_conflict",
                        "another node's push has a family " + child + " that the " +
                            std::string(text_format::MetricKindName(family.kind)) + " " +
                            family.name + " would take");
      }
    }
  }
  if (!budget_->Reserve(kStoredConsumer, stored->cost_bytes,
                        previous != latest_.end() ? previous->second->cost_bytes : 0))
    return Reject(429, "memory_budget", "the gateway's memory budget is used up; try later");
  std::chrono::nanoseconds ttl = settings_.ttl;
  if (ttl.count() == 0) ttl = 3 * request.announced_interval.value_or(settings_.default_interval);
  stored->ttl = std::clamp<std::chrono::nanoseconds>(ttl, kMinTtl, kMaxTtl);
  if (previous != latest_.end()) Drop(previous);
  Index(*stored->exposition, +1);
  latest_[request.node] = std::move(stored);
  PushOutcome ok;
  ok.http_status = 200;
  ok.message = "accepted";
  return ok;
}

PushStore::Lookup PushStore::Get(const std::string& node) const {
  std::lock_guard lock(mutex_);
  Lookup out;
  if (settings_.tokens.count(node) == 0) return out;
  auto it = latest_.find(node);
  if (it == latest_.end()) {
    out.state = State::kNever;
    return out;
  }
  out.body = it->second;
  out.age = clock_.Monotonic() - it->second->received_monotonic;
  out.state = out.age <= it->second->ttl ? State::kFresh : State::kStale;
  return out;
}

bool PushStore::IsPushNode(const std::string& node) const {
  std::lock_guard lock(mutex_);
  return settings_.tokens.count(node) != 0;
}

std::vector<std::string> PushStore::Nodes() const {
  std::lock_guard lock(mutex_);
  std::vector<std::string> out;
  for (const auto& [node, token] : settings_.tokens) out.push_back(node);
  return out;
}

std::map<std::string, uint64_t> PushStore::RejectedByReason() const {
  std::lock_guard lock(mutex_);
  std::map<std::string, uint64_t> out;
  for (const auto& r : Reasons()) out[r] = 0;
  for (const auto& [r, n] : rejected_) out[r] = n;
  return out;
}

}  // namespace meshflow::gateway
