#include "collectors/flow/flow_pipeline.h"

#include "common/core/log.h"
#include "common/core/metric_builder.h"

namespace meshflow::flow {
namespace {

constexpr size_t kStatuses = static_cast<size_t>(DecodeStatus::kCount);
constexpr size_t kEncaps = static_cast<size_t>(Encap::kCount);

}  // namespace

// Everything classification needs, owned by the capture thread once swapped in.
struct FlowPipeline::Rules {
  Rules(const Config& config, const std::vector<IpAddress>& self)
      : decoder(config.flows.capture.vxlan_ports),
        classifier(config, self),
        max_series(static_cast<size_t>(config.flows.max_series)),
        tcp(config.flows.tcp),
        node_name(config.node_name) {}
  Decoder decoder;
  Classifier classifier;
  size_t max_series;
  TcpConfig tcp;
  std::string node_name;
};

struct FlowPipeline::Interface {
  std::string name;  // immutable once published
  std::string kind;  // guarded by mutex_
  std::atomic<LinkDecodeFn> decode{nullptr};
  std::atomic<int> link_type{0};
  Counter packets;
  std::array<Counter, kStatuses> statuses;
  std::array<Counter, kEncaps> encap_bytes;
};

FlowPipeline::FlowPipeline(const Config& config, AddressSource self_addresses)
    : self_addresses_(std::move(self_addresses)),
      table_(static_cast<size_t>(config.flows.max_series)),
      // Interface names are immutable once published, so the capture thread may read them.
      accounts_(table_,
                [this](uint32_t id) -> const std::string& { return interfaces_[id]->name; }),
      config_(config),
      kinds_(std::make_unique<InterfaceKinds>(config.flows.capture.kinds)) {
  rules_ = BuildRules(config);
  // Interface names are immutable once published, so the capture thread may read them.
  tcp_ = std::make_unique<tcp::PassiveTcp>(
      config, [this](uint32_t id) { return interfaces_[id]->name; }, &accounts_);
  BindLayers();
}

void FlowPipeline::BindLayers() {
  accounts_.Bind(rules_->classifier);
  tcp_->Rebind(rules_->tcp, rules_->node_name, rules_->max_series, rules_->classifier);
  tcp_enabled_.store(rules_->tcp.enabled, std::memory_order_relaxed);
}

FlowPipeline::~FlowPipeline() = default;

std::unique_ptr<FlowPipeline::Rules> FlowPipeline::BuildRules(const Config& config) const {
  return std::make_unique<Rules>(config,
                                 self_addresses_ ? self_addresses_() : std::vector<IpAddress>{});
}

uint32_t FlowPipeline::AddInterface(const std::string& name, int link_type) {
  const auto decode = LinkDecoderFor(link_type);
  if (!decode) {
    spdlog::warn("interface {} has unsupported link type {}: its packets count as decode errors",
                 name, link_type);
  }
  std::lock_guard lock(mutex_);
  const uint32_t n = interface_count_.load(std::memory_order_relaxed);
  for (uint32_t i = 0; i < n; ++i) {
    Interface& iface = *interfaces_[i];
    if (iface.name != name) continue;
    iface.link_type.store(link_type, std::memory_order_relaxed);
    iface.decode.store(decode.value_or(nullptr), std::memory_order_relaxed);
    return i;
  }
  if (n == interfaces_.size()) {
    spdlog::warn("interface {} not counted: the limit of {} interfaces is reached", name,
                 interfaces_.size());
    return n;  // OnPacket counts packets of this id as unknown_interface
  }
  auto iface = std::make_unique<Interface>();
  iface->name = name;
  iface->kind = kinds_->KindOf(name);
  iface->link_type.store(link_type, std::memory_order_relaxed);
  iface->decode.store(decode.value_or(nullptr), std::memory_order_relaxed);
  interfaces_[n] = std::move(iface);
  interface_count_.store(n + 1, std::memory_order_release);
  return n;
}

void FlowPipeline::Reconfigure(const Config& config) {
  auto rules = BuildRules(config);
  auto kinds = std::make_unique<InterfaceKinds>(config.flows.capture.kinds);
  std::lock_guard lock(mutex_);
  config_ = config;
  kinds_ = std::move(kinds);
  ++config_generation_;
  const uint32_t n = interface_count_.load(std::memory_order_relaxed);
  for (uint32_t i = 0; i < n; ++i) interfaces_[i]->kind = kinds_->KindOf(interfaces_[i]->name);
  pending_ = std::move(rules);
  has_pending_.store(true, std::memory_order_release);
}

void FlowPipeline::RefreshLocalAddresses() {
  Config config;
  uint64_t generation = 0;
  {
    std::lock_guard lock(mutex_);
    config = config_;
    generation = config_generation_;
  }
  auto rules = BuildRules(config);
  std::lock_guard lock(mutex_);
  // A Reconfigure meanwhile posted rules of a newer config, built with fresh addresses too.
  if (generation != config_generation_) return;
  pending_ = std::move(rules);
  has_pending_.store(true, std::memory_order_release);
}

void FlowPipeline::ApplyPending() {
  // Held TCP packets are classified when tracked: under the rules they arrived with.
  tcp_->Flush();
  std::unique_ptr<Rules> old;
  {
    std::lock_guard lock(mutex_);
    if (!pending_) return;
    old = std::move(rules_);
    rules_ = std::move(pending_);
    has_pending_.store(false, std::memory_order_relaxed);
  }
  table_.SetMaxSeries(rules_->max_series);
  BindLayers();
  fragments_.Clear();  // it holds role ids of the old table
  const Classifier& c = rules_->classifier;
  table_.Reindex([&](uint32_t interface_id, const SeriesLabels& labels) {
    if (labels.src_node == "overflow" && labels.dst_node == "overflow") {
      return SeriesKey::Overflow(interface_id);
    }
    const auto role = c.FindRole(labels.role);
    const auto src = c.FindNode(labels.src_node);
    const auto dst = c.FindNode(labels.dst_node);
    if (!role || !src || !dst) return FlowTable::kEmptyKey;
    return SeriesKey::Pack(interface_id, *role, *src, *dst);
  });
}

RoleId FlowPipeline::FragmentRole(const PacketInfo& info, int64_t timestamp_ns, RoleId role) {
  if (info.fragment_offset == 0) {
    fragments_.Remember(info, role, timestamp_ns);
    return role;
  }
  RoleId first = Classifier::kOther;
  if (!fragments_.Lookup(info, timestamp_ns, first)) unmatched_fragments_.Add(1);
  return first;
}

void FlowPipeline::OnPacket(uint32_t interface_id, const CapturedPacket& packet) {
  if (has_pending_.load(std::memory_order_relaxed)) [[unlikely]] {
    ApplyPending();
  }
  if (interface_id >= interface_count_.load(std::memory_order_acquire)) [[unlikely]] {
    unknown_interface_packets_.Add(1);
    return;
  }
  Interface& iface = *interfaces_[interface_id];
  iface.packets.Add(1);
  const LinkDecodeFn decode = iface.decode.load(std::memory_order_relaxed);
  if (decode == nullptr) [[unlikely]] {
    iface.statuses[static_cast<size_t>(DecodeStatus::kUnsupportedLinkType)].Add(1);
    return;
  }
  const DecodeStatus status = rules_->decoder.Decode(decode, packet.data, packet.captured_length,
                                                     packet.wire_length, info_);
  if (status != DecodeStatus::kOk) [[unlikely]] {
    iface.statuses[static_cast<size_t>(status)].Add(1);
    return;
  }
  if (info_.encap != Encap::kNone) {
    iface.encap_bytes[static_cast<size_t>(info_.encap)].Add(info_.encap_overhead_bytes);
  }
  // The tracker classifies and counts TCP packets, except first fragments, whose role later
  // fragments need.
  if (info_.has_tcp_header && !info_.is_fragment && tcp_enabled_.load(std::memory_order_relaxed)) {
    tcp::PacketContext context{packet.timestamp_ns, interface_id};
    context.classified = false;
    tcp_->Submit(info_, context);
    return;
  }
  Classifier& c = rules_->classifier;
  RoleId role = c.Role(info_);
  if (info_.is_fragment) [[unlikely]] {
    role = FragmentRole(info_, packet.timestamp_ns, role);
  }
  const NodeId src = c.Node(info_.src);
  const NodeId dst = c.Node(info_.dst);
  // Before the flow table, whose independent work then overlaps the tracker's.
  if (info_.has_tcp_header && tcp_enabled_.load(std::memory_order_relaxed)) {
    tcp_->Submit(info_, {packet.timestamp_ns, interface_id, role, src, dst});
  }
  bool folded;
  accounts_.Series(interface_id, role, src, dst, folded)
      .Count(info_.ip_bytes,
             info_.has_tcp_header &&
                 (info_.tcp_flags & (tcp_flags::kSyn | tcp_flags::kAck)) == tcp_flags::kSyn);
}

void FlowPipeline::Flush() { tcp_->Flush(); }

template <typename Visit>
void FlowPipeline::ForEachInterface(Visit&& visit) const {
  std::lock_guard lock(mutex_);
  const uint32_t n = interface_count_.load(std::memory_order_acquire);
  for (uint32_t i = 0; i < n; ++i) visit(static_cast<const Interface&>(*interfaces_[i]));
}

void FlowPipeline::Collect(std::vector<prometheus::MetricFamily>& out) const {
  using prometheus::MetricType;
  FamilyBuilder bytes("meshflow_flow_bytes_total",
                      "IP bytes (IPv4 total length, IPv6 payload length + 40) seen on an "
                      "interface, by role and node pair.",
                      MetricType::Counter);
  FamilyBuilder packets("meshflow_flow_packets_total",
                        "IP packets seen on an interface, by role and node pair.",
                        MetricType::Counter);
  FamilyBuilder connections("meshflow_flow_connections_total",
                            "TCP connection attempts (SYN without ACK); src_node is the client.",
                            MetricType::Counter);
  size_t series = 0;
  table_.ForEach([&](const SeriesLabels& l, const SeriesCounters& c) {
    ++series;
    LabelPairs labels{
        {"iface", l.iface}, {"role", l.role}, {"src_node", l.src_node}, {"dst_node", l.dst_node}};
    bytes.Counter(labels, static_cast<double>(c.bytes.value()));
    packets.Counter(labels, static_cast<double>(c.packets.value()));
    connections.Counter(std::move(labels), static_cast<double>(c.connections.value()));
  });
  bytes.AppendTo(out);
  packets.AppendTo(out);
  connections.AppendTo(out);

  FamilyBuilder series_count("meshflow_flow_series",
                             "Flow series held (bounded by flows.max_series, plus one overflow "
                             "series per interface).",
                             MetricType::Gauge);
  FamilyBuilder overflow("meshflow_flow_series_overflow_total",
                         "Packets folded into the overflow series because flows.max_series "
                         "was reached.",
                         MetricType::Counter);
  FamilyBuilder unmatched("meshflow_flow_fragments_unmatched_total",
                          "Later IP fragments whose first fragment was not seen; counted with "
                          "role other.",
                          MetricType::Counter);
  FamilyBuilder evictions("meshflow_flow_fragment_table_evictions_total",
                          "First-fragment entries evicted from the full fragment table before "
                          "they expired.",
                          MetricType::Counter);
  series_count.Gauge({}, static_cast<double>(series));
  FamilyBuilder series_limit("meshflow_flow_series_limit",
                             "The configured bound on flow series (flows.max_series); alerts "
                             "compare meshflow_flow_series with it.",
                             MetricType::Gauge);
  {
    std::lock_guard lock(mutex_);
    series_limit.Gauge({}, static_cast<double>(config_.flows.max_series));
  }
  overflow.Counter({}, static_cast<double>(table_.overflowed_packets()));
  unmatched.Counter({}, static_cast<double>(unmatched_fragments_.value()));
  evictions.Counter({}, static_cast<double>(fragments_.evictions()));
  FamilyBuilder unknown("meshflow_flow_unknown_interface_packets_total",
                        "Packets of interfaces beyond the pipeline's interface limit (1024), "
                        "not counted in flows.",
                        MetricType::Counter);
  unknown.Counter({}, static_cast<double>(unknown_interface_packets_.value()));
  series_count.AppendTo(out);
  series_limit.AppendTo(out);
  overflow.AppendTo(out);
  unmatched.AppendTo(out);
  evictions.AppendTo(out);
  unknown.AppendTo(out);

  FamilyBuilder errors("meshflow_capture_decode_errors_total",
                       "Packets not counted in flows because they were malformed, by reason.",
                       MetricType::Counter);
  FamilyBuilder skipped("meshflow_capture_skipped_packets_total",
                        "Well-formed packets that carry no IP (ARP, LLDP), by reason.",
                        MetricType::Counter);
  FamilyBuilder encap("meshflow_encap_overhead_bytes_total",
                      "Bytes of outer headers around decapsulated packets (outer IP length "
                      "minus inner IP length).",
                      MetricType::Counter);
  ForEachInterface([&](const Interface& iface) {
    for (size_t s = static_cast<size_t>(DecodeStatus::kTruncatedLinkHeader); s < kStatuses; ++s) {
      errors.Counter(
          {{"iface", iface.name}, {"reason", std::string(DecodeStatusName(DecodeStatus(s)))}},
          static_cast<double>(iface.statuses[s].value()));
    }
    skipped.Counter(
        {{"iface", iface.name}, {"reason", "not_ip"}},
        static_cast<double>(iface.statuses[static_cast<size_t>(DecodeStatus::kNotIp)].value()));
    for (size_t e = 1; e < kEncaps; ++e) {
      encap.Counter({{"iface", iface.name}, {"encap", std::string(EncapName(Encap(e)))}},
                    static_cast<double>(iface.encap_bytes[e].value()));
    }
  });
  errors.AppendTo(out);
  skipped.AppendTo(out);
  encap.AppendTo(out);
  if (tcp_enabled_.load(std::memory_order_relaxed)) tcp_->Collect(out);
}

void FlowPipeline::CollectCaptureFamilies(std::vector<prometheus::MetricFamily>& out) const {
  using prometheus::MetricType;
  FamilyBuilder captured("meshflow_capture_packets_total",
                         "Packets handed to the flow pipeline by capture or replay.",
                         MetricType::Counter);
  FamilyBuilder info("meshflow_capture_interface_info",
                     "Interface kind (overlay, underlay, pod): sum one kind to count each "
                     "byte once.",
                     MetricType::Gauge);
  ForEachInterface([&](const Interface& iface) {
    captured.Counter({{"iface", iface.name}}, static_cast<double>(iface.packets.value()));
    info.Gauge({{"iface", iface.name}, {"kind", iface.kind}}, 1);
  });
  captured.AppendTo(out);
  info.AppendTo(out);
}

}  // namespace meshflow::flow
