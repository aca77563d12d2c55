#!/usr/bin/env bash
# Installs every Debian 12 package meshflow needs. Idempotent: packages already present are
# not downloaded again, and apt-get update runs only when a package is missing.
#   deploy/install-deps.sh          build and run the exporter
#   deploy/install-deps.sh --test   also everything the test suite starts (servers, tools)
#   deploy/install-deps.sh --cross-arm64 SYSROOT
#                                   also Debian's arm64 cross toolchain, qemu-user-static and the
#                                   image tools, and unpacks the arm64 -dev packages into SYSROOT
#                                   (deploy/cross/arm64.sh; nothing :arm64 is installed here)
set -euo pipefail

BUILD_PACKAGES=(
  build-essential cmake pkg-config git
  prometheus-cpp-dev libcivetweb-dev libpcap-dev libspdlog-dev libre2-dev
  libyaml-cpp-dev libcli11-dev zlib1g-dev libssl-dev libcap-dev libcrypt-dev dpkg-dev
  libsnappy-dev libprotobuf-dev protobuf-compiler
  nlohmann-json3-dev
  help2man
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
  victoria-metrics
  wireguard-go wireguard-tools dnsmasq-base
  chromium
  mmdebstrap systemd-container podman python3-prometheus-client python3-jsonschema
)
# The arm64 cross build (deploy/cross/arm64.sh) on this machine, and for its sysroot the
# architecture-specific BUILD_PACKAGES (and the C/C++ runtime) as Debian 12 arm64 packages.
CROSS_ARM64_PACKAGES=(
  crossbuild-essential-arm64 qemu-user-static mmdebstrap podman binutils-aarch64-linux-gnu
  lintian curl
)
ARM64_SYSROOT_PACKAGES=(
  libc6-dev libstdc++-12-dev
  prometheus-cpp-dev libcivetweb-dev libpcap-dev libspdlog-dev libre2-dev
  libyaml-cpp-dev libcli11-dev zlib1g-dev libssl-dev libcap-dev libcrypt-dev
  libsnappy-dev nlohmann-json3-dev
)

packages=("${BUILD_PACKAGES[@]}" "${RUNTIME_PACKAGES[@]}")
sysroot=
if [[ "${1:-}" == "--cross-arm64" ]]; then
  sysroot=${2:?"usage: deploy/install-deps.sh --cross-arm64 SYSROOT"}
  packages+=("${CROSS_ARM64_PACKAGES[@]}")
fi
# The arm64 -dev packages go into their own directory, never into this machine's dpkg database:
# several of them cannot be installed beside their amd64 versions, and installing the others as
# :arm64 would force this machine's amd64 libraries to the same version. mmdebstrap's extract
# variant downloads them with their dependencies and unpacks them without running anything.
make_arm64_sysroot() {
  [[ -n $sysroot ]] || return 0
  if [[ -f $sysroot/.meshflow-sysroot ]] && cmp -s "$sysroot/.meshflow-sysroot" \
      <(printf '%s\n' "${ARM64_SYSROOT_PACKAGES[@]}"); then
    echo "install-deps: arm64 sysroot $sysroot present"
    return 0
  fi
  rm -rf "$sysroot"
  mkdir -p "$(dirname "$sysroot")"
  local include
  include=$(IFS=,; echo "${ARM64_SYSROOT_PACKAGES[*]}")
  echo "install-deps: unpacking arm64 packages into $sysroot"
  # The .debs stay in var/cache/apt/archives: the arm64 package's Depends are computed from
  # their symbols and shlibs files (deploy/cross/arm64.sh).
  mmdebstrap --quiet --variant=extract --architectures=arm64 --skip=cleanup/apt/cache \
    --include="$include" bookworm "$sysroot" \
    "deb http://deb.debian.org/debian bookworm main" \
    "deb http://deb.debian.org/debian bookworm-updates main" \
    "deb http://deb.debian.org/debian-security bookworm-security main"
  # Links such as libz.so -> /lib/aarch64-linux-gnu/libz.so.1.2.13 are absolute: make them
  # relative, so that they point into the sysroot and not at this machine's /lib.
  local link target
  while IFS= read -r -d '' link; do
    target=$(readlink "$link")
    ln -sfn "$(realpath -s -m --relative-to="$(dirname "/${link#"$sysroot"/}")" "$target")" "$link"
  done < <(find "$sysroot/usr" "$sysroot/lib" -type l -lname '/*' -print0)
  # Some CMake package files name their files by absolute path (Snappy's: /usr/lib/...): make
  # those relative to the sysroot the toolchain file sets (CMAKE_SYSROOT).
  # shellcheck disable=SC2016 # ${CMAKE_SYSROOT} is written into the files, for CMake to expand
  find "$sysroot/usr/lib" "$sysroot/usr/share" -path '*/cmake/*' -name '*.cmake' -type f \
    -exec sed -i -e 's|"/usr/|"${CMAKE_SYSROOT}/usr/|g' -e 's|"/usr"|"${CMAKE_SYSROOT}/usr"|g' {} +
  printf '%s\n' "${ARM64_SYSROOT_PACKAGES[@]}" >"$sysroot/.meshflow-sysroot"
}
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
  make_arm64_sysroot
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
make_arm64_sysroot
