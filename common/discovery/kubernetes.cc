#include "common/discovery/kubernetes.h"

#include <cstdlib>
#include <fstream>
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
  std::shared_ptr<const gateway::TlsClient> tls;
};

gateway::FetchResult Get(const Api& api, const std::string& target, const std::string& token,
                         std::chrono::seconds timeout) {
  gateway::ClientRequest request;
  std::string error;
  auto url = gateway::HttpUrl::Parse(api.base + target, &error);
  if (!url) {
    gateway::FetchResult r;
    r.error = gateway::FetchError::kBadUrl;
    r.message = error;
    return r;
  }
  request.url = *url;
  request.headers.emplace_back("Authorization", "Bearer " + token);
  request.headers.emplace_back("Accept", "application/json");
  return gateway::Fetch(request, std::chrono::steady_clock::now() + timeout, kMaxBody,
                        api.tls.get());
}

std::string HttpFailure(const std::string& what, const gateway::FetchResult& r) {
  if (!r.ok())
    return what + ": " + std::string(gateway::FetchErrorName(r.error)) + ": " + r.message;
  const std::string body = Snippet(r.response.body);
  if (r.response.status == 401) return what + ": HTTP 401, the service account token was rejected";
  if (r.response.status == 403)
    return what + ": HTTP 403, the service account may not list and watch nodes (RBAC)";
  return what + ": HTTP " + std::to_string(r.response.status) + ": " + body;
}

}  // namespace

PollResult KubernetesSource::Poll() {
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
    gateway::TlsClientConfig tls;
    tls.ca_file = config_.ca_file;
    api.tls = gateway::TlsClient::Create(tls, &error);
    if (!api.tls) return PollResult::Fail("CA " + config_.ca_file + ": " + error);
  }
  const std::vector<std::string>& rule = config_.overlay_address;
  if (!resource_version_.empty()) {
    const auto r =
        Get(api,
            "/api/v1/nodes?watch=1&allowWatchBookmarks=true&resourceVersion=" + resource_version_ +
                "&timeoutSeconds=" + std::to_string(watch_timeout_.count()),
            token, watch_timeout_ + std::chrono::seconds(10));
    if (r.ok() && r.response.status == 200) {
      KubeWatchParse parsed = ParseWatchEvents(r.response.body, rule);
      if (!parsed.ok) {
        resource_version_.clear();  // the next poll lists afresh rather than re-read bad events
        return PollResult::Fail("watch: " + parsed.error);
      }
      auto nodes = nodes_;
      std::string version = resource_version_;
      bool gone = false;
      for (const auto& e : parsed.events) {
        using T = KubeWatchEvent::Type;
        if (e.type == T::kError) {
          if (e.error_code == 410) {
            gone = true;
            break;
          }
          resource_version_.clear();
          return PollResult::Fail("watch: ERROR " + std::to_string(e.error_code) + ": " +
                                  Snippet(e.error_message));
        }
        if (!e.resource_version.empty()) version = e.resource_version;
        if (e.type == T::kAdded || e.type == T::kModified) {
          if (e.has_rule_address) {
            nodes[e.node.name] = ToDiscovered(e.node);
          } else {
            nodes.erase(e.node.name);
          }
        } else if (e.type == T::kDeleted) {
          nodes.erase(e.node.name);
        }
      }
      nodes_ = std::move(nodes);
      resource_version_ = version;
      if (!gone) return Nodes();
      resource_version_.clear();  // 410 Gone inside the stream: fall through to a fresh list
    } else if (r.ok() && r.response.status == 410) {
      resource_version_.clear();
    } else {
      return PollResult::Fail(HttpFailure("watch", r));
    }
  }
  const auto r = Get(api, "/api/v1/nodes", token, std::chrono::seconds(15));
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
