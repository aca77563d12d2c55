#include "common/discovery/kubernetes.h"

#include <algorithm>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <sstream>

#include "common/discovery/json_util.h"
#include "common/http/http_client.h"
#include "common/http/tls_client.h"

namespace meshflow::discovery {
namespace {

using nlohmann::json;

constexpr size_t kMaxBody = 32 << 20;

// Reads a Node object; false with `error` on bad data; `has_rule` false when no address of the
// rule is present (the node is then skipped, not an error: it may not have joined the overlay).
bool ReadNode(const json& node, const std::vector<std::string>& rule, KubeNode* out, bool* has_rule,
              std::string* error) {
  if (!node.is_object()) {
    *error = "not an object";
    return false;
  }
  const auto meta = node.find("metadata");
  if (meta == node.end() || !meta->is_object()) {
    *error = "no metadata";
    return false;
  }
  const auto name = detail::StringAt(*meta, "name");
  if (!name || name->empty()) {
    *error = "metadata.name missing";
    return false;
  }
  out->name = *name;
  out->resource_version = detail::StringAt(*meta, "resourceVersion").value_or("");
  // Every candidate address by its rule name: status.addresses by type, annotations by name.
  std::map<std::string, std::vector<IpAddress>> candidates;
  auto add = [&](const std::string& key, std::string_view text, const std::string& where) {
    // K3s writes dual-stack annotations as "v4,v6".
    size_t pos = 0;
    while (pos <= text.size()) {
      const size_t comma = std::min(text.find(',', pos), text.size());
      const std::string_view one = text.substr(pos, comma - pos);
      const auto a = IpAddress::Parse(one);
      if (!a) {
        *error = Snippet(*name, 80) + ": " + where + ": \"" + Snippet(one, 64) +
                 "\" is not an IP address";
        return false;
      }
      candidates[key].push_back(*a);
      pos = comma + 1;
    }
    return true;
  };
  if (const auto status = node.find("status"); status != node.end() && status->is_object()) {
    if (const auto addrs = status->find("addresses"); addrs != status->end() && !addrs->is_null()) {
      if (!addrs->is_array()) {
        *error = Snippet(*name, 80) + ": status.addresses: not an array";
        return false;
      }
      for (size_t i = 0; i < addrs->size(); ++i) {
        const auto type = detail::StringAt((*addrs)[i], "type");
        const auto address = detail::StringAt((*addrs)[i], "address");
        const std::string where = "status.addresses[" + std::to_string(i) + "]";
        if (!type || !address) {
          *error = Snippet(*name, 80) + ": " + where + ": needs string type and address";
          return false;
        }
        if (*type != "InternalIP" && *type != "ExternalIP") continue;  // Hostname, DNS names
        if (!add(*type, *address, where)) return false;
      }
    }
  }
  if (const auto ann = meta->find("annotations"); ann != meta->end() && ann->is_object()) {
    for (const auto& key : rule) {
      if (key == "InternalIP" || key == "ExternalIP") continue;
      if (const auto v = detail::StringAt(*ann, key.c_str()))
        if (!add(key, *v, "metadata.annotations[\"" + key + "\"]")) return false;
    }
    for (const char* key : {"k3s.io/internal-ip", "flannel.alpha.coreos.com/public-ip"}) {
      if (candidates.count(key)) continue;
      if (const auto v = detail::StringAt(*ann, key))
        if (!add(key, *v, std::string("metadata.annotations[\"") + key + "\"]")) return false;
    }
  }
  out->addresses.clear();
  *has_rule = false;
  for (const auto& key : rule) {
    const auto it = candidates.find(key);
    if (it == candidates.end() || it->second.empty()) continue;
    for (const auto& a : it->second) out->addresses.push_back({a, a.is_v4() ? 32 : 128});
    *has_rule = true;
    break;
  }
  if (!*has_rule) return true;
  for (const auto& [key, list] : candidates) {
    for (const auto& a : list) {
      const IpPrefix p{a, a.is_v4() ? 32 : 128};
      if (std::find(out->addresses.begin(), out->addresses.end(), p) == out->addresses.end())
        out->addresses.push_back(p);
    }
  }
  return true;
}

DiscoveredNode ToDiscovered(const KubeNode& n) {
  return DiscoveredNode{n.name, n.addresses, "kubernetes"};
}

std::string ReadFile(const std::string& path, std::string* error) {
  std::ifstream in(path);
  if (!in) {
    *error = path + ": cannot read";
    return {};
  }
  std::stringstream s;
  s << in.rdbuf();
  std::string text = s.str();
  while (!text.empty() && (text.back() == '\n' || text.back() == '\r' || text.back() == ' '))
    text.pop_back();
  if (text.empty()) *error = path + ": empty";
  return text;
}

}  // namespace

KubeNodeList ParseNodeList(std::string_view text, const std::vector<std::string>& rule) {
  KubeNodeList out;
  auto doc = detail::ParseJson(text, &out.error);
  if (!doc) return out;
  if (!doc->is_object() || detail::StringAt(*doc, "kind").value_or("") != "NodeList") {
    out.error = "not a NodeList";
    return out;
  }
  if (const auto meta = doc->find("metadata"); meta != doc->end())
    out.resource_version = detail::StringAt(*meta, "resourceVersion").value_or("");
  const auto items = doc->find("items");
  if (items != doc->end() && !items->is_null()) {
    if (!items->is_array()) {
      out.error = "items: not an array";
      return out;
    }
    for (size_t i = 0; i < items->size(); ++i) {
      KubeNode node;
      bool has_rule = false;
      std::string why;
      if (!ReadNode((*items)[i], rule, &node, &has_rule, &why)) {
        out.error = "items[" + std::to_string(i) + "]: " + why;
        out.nodes.clear();
        return out;
      }
      if (!has_rule) {
        out.skipped.push_back(node.name + ": none of the overlay_address choices");
        continue;
      }
      out.nodes.push_back(std::move(node));
    }
  }
  out.ok = true;
  return out;
}

KubeWatchParse ParseWatchEvents(std::string_view text, const std::vector<std::string>& rule) {
  KubeWatchParse out;
  size_t line_no = 0;
  size_t pos = 0;
  auto fail = [&](const std::string& why) {
    out.ok = false;
    out.error = "line " + std::to_string(line_no) + ": " + why;
    out.events.clear();
    return out;
  };
  while (pos < text.size()) {
    size_t nl = text.find('\n', pos);
    if (nl == std::string_view::npos) nl = text.size();
    const std::string_view line = text.substr(pos, nl - pos);
    pos = nl + 1;
    ++line_no;
    if (line.empty() || line == "\r") continue;
    std::string error;
    auto doc = detail::ParseJson(line, &error);
    if (!doc) return fail(error);
    const auto type = detail::StringAt(*doc, "type");
    const auto object = doc->find("object");
    if (!type || object == doc->end() || !object->is_object())
      return fail("a watch event needs type and object");
    KubeWatchEvent e;
    if (*type == "ADDED") {
      e.type = KubeWatchEvent::Type::kAdded;
    } else if (*type == "MODIFIED") {
      e.type = KubeWatchEvent::Type::kModified;
    } else if (*type == "DELETED") {
      e.type = KubeWatchEvent::Type::kDeleted;
    } else if (*type == "BOOKMARK") {
      e.type = KubeWatchEvent::Type::kBookmark;
    } else if (*type == "ERROR") {
      e.type = KubeWatchEvent::Type::kError;
    } else {
      return fail("unknown event type \"" + Snippet(*type, 32) + "\"");
    }
    if (e.type == KubeWatchEvent::Type::kError) {
      const auto code = object->find("code");
      e.error_code = code != object->end() && code->is_number_integer() ? code->get<int>() : 0;
      e.error_message = detail::StringAt(*object, "message").value_or("");
    } else if (e.type == KubeWatchEvent::Type::kBookmark) {
      if (const auto meta = object->find("metadata"); meta != object->end())
        e.resource_version = detail::StringAt(*meta, "resourceVersion").value_or("");
      if (e.resource_version.empty()) return fail("BOOKMARK without metadata.resourceVersion");
    } else {
      std::string why;
      if (!ReadNode(*object, rule, &e.node, &e.has_rule_address, &why))
        return fail(*type + " object: " + why);  // type is one of the five above
      e.resource_version = e.node.resource_version;
    }
    out.events.push_back(std::move(e));
  }
  out.ok = true;
  return out;
}

KubernetesSource::KubernetesSource(DiscoveryConfig::Kubernetes config,
                                   std::chrono::seconds watch_timeout)
    : config_(std::move(config)), watch_timeout_(watch_timeout) {}

PollResult KubernetesSource::Nodes() const {
  std::vector<DiscoveredNode> out;
  for (const auto& [name, n] : nodes_) out.push_back(n);
  return PollResult::Ok(std::move(out));
}

namespace {

struct Api {
  std::string base;  // https://host:port
  std::shared_ptr<const http::TlsClient> tls;
};

// One request whose body goes to `sink` as it arrives; it ends early when the source is
// cancelled (the exporter stops).
http::FetchResult Stream(const Api& api, const std::string& target, const std::string& token,
                         std::chrono::seconds timeout, const http::BodySink& sink) {
  http::ClientRequest request;
  std::string error;
  auto url = http::HttpUrl::Parse(api.base + target, &error);
  if (!url) {
    http::FetchResult r;
    r.error = http::FetchError::kBadUrl;
    r.message = error;
    return r;
  }
  request.url = *url;
  request.headers.emplace_back("Authorization", "Bearer " + token);
  request.headers.emplace_back("Accept", "application/json");
  return http::FetchStream(request, std::chrono::steady_clock::now() + timeout, kMaxBody,
                           api.tls.get(), sink);
}

// A whole answer (the list), up to kMaxBody.
http::FetchResult Get(const Api& api, const std::string& target, const std::string& token,
                      std::chrono::seconds timeout, std::function<bool()> cancelled) {
  std::string body;
  bool too_large = false;
  http::BodySink sink;
  sink.cancelled = std::move(cancelled);
  sink.on_data = [&](std::string_view data) {
    if (body.size() + data.size() > kMaxBody) {
      too_large = true;
      return false;
    }
    body.append(data);
    return true;
  };
  http::FetchResult r = Stream(api, target, token, timeout, sink);
  if (too_large && r.ok()) {
    r.error = http::FetchError::kTooLarge;
    r.message = "answer larger than " + std::to_string(kMaxBody) + " bytes";
  }
  r.response.body = std::move(body);
  return r;
}

std::string HttpFailure(const std::string& what, const http::FetchResult& r) {
  if (!r.ok()) return what + ": " + std::string(http::FetchErrorName(r.error)) + ": " + r.message;
  const std::string body = Snippet(r.response.body);
  if (r.response.status == 401) return what + ": HTTP 401, the service account token was rejected";
  if (r.response.status == 403)
    return what + ": HTTP 403, the service account may not list and watch nodes (RBAC)";
  return what + ": HTTP " + std::to_string(r.response.status) + ": " + body;
}

}  // namespace

PollResult KubernetesSource::Poll() {
  if (cancelled()) return PollResult::Fail("stopped");
  Api api;
  api.base = config_.api_server;
  if (api.base.empty()) {
    const char* host = std::getenv("KUBERNETES_SERVICE_HOST");
    const char* port = std::getenv("KUBERNETES_SERVICE_PORT");
    if (host == nullptr || *host == '\0')
      return PollResult::Fail("KUBERNETES_SERVICE_HOST is not set (not running in a pod?)");
    const std::string h = host;
    api.base = "https://" + (h.find(':') != std::string::npos ? "[" + h + "]" : h) + ":" +
               (port != nullptr && *port != '\0' ? port : "443");
  }
  std::string error;
  // Read for every request: the kubelet rotates projected tokens (hourly by default).
  const std::string token = ReadFile(config_.token_file, &error);
  if (!error.empty()) return PollResult::Fail("token: " + error);
  if (api.base.rfind("https://", 0) == 0) {
    http::TlsClientConfig tls;
    tls.ca_file = config_.ca_file;
    api.tls = http::TlsClient::Create(tls, &error);
    if (!api.tls) return PollResult::Fail("CA " + config_.ca_file + ": " + error);
  }
  const std::vector<std::string>& rule = config_.overlay_address;
  if (!resource_version_.empty()) {
    // The watch is read as it arrives: each complete line (one event) is applied at once, and a
    // change of the set is published before the watch ends.
    std::string pending;  // the start of an unfinished line
    size_t line_no = 0;
    std::string failure;  // a bad event or an ERROR other than 410: stop, list afresh next time
    bool gone = false;
    auto apply = [&](std::string_view line) {
      ++line_no;
      KubeWatchParse parsed = ParseWatchEvents(line, rule);
      if (!parsed.ok) {
        // The parser numbers lines within what it was given: one line here.
        const std::string why =
            parsed.error.rfind("line 1: ", 0) == 0 ? parsed.error.substr(8) : parsed.error;
        failure = "watch: line " + std::to_string(line_no) + ": " + why;
        return false;
      }
      bool changed = false;
      for (const auto& e : parsed.events) {
        using T = KubeWatchEvent::Type;
        if (e.type == T::kError) {
          if (e.error_code == 410) {
            gone = true;
          } else {
            failure =
                "watch: ERROR " + std::to_string(e.error_code) + ": " + Snippet(e.error_message);
          }
          return false;
        }
        if (!e.resource_version.empty()) resource_version_ = e.resource_version;
        if ((e.type == T::kAdded || e.type == T::kModified) && e.has_rule_address) {
          DiscoveredNode n = ToDiscovered(e.node);
          const auto it = nodes_.find(e.node.name);
          if (it == nodes_.end() || it->second != n) {
            nodes_[e.node.name] = std::move(n);
            changed = true;
          }
        } else if (e.type != T::kBookmark) {
          changed = nodes_.erase(e.node.name) > 0 || changed;
        }
      }
      if (changed) Publish(Nodes().nodes.value());
      return true;
    };
    int status = 0;
    std::string other;  // the body of an answer other than 200 (a Status object), for errors
    http::BodySink sink;
    sink.cancelled = [this] { return cancelled(); };
    sink.on_head = [&](const http::ClientResponse& head) { status = head.status; };
    sink.on_data = [&](std::string_view data) {
      if (status != 200) {
        other.append(data.substr(0, 4096 - std::min<size_t>(other.size(), 4096)));
        return true;
      }
      pending.append(data);
      size_t from = 0;
      for (size_t nl; (nl = pending.find('\n', from)) != std::string::npos; from = nl + 1) {
        std::string_view line = std::string_view(pending).substr(from, nl - from);
        if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
        if (!line.empty() && !apply(line)) return false;
      }
      pending.erase(0, from);
      if (pending.size() > kMaxBody) {
        failure = "watch: an event longer than " + std::to_string(kMaxBody) + " bytes";
        return false;
      }
      return true;
    };
    auto r = Stream(
        api,
        "/api/v1/nodes?watch=1&allowWatchBookmarks=true&resourceVersion=" + resource_version_ +
            "&timeoutSeconds=" + std::to_string(watch_timeout_.count()),
        token, watch_timeout_ + std::chrono::seconds(10), sink);
    if (r.error == http::FetchError::kCancelled) return PollResult::Fail("stopped");
    // The last line, if the server ended the stream without a newline.
    if (r.ok() && status == 200 && !gone && failure.empty() && !pending.empty()) apply(pending);
    if (!failure.empty()) {
      resource_version_.clear();  // the next poll lists afresh rather than re-read bad events
      return PollResult::Fail(failure);
    }
    if (r.ok() && status == 200 && !gone) return Nodes();
    if (!gone && !(r.ok() && status == 410)) {
      r.response.body = other;
      return PollResult::Fail(HttpFailure("watch", r));
    }
    resource_version_.clear();  // 410 Gone, as a status or inside the stream: list afresh
  }
  const auto r =
      Get(api, "/api/v1/nodes", token, std::chrono::seconds(15), [this] { return cancelled(); });
  if (r.error == http::FetchError::kCancelled) return PollResult::Fail("stopped");
  if (!r.ok() || r.response.status != 200) return PollResult::Fail(HttpFailure("list", r));
  KubeNodeList list = ParseNodeList(r.response.body, rule);
  if (!list.ok) return PollResult::Fail("list: " + list.error);
  ++lists_;
  nodes_.clear();
  for (const auto& n : list.nodes) nodes_[n.name] = ToDiscovered(n);
  resource_version_ = list.resource_version;
  return Nodes();
}

}  // namespace meshflow::discovery
