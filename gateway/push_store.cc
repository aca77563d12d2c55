#include "gateway/push_store.h"

#include <algorithm>
#include <cctype>

#include "common/http/gzip.h"

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

}  // namespace

bool ConstantTimeEquals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  volatile unsigned char diff = 0;
  for (size_t i = 0; i < a.size(); ++i) diff = diff | static_cast<unsigned char>(a[i] ^ b[i]);
  return diff == 0;
}

const std::vector<std::string>& PushStore::Reasons() {
  static const std::vector<std::string> kReasons{
      "missing_token", "bad_token", "wrong_node",           "unknown_node",
      "too_large",     "malformed", "unsupported_encoding", "unsupported_content_type"};
  return kReasons;
}

void PushStore::Configure(Settings settings) {
  std::lock_guard lock(mutex_);
  settings_ = std::move(settings);
  for (auto it = latest_.begin(); it != latest_.end();) {
    if (settings_.tokens.count(it->first) == 0)
      it = latest_.erase(it);
    else
      ++it;
  }
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
  constexpr std::string_view kBearer = "Bearer ";
  if (!StartsWithIgnoreCase(request.authorization, kBearer))
    return Reject(401, "missing_token", "an Authorization: Bearer token is required");
  const std::string_view token = std::string_view(request.authorization).substr(kBearer.size());
  // Every configured token is compared, so the time taken does not tell which node matched.
  const std::string* owner = nullptr;
  for (const auto& [node, expected] : settings_.tokens) {
    if (ConstantTimeEquals(token, expected)) owner = &node;
  }
  if (owner == nullptr) return Reject(401, "bad_token", "the token is not valid");
  if (*owner != request.node) {
    if (settings_.tokens.count(request.node) == 0)
      return Reject(404, "unknown_node", "node \"" + request.node + "\" is not a push node");
    return Reject(403, "wrong_node",
                  "the token belongs to another node than \"" + request.node + "\"");
  }
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
  const size_t max_body = settings_.max_body_bytes;
  lock.unlock();  // parsing is the expensive part and needs no shared state

  std::string inflated;
  if (gzipped) {
    bool too_large = false;
    std::string why;
    auto body = GunzipBounded(request.body, max_body, &too_large, &why);
    if (!body) {
      lock.lock();
      if (too_large)
        return Reject(413, "too_large",
                      "body inflates to more than the limit of " + std::to_string(max_body));
      return Reject(400, "malformed", why);
    }
    inflated = std::move(*body);
  }
  const std::string& text = gzipped ? inflated : request.body;

  TextFormatLimits limits;
  limits.max_body_bytes = max_body;
  auto exposition = std::make_shared<Exposition>();
  if (auto error = ParseTextFormat(text, limits, exposition.get())) {
    lock.lock();
    return Reject(400, "malformed", "not valid text format: " + error->ToString());
  }
  auto stored = std::make_shared<PushedBody>();
  stored->body = text;
  stored->exposition = std::move(exposition);
  stored->received_monotonic = clock_.Monotonic();
  stored->received_wall_seconds =
      std::chrono::duration<double>(clock_.Wall().time_since_epoch()).count();

  lock.lock();
  if (settings_.tokens.count(request.node) == 0)  // reconfigured away meanwhile
    return Reject(404, "unknown_node", "node \"" + request.node + "\" is not a push node");
  std::chrono::nanoseconds ttl = settings_.ttl;
  if (ttl.count() == 0) ttl = 3 * request.announced_interval.value_or(settings_.default_interval);
  stored->ttl = std::clamp<std::chrono::nanoseconds>(ttl, kMinTtl, kMaxTtl);
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
