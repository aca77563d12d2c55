#!/usr/bin/env bash
# Installs every Debian 12 package meshflow needs. Idempotent: packages already present are
# not downloaded again, and apt-get update runs only when a package is missing.
#   deploy/install-deps.sh          build and run the exporter
#   deploy/install-deps.sh --test   also everything the test suite starts (servers, tools)
set -euo pipefail

BUILD_PACKAGES=(
  build-essential cmake pkg-config git
  prometheus-cpp-dev libcivetweb-dev libpcap-dev libspdlog-dev libre2-dev
  libyaml-cpp-dev libcli11-dev zlib1g-dev libssl-dev libcap-dev libcrypt-dev dpkg-dev
)
RUNTIME_PACKAGES=(
  libpcap0.8 iproute2 ca-certificates
)
TEST_PACKAGES=(
  googletest libgtest-dev libgmock-dev libbenchmark-dev clang clang-format
  prometheus prometheus-alertmanager prometheus-node-exporter prometheus-smokeping-prober
  pmacct tshark tcpreplay iputils-ping iperf3 curl procps psmisc
  redis-server redis-tools postgresql postgresql-contrib nginx openssl
  python3 python3-scapy python3-yaml lintian
  libclang-rt-14-dev time
  systemd
  wireguard-go wireguard-tools
)

packages=("${BUILD_PACKAGES[@]}" "${RUNTIME_PACKAGES[@]}")
if [[ "${1:-}" == "--test" ]]; then
  packages+=("${TEST_PACKAGES[@]}")
  # Schema checks of dashboards and manifests use npm packages. A machine may already carry a
  # newer Node.js than Debian's; only install Debian's when there is none.
  command -v npm >/dev/null 2>&1 || packages+=(nodejs npm)
  # `kubectl kustomize` renders the manifests; a machine may carry a newer kubectl of its own.
  command -v kubectl >/dev/null 2>&1 || packages+=(kubernetes-client)
fi

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if ((${#missing[@]} == 0)); then
  echo "install-deps: all ${#packages[@]} packages present"
  exit 0
fi

if [[ $(id -u) -ne 0 ]]; then
  echo "install-deps: missing packages (${missing[*]}); run as root to install them" >&2
  exit 1
fi

echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
# Packages such as tshark ask whether non-root users may capture; answer no without a prompt.
echo "wireshark-common wireshark-common/install-setuid boolean false" | debconf-set-selections
apt-get update -qq
# Debian's server packages start their services on install; the tests start their own copies,
# so keep the system ones from starting during the install.
policy=/usr/sbin/policy-rc.d
created_policy=0
if [[ ! -e $policy ]]; then
  printf '#!/bin/sh\nexit 101\n' > "$policy"
  chmod +x "$policy"
  created_policy=1
fi
trap '[[ $created_policy == 1 ]] && rm -f "$policy"' EXIT
apt-get install -y -qq --no-install-recommends "${missing[@]}"
