#include "gateway/gateway_config.h"

#include <re2/re2.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <filesystem>
#include <fstream>
#include <limits>
#include <set>
#include <sstream>

#include "common/core/config_reader.h"
#include "common/http/http_client.h"

namespace meshflow::gateway {
namespace {

std::string ReadUrl(const ConfigNode& node) {
  const std::string url = node.AsString();
  std::string why;
  if (!http::HttpUrl::Parse(url, &why)) node.Fail("an http:// or https:// URL (" + why + ")");
  return url;
}

std::string Dirname(const std::string& path) {
  const auto slash = path.rfind('/');
  return slash == std::string::npos ? "." : path.substr(0, slash);
}

// A file named by `node`, relative to the config file's folder unless absolute.
std::string ResolvePath(const ConfigNode& node, const std::string& config_file) {
  std::string path = node.AsString();
  if (path.empty()) node.Fail("a file path");
  if (path[0] != '/') path = Dirname(config_file) + "/" + path;
  return path;
}

// The text of a secret's file (a token, a password) without its trailing line break.
std::string ReadSecretFile(const ConfigNode& node, const std::string& config_file,
                           const std::string& what) {
  const std::string path = ResolvePath(node, config_file);
  std::ifstream in(path);
  if (!in) node.Fail("a readable " + what + " file (cannot open " + path + ")");
  std::stringstream ss;
  ss << in.rdbuf();
  std::string text = ss.str();
  while (!text.empty() && (text.back() == '\n' || text.back() == '\r')) text.pop_back();
  return text;
}

std::string ReadToken(const ConfigNode& node, const std::string& config_file) {
  std::string token = ReadSecretFile(node, config_file, "token");
  while (!token.empty() && token.back() == ' ') token.pop_back();
  if (token.size() < 16) node.Fail("a token file holding a token of at least 16 characters");
  if (token.size() > 4096) node.Fail("a token file holding a token of at most 4096 characters");
  for (char c : token) {
    if (c <= ' ' || c == 0x7f) node.Fail("a token without spaces or control characters");
  }
  return token;
}

std::string Base64(std::string_view in) {
  static constexpr char kDigits[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  for (size_t i = 0; i < in.size(); i += 3) {
    uint32_t v = static_cast<uint8_t>(in[i]) << 16;
    if (i + 1 < in.size()) v |= static_cast<uint8_t>(in[i + 1]) << 8;
    if (i + 2 < in.size()) v |= static_cast<uint8_t>(in[i + 2]);
    out.push_back(kDigits[(v >> 18) & 63]);
    out.push_back(kDigits[(v >> 12) & 63]);
    out.push_back(i + 1 < in.size() ? kDigits[(v >> 6) & 63] : '=');
    out.push_back(i + 2 < in.size() ? kDigits[v & 63] : '=');
  }
  return out;
}

// tls_config, as in a Prometheus scrape config; the files are read now, so a bad one is an
// error at its line, not a failed scrape later.
std::shared_ptr<const http::TlsClient> ReadTlsConfig(const ConfigNode& node,
                                                     const std::string& config_file) {
  node.ExpectMap({"ca_file", "cert_file", "key_file", "server_name", "insecure_skip_verify"});
  http::TlsClientConfig tls;
  if (auto n = node.Get("ca_file")) tls.ca_file = ResolvePath(*n, config_file);
  if (auto n = node.Get("cert_file")) tls.cert_file = ResolvePath(*n, config_file);
  if (auto n = node.Get("key_file")) tls.key_file = ResolvePath(*n, config_file);
  if (auto n = node.Get("server_name")) tls.server_name = n->AsString();
  if (auto n = node.Get("insecure_skip_verify")) tls.insecure_skip_verify = n->AsBool();
  if (tls.cert_file.empty() != tls.key_file.empty()) {
    node.Require(tls.cert_file.empty() ? "key_file" : "cert_file")
        .Fail("cert_file and key_file together, or neither");
  }
  std::string why;
  auto client = http::TlsClient::Create(tls, &why);
  if (client == nullptr) {
    // Point at the file that failed: Create's message starts with what it was doing.
    for (const char* field : {"ca_file", "cert_file", "key_file"}) {
      const std::string loading = std::string("loading ") + field;
      const std::string mismatch = std::string(field) + " ";
      if ((why.starts_with(loading) || why.starts_with(mismatch)) && node.Get(field)) {
        node.Require(field).Fail("a usable file (" + why + ")");
      }
    }
    node.Fail("a usable TLS client setup (" + why + ")");
  }
  return client;
}

// basic_auth: the username and the password, inline or in a file (not both), as Prometheus
// takes them.
std::string ReadBasicAuth(const ConfigNode& node, const std::string& config_file) {
  node.ExpectMap({"username", "password", "password_file"});
  const auto user_node = node.Require("username");
  const std::string user = user_node.AsString();
  if (user.empty() || user.find(':') != std::string::npos) {
    user_node.Fail("a user name without ':'");
  }
  std::string password;
  if (auto inline_node = node.Get("password")) {
    if (auto file_node = node.Get("password_file"))
      file_node->Fail("password or password_file, not both");
    password = inline_node->AsString();
    if (password.find_first_of("\r\n") != std::string::npos)
      inline_node->Fail("a password of one line");
  } else {
    const auto file_node = node.Require("password_file");
    password = ReadSecretFile(file_node, config_file, "password");
    if (password.find_first_of("\r\n") != std::string::npos) {
      file_node.Fail("a password file holding one line");
    }
  }
  return "Basic " + Base64(user + ":" + password);
}

nanoseconds ReadPositiveDuration(const ConfigNode& node) {
  const nanoseconds d = node.AsDuration();
  if (d <= nanoseconds(0)) node.Fail("a duration above zero");
  return d;
}

bool ValidLabelName(const std::string& name) {
  static const RE2 kLabel("[a-zA-Z_][a-zA-Z0-9_]*");
  return RE2::FullMatch(name, kLabel);
}

// One write_relabel_configs entry, checked as Prometheus checks it (model/relabel).
RelabelRule ReadRelabelRule(const ConfigNode& node) {
  node.ExpectMap(
      {"source_labels", "separator", "regex", "modulus", "target_label", "replacement", "action"});
  using Action = RelabelRule::Action;
  RelabelRule rule;
  std::string action = "replace";
  if (auto n = node.Get("action")) {
    static const std::vector<std::pair<std::string, Action>> kActions = {
        {"replace", Action::kReplace},     {"keep", Action::kKeep},
        {"drop", Action::kDrop},           {"hashmod", Action::kHashMod},
        {"labelmap", Action::kLabelMap},   {"labeldrop", Action::kLabelDrop},
        {"labelkeep", Action::kLabelKeep}, {"keepequal", Action::kKeepEqual},
        {"dropequal", Action::kDropEqual}};
    action = n->AsEnum({"replace", "keep", "drop", "hashmod", "labelmap", "labeldrop", "labelkeep",
                        "keepequal", "dropequal"});
    for (const auto& [name, a] : kActions) {
      if (name == action) rule.action = a;
    }
  }
  const bool on_names = rule.action == Action::kLabelDrop || rule.action == Action::kLabelKeep;
  const bool equal = rule.action == Action::kKeepEqual || rule.action == Action::kDropEqual;
  const bool selects = rule.action == Action::kKeep || rule.action == Action::kDrop;
  if (on_names) {
    // Prometheus: "labeldrop action requires only 'regex', and no other fields".
    for (const char* field :
         {"source_labels", "separator", "modulus", "target_label", "replacement"}) {
      if (auto n = node.Get(field)) n->Fail("only regex with " + action + ", no " + field);
    }
  }
  if (equal) {
    for (const char* field : {"regex", "modulus", "replacement", "separator"}) {
      if (auto n = node.Get(field)) n->Fail("only source_labels and target_label with " + action);
    }
  }
  if (auto n = node.Get("source_labels")) {
    rule.source_labels = n->AsStringList();
    for (const auto& l : rule.source_labels) {
      if (!ValidLabelName(l)) n->Fail("label names such as __name__ or node");
    }
  } else if (selects || equal || rule.action == Action::kHashMod) {
    node.Require("source_labels");
  }
  if (auto n = node.Get("separator")) rule.separator = n->AsString();
  if (auto n = node.Get("target_label")) {
    rule.target_label = n->AsString();
    if (rule.action == Action::kLabelMap || selects) n->Fail("no target_label with " + action);
    // replace may build the name from the regex's groups ($1, ${name}; Prometheus'
    // relabelTarget pattern); every other action names it.
    static const RE2 kTemplated(R"((?:(?:[a-zA-Z_]|\$(?:\{\w+\}|\w+))+\w*)+)");
    const bool ok = rule.action == Action::kReplace ? RE2::FullMatch(rule.target_label, kTemplated)
                                                    : ValidLabelName(rule.target_label);
    if (!ok)
      n->Fail("a label name such as node" +
              std::string(rule.action == Action::kReplace ? " (or one built with $1)" : ""));
  } else if (rule.action == Action::kReplace || rule.action == Action::kHashMod || equal) {
    node.Require("target_label");
  }
  if (auto n = node.Get("replacement")) {
    if (rule.action != Action::kReplace && rule.action != Action::kLabelMap)
      n->Fail("no replacement with " + action);
    rule.replacement = n->AsString();
  }
  if (auto n = node.Get("modulus")) {
    if (rule.action != Action::kHashMod) n->Fail("no modulus with " + action);
    rule.modulus = static_cast<uint64_t>(n->AsInt(1, std::numeric_limits<int64_t>::max()));
  } else if (rule.action == Action::kHashMod) {
    node.Require("modulus");
  }
  std::string pattern = "(.*)";
  if (auto n = node.Get("regex")) pattern = n->AsString();
  RE2::Options options;
  options.set_log_errors(false);
  auto regex = std::make_shared<RE2>("^(?:" + pattern + ")$", options);
  if (!regex->ok()) {
    const ConfigNode at = node.Get("regex") ? *node.Get("regex") : node;
    at.Fail("a valid RE2 regular expression (" + regex->error() + ")");
  }
  rule.regex = std::move(regex);
  return rule;
}

// Headers the remote-write protocol sets itself, or that would break the request's framing.
bool ReservedHeader(std::string name) {
  for (auto& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  static const std::set<std::string> kReserved = {"authorization",
                                                  "content-encoding",
                                                  "content-length",
                                                  "content-type",
                                                  "host",
                                                  "user-agent",
                                                  "connection",
                                                  "transfer-encoding",
                                                  "x-prometheus-remote-write-version"};
  return kReserved.contains(name);
}

RemoteWriteEndpoint ReadRemoteWrite(const ConfigNode& node, const std::string& config_file) {
  node.ExpectMap({"url", "name", "remote_timeout", "headers", "basic_auth", "bearer_token_file",
                  "tls_config", "write_relabel_configs", "queue_config", "external_labels"});
  RemoteWriteEndpoint e;
  e.url = ReadUrl(node.Require("url"));
  e.name = e.url;
  if (auto n = node.Get("name")) e.name = n->AsName();
  if (auto n = node.Get("remote_timeout")) e.remote_timeout = ReadPositiveDuration(*n);
  if (auto h = node.Get("headers")) {
    for (const auto& key : h->Keys()) {
      const ConfigNode value = h->Require(key);
      static const RE2 kToken("[!#$%&'*+.^_`|~0-9A-Za-z-]+");
      if (!RE2::FullMatch(key, kToken) || ReservedHeader(key))
        value.Fail("a header name the protocol does not set itself");
      const std::string v = value.AsString();
      if (v.find_first_of("\r\n") != std::string::npos) value.Fail("a header value of one line");
      e.headers.emplace_back(key, v);
    }
  }
  if (auto n = node.Get("basic_auth")) e.authorization = ReadBasicAuth(*n, config_file);
  if (auto n = node.Get("bearer_token_file")) {
    if (node.Get("basic_auth")) n->Fail("basic_auth or bearer_token_file, not both");
    const std::string token = ReadSecretFile(*n, config_file, "bearer token");
    if (token.empty() || token.find_first_of("\r\n") != std::string::npos)
      n->Fail("a bearer token file holding one non-empty line");
    e.authorization = "Bearer " + token;
  }
  if (auto n = node.Get("tls_config")) e.tls = ReadTlsConfig(*n, config_file);
  if (auto list = node.Get("write_relabel_configs")) {
    for (const auto& item : list->Items()) e.write_relabel_configs.push_back(ReadRelabelRule(item));
  }
  if (auto l = node.Get("external_labels")) {
    for (const auto& key : l->Keys()) {
      const ConfigNode value = l->Require(key);
      if (!ValidLabelName(key) || key.starts_with("__"))
        value.Fail("a label name such as cluster (not starting with __)");
      e.external_labels.emplace_back(key, value.AsString());
    }
    std::sort(e.external_labels.begin(), e.external_labels.end());
  }
  if (auto q = node.Get("queue_config")) {
    q->ExpectMap({"capacity", "max_shards", "min_shards", "max_samples_per_send",
                  "batch_send_deadline", "min_backoff", "max_backoff", "retry_on_http_429", "path",
                  "max_bytes", "max_age"});
    auto& c = e.queue;
    if (auto n = q->Get("capacity")) c.capacity = n->AsInt(1, 10'000'000);
    if (auto n = q->Get("max_shards")) c.max_shards = n->AsInt(1, 64);
    if (auto n = q->Get("min_shards")) {
      c.min_shards = n->AsInt(1, 64);
      if (c.min_shards > c.max_shards)
        n->Fail("a count not above queue_config.max_shards (" + std::to_string(c.max_shards) + ")");
    }
    if (auto n = q->Get("max_samples_per_send")) c.max_samples_per_send = n->AsInt(1, 100'000);
    if (auto n = q->Get("batch_send_deadline")) c.batch_send_deadline = ReadPositiveDuration(*n);
    if (auto n = q->Get("min_backoff")) c.min_backoff = ReadPositiveDuration(*n);
    if (auto n = q->Get("max_backoff")) c.max_backoff = ReadPositiveDuration(*n);
    if (auto n = q->Get("retry_on_http_429")) c.retry_on_http_429 = n->AsBool();
    if (auto n = q->Get("path")) {
      c.path = ResolvePath(*n, config_file);
      std::error_code ec;
      std::filesystem::create_directories(c.path, ec);
      if (ec || ::access(c.path.c_str(), W_OK | X_OK) != 0)
        n->Fail("a folder the gateway can create and write (" + c.path + ")");
    }
    if (auto n = q->Get("max_bytes")) c.max_bytes = n->AsInt(1 << 20, int64_t{1} << 40);
    if (auto n = q->Get("max_age")) c.max_age = ReadPositiveDuration(*n);
    if (c.min_backoff > c.max_backoff)
      q->Require("min_backoff").Fail("a duration not above queue_config.max_backoff");
  }
  return e;
}

}  // namespace

GatewayConfig ParseGatewayConfig(const std::string& text, const std::string& file_name) {
  GatewayConfig config;
  config.source = file_name;
  const ConfigNode root = ConfigNode::Parse(text, file_name);
  // Each section and list item is read on its own, so that one check reports all their errors.
  ConfigErrorList errors;
  errors.Check([&] {
    root.ExpectMap({"advertise_address", "targets", "scrape", "push", "federate", "memory",
                    "scrape_interval", "remote_write", "mesh"});
  });
  errors.Check([&] {
    if (auto n = root.Get("advertise_address")) {
      config.advertise_address = n->AsString();
      static const RE2 kHostPort(R"((\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+):[0-9]{1,5})");
      if (!RE2::FullMatch(config.advertise_address, kHostPort))
        n->Fail("host:port, such as gateway.example:9475");
    }
  });
  std::set<std::string> seen;
  // A target's or pusher's node: a valid name, listed once across both.
  auto read_node = [&](const ConfigNode& item) {
    const ConfigNode node = item.Require("node");
    std::string name = node.AsName("node name");
    if (!seen.insert(name).second) node.Fail("a node name not listed before");
    return name;
  };
  errors.Check([&] {
    if (auto targets = root.Get("targets")) {
      targets->ExpectMap({"static", "dns", "push"});
      if (auto list = targets->Get("static")) {
        for (const auto& item : list->Items())
          errors.Check([&] {
            item.ExpectMap({"node", "url"});
            StaticTarget t;
            t.node = read_node(item);
            t.url = ReadUrl(item.Require("url"));
            config.static_targets.push_back(std::move(t));
          });
      }
      if (auto list = targets->Get("dns")) {
        for (const auto& item : list->Items())
          errors.Check([&] {
            item.ExpectMap({"name", "scheme", "port", "path", "refresh_interval"});
            DnsTargets d;
            d.name = item.Require("name").AsString();
            if (auto p = item.Get("scheme")) {
              const std::string scheme = p->AsString();
              if (scheme != "http" && scheme != "https") p->Fail("http or https");
              d.https = scheme == "https";
            }
            static const RE2 kDnsName(
                R"([A-Za-z0-9_]([A-Za-z0-9_-]*[A-Za-z0-9_])?(\.[A-Za-z0-9_]([A-Za-z0-9_-]*[A-Za-z0-9_])?)*\.?)");
            if (d.name.size() > 253 || !RE2::FullMatch(d.name, kDnsName))
              item.Require("name").Fail("a DNS name such as meshflow.monitoring.svc.cluster.local");
            if (auto p = item.Get("port")) d.port = static_cast<uint16_t>(p->AsInt(1, 65535));
            if (auto p = item.Get("path")) {
              d.path = p->AsString();
              if (d.path.empty() || d.path[0] != '/' ||
                  d.path.find_first_of(" \t\r\n") != std::string::npos)
                p->Fail("a path starting with /");
            }
            if (auto r = item.Get("refresh_interval")) {
              d.refresh_interval = r->AsDuration();
              if (d.refresh_interval < std::chrono::seconds(1))
                r->Fail("a duration of at least 1s");
            }
            config.dns_targets.push_back(std::move(d));
          });
      }
      if (auto list = targets->Get("push")) {
        for (const auto& item : list->Items())
          errors.Check([&] {
            item.ExpectMap({"node", "token_file"});
            PushNode p;
            p.node = read_node(item);
            const auto token_node = item.Require("token_file");
            p.token_file = token_node.AsString();
            p.token = ReadToken(token_node, file_name);
            config.push_nodes.push_back(std::move(p));
          });
      }
    }
  });
  errors.Check([&] {
    if (auto s = root.Get("scrape")) {
      s->ExpectMap({"default_timeout", "max_timeout", "timeout_offset", "max_body_bytes",
                    "concurrency", "max_queue", "max_inflight_per_node", "tls_config",
                    "basic_auth"});
      auto& c = config.scrape;
      if (auto n = s->Get("default_timeout")) c.default_timeout = ReadPositiveDuration(*n);
      if (auto n = s->Get("max_timeout")) c.max_timeout = ReadPositiveDuration(*n);
      if (auto n = s->Get("timeout_offset")) c.timeout_offset = n->AsDuration();
      if (auto n = s->Get("max_body_bytes")) c.max_body_bytes = n->AsInt(1024, int64_t{1} << 30);
      if (auto n = s->Get("concurrency")) c.concurrency = n->AsInt(1, 1024);
      if (auto n = s->Get("max_queue")) c.max_queue = n->AsInt(1, 100000);
      if (auto n = s->Get("max_inflight_per_node")) c.max_inflight_per_node = n->AsInt(1, 64);
      if (auto n = s->Get("tls_config")) c.tls = ReadTlsConfig(*n, file_name);
      if (auto n = s->Get("basic_auth")) c.authorization = ReadBasicAuth(*n, file_name);
      if (c.default_timeout > c.max_timeout)
        s->Require("default_timeout").Fail("a duration not above scrape.max_timeout");
    }
  });
  errors.Check([&] {
    if (auto p = root.Get("push")) {
      p->ExpectMap({"ttl", "default_interval", "max_body_bytes"});
      if (auto n = p->Get("ttl")) config.push.ttl = ReadPositiveDuration(*n);
      if (auto n = p->Get("default_interval"))
        config.push.default_interval = ReadPositiveDuration(*n);
      if (auto n = p->Get("max_body_bytes"))
        config.push.max_body_bytes = n->AsInt(1024, int64_t{256} << 20);
    }
  });
  errors.Check([&] {
    if (auto f = root.Get("federate")) {
      f->ExpectMap({"timeout", "max_selectors", "max_query_bytes", "time_budget"});
      if (auto n = f->Get("timeout")) config.federate.timeout = ReadPositiveDuration(*n);
      if (auto n = f->Get("max_selectors")) config.federate.max_selectors = n->AsInt(1, 1024);
      if (auto n = f->Get("max_query_bytes"))
        config.federate.max_query_bytes = n->AsInt(256, int64_t{1} << 20);
      if (auto n = f->Get("time_budget")) config.federate.time_budget = ReadPositiveDuration(*n);
    }
  });
  errors.Check([&] {
    if (auto m = root.Get("memory")) {
      m->ExpectMap({"budget_bytes", "max_series_per_push"});
      if (auto n = m->Get("budget_bytes"))
        config.memory.budget_bytes = n->AsInt(int64_t{1} << 20, int64_t{1} << 40);
      if (auto n = m->Get("max_series_per_push"))
        config.memory.max_series_per_push = n->AsInt(1, 10'000'000);
    }
  });
  errors.Check([&] {
    if (auto n = root.Get("scrape_interval")) {
      config.scrape_interval = n->AsDuration();
      if (config.scrape_interval < std::chrono::seconds(1)) n->Fail("a duration of at least 1s");
    }
  });
  errors.Check([&] {
    if (auto list = root.Get("remote_write")) {
      std::set<std::string> names;
      std::set<std::string> paths;
      for (const auto& item : list->Items())
        errors.Check([&] {
          auto endpoint = ReadRemoteWrite(item, file_name);
          if (!names.insert(endpoint.name).second)
            (item.Get("name") ? *item.Get("name") : item.Require("url"))
                .Fail("a name (or URL) not used by another remote_write entry");
          if (!endpoint.queue.path.empty() && !paths.insert(endpoint.queue.path).second)
            item.Require("queue_config").Require("path").Fail("a queue folder of its own");
          config.remote_write.push_back(std::move(endpoint));
        });
    }
  });
  errors.Check([&] {
    if (auto m = root.Get("mesh")) config.mesh = mesh::ReadMeshSettings(*m);
  });
  errors.ThrowIfAny();
  return config;
}

GatewayConfig LoadGatewayConfigFile(const std::string& path) {
  if (path.empty()) return GatewayConfig{};
  std::ifstream in(path);
  if (!in) throw ConfigError(path + ": cannot read the gateway config file");
  std::stringstream ss;
  ss << in.rdbuf();
  return ParseGatewayConfig(ss.str(), path);
}

}  // namespace meshflow::gateway
