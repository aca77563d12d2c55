#include "tests/testbed/emulator/link_model.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdio>

namespace meshflow::testbed {
namespace {

// A bucket of one full-size packet would make every back-to-back pair wait; 10 ms of traffic
// matches what a software shaper (tc tbf) is usually given.
double BurstBytes(const LinkParams& p) {
  if (p.burst_bytes > 0) return static_cast<double>(p.burst_bytes);
  return std::max(1600.0, static_cast<double>(p.rate_bps) / 8.0 / 100.0);
}

// 100 ms of queue, like a typical home router buffer; beyond it packets are tail-dropped.
double QueueBytes(const LinkParams& p) {
  if (p.queue_bytes > 0) return static_cast<double>(p.queue_bytes);
  return std::max(16384.0, static_cast<double>(p.rate_bps) / 8.0 / 10.0);
}

bool ParseNumber(std::string_view text, double* out) {
  if (text.empty()) return false;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), *out);
  return ec == std::errc() && end == text.data() + text.size() && std::isfinite(*out);
}

bool EndsWith(std::string_view s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
}

}  // namespace

const char* DropReasonName(DropReason reason) {
  switch (reason) {
    case DropReason::kNone:
      return "none";
    case DropReason::kLinkDown:
      return "link_down";
    case DropReason::kNodeDown:
      return "node_down";
    case DropReason::kLoss:
      return "loss";
    case DropReason::kRateQueueFull:
      return "rate_queue_full";
    case DropReason::kTooBig:
      return "too_big";
    case DropReason::kCount:
      break;
  }
  return "unknown";
}

LinkModel::LinkModel(LinkParams params, uint64_t seed) : params_(params), rng_(seed) {}

void LinkModel::SetParams(const LinkParams& params) {
  if (params.rate_bps != params_.rate_bps || params.burst_bytes != params_.burst_bytes)
    bucket_started_ = false;
  params_ = params;
}

LinkVerdict LinkModel::Offer(size_t size, nanoseconds now) {
  LinkVerdict verdict;
  auto drop = [&](DropReason reason) {
    ++counters_.dropped[static_cast<int>(reason)];
    verdict.drop = reason;
    return verdict;
  };
  if (!params_.up) return drop(DropReason::kLinkDown);
  if (params_.mtu > 0 && size > static_cast<size_t>(params_.mtu)) return drop(DropReason::kTooBig);

  nanoseconds depart = now;
  if (params_.rate_bps > 0) {
    const double burst = BurstBytes(params_);
    if (!bucket_started_) {
      tokens_ = burst;
      tokens_at_ = now;
      bucket_started_ = true;
    }
    const double bytes_per_ns = static_cast<double>(params_.rate_bps) / 8e9;
    tokens_ =
        std::min(burst, tokens_ + static_cast<double>((now - tokens_at_).count()) * bytes_per_ns);
    tokens_at_ = now;
    const double after = tokens_ - static_cast<double>(size);
    if (after < -QueueBytes(params_)) return drop(DropReason::kRateQueueFull);
    tokens_ = after;
    // Negative tokens are bytes queued ahead of this packet's last byte: it leaves when the
    // bucket has refilled them.
    if (after < 0) depart += nanoseconds(static_cast<int64_t>(std::ceil(-after / bytes_per_ns)));
  }

  // Loss happens on the wire, after the bottleneck queue, so a lost packet used its tokens.
  if (params_.loss > 0) {
    std::uniform_real_distribution<double> coin(0.0, 1.0);
    if (coin(rng_) < params_.loss) return drop(DropReason::kLoss);
  }

  nanoseconds delay = params_.delay;
  if (params_.jitter.count() > 0) {
    std::uniform_int_distribution<int64_t> draw(-params_.jitter.count(), params_.jitter.count());
    delay += nanoseconds(draw(rng_));
    if (delay.count() < 0) delay = nanoseconds(0);
  }
  verdict.release = std::max(depart + delay, last_release_);
  last_release_ = verdict.release;
  ++counters_.packets;
  counters_.bytes += size;
  return verdict;
}

bool ParseLoss(const std::string& text, double* out) {
  std::string_view s = text;
  double scale = 1;
  if (EndsWith(s, "%")) {
    s.remove_suffix(1);
    scale = 0.01;
  }
  double v = 0;
  if (!ParseNumber(s, &v)) return false;
  v *= scale;
  if (v < 0 || v > 1) return false;
  *out = v;
  return true;
}

bool ParseRate(const std::string& text, int64_t* out) {
  std::string_view s = text;
  double scale = 1;
  for (const auto& [suffix, factor] : {std::pair<std::string_view, double>{"gbit", 1e9},
                                       {"mbit", 1e6},
                                       {"kbit", 1e3},
                                       {"bit", 1}}) {
    if (EndsWith(s, suffix)) {
      s.remove_suffix(suffix.size());
      scale = factor;
      break;
    }
  }
  double v = 0;
  if (!ParseNumber(s, &v) || v < 0 || v * scale > 1e12) return false;
  *out = static_cast<int64_t>(std::llround(v * scale));
  return true;
}

std::string FormatDelay(nanoseconds d) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%gms", static_cast<double>(d.count()) / 1e6);
  return buf;
}

std::string FormatRate(int64_t bps) {
  if (bps == 0) return "unlimited";
  char buf[64];
  if (bps % 1000000 == 0)
    std::snprintf(buf, sizeof buf, "%lldmbit", static_cast<long long>(bps / 1000000));
  else if (bps % 1000 == 0)
    std::snprintf(buf, sizeof buf, "%lldkbit", static_cast<long long>(bps / 1000));
  else
    std::snprintf(buf, sizeof buf, "%lldbit", static_cast<long long>(bps));
  return buf;
}

}  // namespace meshflow::testbed
