#!/usr/bin/env bash
# The arm64 (aarch64) build of meshflow from a Debian 12 amd64 machine, end to end:
#   1. deploy/install-deps.sh --cross-arm64: Debian's cross toolchain, qemu-user-static, podman,
#      and the arm64 -dev packages unpacked into a sysroot (nothing :arm64 is installed);
#   2. a cross build of the daemons (cmake/toolchain-aarch64-linux-gnu.cmake, no tests);
#   3. the .deb (cpack), Architecture arm64, its Depends computed by dpkg-shlibdeps from the arm64
#      packages' own symbols and shlibs files; dpkg-deb -I and lintian;
#   4. the image (deploy/image/build.sh --arch arm64) and its archive for `k3s ctr images import`,
#      under build.sh's usual name, so the manifests run it unchanged on arm64 nodes (in this
#      machine's podman storage it takes that name from an amd64 image built before);
#   5. both daemons run from the image's root file system under qemu-aarch64-static, as nobody,
#      each scraped on a free 127.0.0.1 port for meshflow_build_info.
# Too slow for tests/run.sh (a cross build of the daemons alone takes tens of minutes on two
# shared cores), so it is a script of its own; the README gives its last measured duration.
# Root for the first run (apt-get); later runs reuse what is installed.
#   deploy/cross/arm64.sh [OUT_DIR]     (default build/arm64-out; the build tree is build/arm64)
# JOBS (default 2) sets the build's parallelism.
set -euo pipefail
top=$(cd "$(dirname "$0")/../.." && pwd)
cd "$top"
out=$(realpath -m "${1:-build/arm64-out}")
sysroot=$top/build/sysroot-arm64
build=$top/build/arm64
version=$(sed -n 's/^project(meshflow VERSION \([0-9.]*\).*/\1/p' CMakeLists.txt)
started=$(date +%s)
step() { echo "=== $* ($(($(date +%s) - started)) s)"; }
fail() { echo "arm64.sh: FAIL: $*" >&2; exit 1; }
mkdir -p "$out"
work=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT

step "dependencies and the arm64 sysroot"
deploy/install-deps.sh --cross-arm64 "$sysroot"
emulator=(qemu-aarch64-static -L "$sysroot")

step "cross build in $build"
launcher=()
command -v ccache >/dev/null && launcher=(-DCMAKE_C_COMPILER_LAUNCHER=ccache -DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DCMAKE_TOOLCHAIN_FILE="$top/cmake/toolchain-aarch64-linux-gnu.cmake" \
  -DMESHFLOW_ARM64_SYSROOT="$sysroot" -DMESHFLOW_BUILD_TESTS=OFF -DMESHFLOW_BUILD_BENCH=OFF \
  "-DMESHFLOW_HELP2MAN_EMULATOR=${emulator[*]}" "${launcher[@]}" >"$work/configure.log" ||
  { cat "$work/configure.log" >&2; fail "cmake configure"; }
build_start=$(date +%s)
nice -n 10 cmake --build "$build" -j "${JOBS:-2}"
echo "arm64.sh: build took $(($(date +%s) - build_start)) s"
file -b "$build/exporter/meshflow-exporter" | grep -q 'ARM aarch64' || fail "the exporter is not an aarch64 binary"

step "the .deb"
# dpkg-shlibdeps looks libraries up in this machine's dpkg database, which has no arm64
# packages. Given package build trees (debian/PKG/ with DEBIAN/ holding the control files), it
# takes their symbols and shlibs files instead: one per arm64 library package of the sysroot.
stage=$work/stage
DESTDIR=$stage cmake --install "$build" --prefix /usr --strip >/dev/null
shlib=$work/shlibdeps
mkdir -p "$shlib/debian"
printf 'Source: meshflow\n\nPackage: meshflow\nArchitecture: arm64\n' >"$shlib/debian/control"
for deb in "$sysroot"/var/cache/apt/archives/*_arm64.deb; do
  pkg=$(dpkg-deb -f "$deb" Package)
  [[ $pkg != *-dev ]] || continue
  dpkg-deb -c "$deb" >"$work/contents"
  grep -q '\.so\.[0-9]' "$work/contents" || continue
  dpkg-deb -x "$deb" "$shlib/debian/$pkg"
  dpkg-deb -e "$deb" "$shlib/debian/$pkg/DEBIAN"
done
binaries=("$stage/usr/bin/meshflow-exporter" "$stage/usr/bin/meshflow-gateway" "$stage/usr/bin/meshflow-probe")
private=$(dirname "$(find "$stage" -path '*/meshflow/libssl.so' | head -n 1)")
(cd "$shlib" && DEB_HOST_ARCH=arm64 dpkg-shlibdeps -O -l"$private" "${binaries[@]}" "$private"/*.so) \
  >"$work/shlibdeps.out" 2>"$work/shlibdeps.err" || { cat "$work/shlibdeps.err" >&2; fail "dpkg-shlibdeps"; }
# (the private compat libraries' unversioned names and the staged, not packaged, binaries are
# expected warnings)
grep -v -e 'ORIGIN is used in RPATH' -e "can't extract name and version" \
  -e 'should already be installed' "$work/shlibdeps.err" >&2 || true
depends=$(sed -n 's/^shlibs:Depends=//p' "$work/shlibdeps.out")
[[ $depends == *libc6* ]] || fail "no library dependencies found: $(cat "$work/shlibdeps.out")"
cmake -S . -B "$build" "-DMESHFLOW_DEB_SHLIBS_DEPENDS=$depends" >/dev/null
rm -f "$out"/meshflow_*_arm64.deb
(cd "$work" && cpack -G DEB --config "$build/CPackConfig.cmake" -B "$work/cpack" >"$work/cpack.log") ||
  { cat "$work/cpack.log" >&2; fail "cpack"; }
cp "$work"/cpack/meshflow_*_arm64.deb "$out/" || fail "cpack made no meshflow_*_arm64.deb"
deb=$(ls "$out"/meshflow_*_arm64.deb)
dpkg-deb -I "$deb" | sed -n 's/^ \(Package\|Version\|Architecture\|Depends\|Installed-Size\):/  \1:/p'
[[ $(dpkg-deb -f "$deb" Architecture) == arm64 ]] || fail "$deb is not Architecture: arm64"
dpkg-deb --fsys-tarfile "$deb" | tar -xO ./usr/bin/meshflow-exporter >"$work/deb-exporter"
file -b "$work/deb-exporter" | grep -q 'ARM aarch64' || fail "the package's exporter is not aarch64"
echo "arm64.sh: $(basename "$deb"), $(stat -c %s "$deb") bytes"
if command -v lintian >/dev/null; then
  lintian --tag-display-limit 0 --suppress-tags-from-file deploy/debian/lintian-accepted "$deb" \
    >"$work/lintian.log" 2>&1 || true
  cat "$work/lintian.log"
  if grep -q '^[EW]:' "$work/lintian.log"; then fail "lintian reports errors or warnings"; fi
  echo "arm64.sh: lintian: no errors or warnings"
fi

step "the image"
archive=$out/meshflow-exporter-$version-arm64.tar
deploy/image/build.sh "$build" --arch arm64 --sysroot "$sysroot" --archive "$archive"
tag=localhost/meshflow-exporter:$version
image_arch=$(podman image inspect --format '{{.Architecture}}' "$tag")
[[ $image_arch == arm64 ]] || fail "the image is tagged for '$image_arch', not arm64"
echo "arm64.sh: image $tag: architecture $image_arch, $(podman image inspect --format '{{.Size}}' "$tag")" \
  "bytes unpacked, archive $(stat -c %s "$archive") bytes, $(gzip -c "$archive" | wc -c) bytes gzipped"

step "the image's daemons under qemu-user-static"
# The root file system exactly as the archive holds it (its one layer), so the libraries and the
# loader the binaries find are the image's, not the sysroot's.
rootfs=$work/rootfs
mkdir -p "$work/archive" "$rootfs"
tar -xf "$archive" -C "$work/archive"
layer=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))[0]["Layers"][0])' "$work/archive/manifest.json")
tar -xf "$work/archive/$layer" -C "$rootfs"
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
# The exporter with no capture interfaces and no reflector: this checks the arm64 binary serves,
# not the host's network.
cat >"$work/exporter.yml" <<'YAML'
flows:
  capture:
    interfaces:
      include: ["^meshflow-no-such-interface$"]
probes:
  reflector: {enabled: false}
YAML
scrape() {  # scrape NAME PORT: /metrics within 60 s (emulation is slow to start)
  local metrics
  for _ in $(seq 1 600); do
    if metrics=$(curl -sf --max-time 5 "http://127.0.0.1:$2/metrics"); then
      grep -q '^meshflow_build_info{' <<<"$metrics" || fail "$1: /metrics has no meshflow_build_info"
      grep '^meshflow_build_info{' <<<"$metrics"
      echo "arm64.sh: $1 under qemu-aarch64-static serves $(grep -c '^meshflow_' <<<"$metrics") meshflow_ samples on 127.0.0.1:$2"
      return 0
    fi
    kill -0 "${pids[-1]}" 2>/dev/null || { cat "$work/$1.log" >&2; fail "$1 exited"; }
    sleep 0.1
  done
  cat "$work/$1.log" >&2
  fail "$1 served no /metrics on 127.0.0.1:$2"
}
# The exporter refuses to start when /proc/self/task lists more than its own thread (it must
# drop privileges before any thread runs), and qemu-user starts a thread of its own (RCU) before
# the program. qemu looks a guest's paths up under -L first, so this copy of the image's files
# (not the image) gets a /proc/self/task with one entry; on arm64 hardware the kernel's is read.
# As nobody, so that nothing else depends on that directory (started as root, the exporter would
# go on to change every listed thread's capabilities).
mkdir -p "$rootfs/proc/self/task/1"
chmod 755 "$work"
as_nobody=(setpriv --reuid=65534 --regid=65534 --clear-groups --inh-caps=-all)
port=$(free_port)
"${as_nobody[@]}" qemu-aarch64-static -L "$rootfs" "$rootfs/usr/bin/meshflow-exporter" --config.file="$work/exporter.yml" \
  --web.listen-address="127.0.0.1:$port" >"$work/meshflow-exporter.log" 2>&1 &
pids+=($!)
scrape meshflow-exporter "$port"
port=$(free_port)
"${as_nobody[@]}" qemu-aarch64-static -L "$rootfs" "$rootfs/usr/bin/meshflow-gateway" --config.file="$rootfs/etc/meshflow/gateway.yml" \
  --web.listen-address="127.0.0.1:$port" >"$work/meshflow-gateway.log" 2>&1 &
pids+=($!)
scrape meshflow-gateway "$port"

step "done"
echo "arm64.sh: all steps passed in $(($(date +%s) - started)) s; $(basename "$deb") and $(basename "$archive") are in $out"
