#!/usr/bin/env bash
# Builds the meshflow image (both daemons; the exporter is the entrypoint) from a finished
# build tree, without any registry: FROM scratch, one layer holding the two binaries, the
# shared libraries they load (found from their DT_NEEDED entries, as the dynamic loader would),
# CA certificates, default configs and a passwd file with nobody. Then `podman save` writes an
# archive for `k3s ctr images import`.
#   deploy/image/build.sh BUILD_DIR [--arch amd64|arm64] [--sysroot DIR] [--tag NAME:TAG] [--archive FILE]
# --arch arm64 takes a tree cross-built for arm64 and the libraries from --sysroot DIR, the arm64
# sysroot it was built against (deploy/cross/arm64.sh does both, and runs the image's arm64
# binaries under qemu-user-static). amd64 is checked by tests/deploy/image_test.sh.
# Needs podman (deploy/install-deps.sh --test installs it) and, as root or rootless podman,
# nothing else: no RUN step, so no container runtime is started.
set -euo pipefail
top=$(cd "$(dirname "$0")/../.." && pwd)
usage() {
  echo "usage: deploy/image/build.sh BUILD_DIR [--arch amd64|arm64] [--sysroot DIR] [--tag NAME:TAG] [--archive FILE]" >&2
  exit 2
}
(($# >= 1)) || usage
build=$1
shift
arch=amd64
version=$(sed -n 's/^project(meshflow VERSION \([0-9.]*\).*/\1/p' "$top/CMakeLists.txt")
tag=localhost/meshflow-exporter:$version
archive=
sysroot=
while (($#)); do
  case "$1" in
    --arch) arch=$2; shift ;;
    --tag) tag=$2; shift ;;
    --archive) archive=$2; shift ;;
    --sysroot) sysroot=$(realpath "$2"); shift ;;
    *) usage ;;
  esac
  shift
done
case "$arch" in
  amd64) triplet=x86_64-linux-gnu ;;
  arm64) triplet=aarch64-linux-gnu ;;
  *) echo "build.sh: unknown --arch $arch (amd64 or arm64)" >&2; exit 2 ;;
esac

# The base of this image is the build tree: say what to run when it is not there.
exporter=$build/exporter/meshflow-exporter
gateway=$build/gateway/meshflow-gateway
if [[ ! -x $exporter || ! -x $gateway || ! -d $build/private-lib ]]; then
  cat >&2 <<MSG
build.sh: no finished build in '$build' (need exporter/meshflow-exporter, gateway/meshflow-gateway
and private-lib/). Build it first, e.g.:
  deploy/install-deps.sh
  cmake -S . -B build/release -DCMAKE_BUILD_TYPE=Release -DMESHFLOW_BUILD_TESTS=OFF -DMESHFLOW_BUILD_BENCH=OFF
  cmake --build build/release
  deploy/image/build.sh build/release
MSG
  exit 1
fi
command -v podman >/dev/null || { echo "build.sh: podman is missing; run deploy/install-deps.sh --test" >&2; exit 1; }
machine=$(readelf -h "$exporter" | sed -n 's/^ *Machine: *//p')
case "$arch:$machine" in
  amd64:*X86-64* | arm64:*AArch64*) ;;
  *) echo "build.sh: $exporter is built for '$machine', not $arch" >&2; exit 1 ;;
esac

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
root=$work/rootfs
libdir=/usr/lib/$triplet
mkdir -p "$root/usr/bin" "$root$libdir" "$root/etc/meshflow" "$root/etc/ssl/certs" \
  "$root/tmp"
chmod 1777 "$root/tmp"
# The installed files (cmake --install: stripped, and with the install RUNPATH
# $ORIGIN/../lib/<triplet>/meshflow instead of the build tree's), of which the image takes the
# two daemons and the private OpenSSL names for civetweb (common/web/compat).
DESTDIR=$work/stage cmake --install "$build" --prefix /usr --strip >"$work/install.log" ||
  { cat "$work/install.log" >&2; echo "build.sh: cmake --install failed: build all targets first" >&2; exit 1; }
cp "$work/stage/usr/bin/meshflow-exporter" "$work/stage/usr/bin/meshflow-gateway" "$root/usr/bin/"
private=$(cd "$work/stage" && find . -path '*/meshflow/lib*.so' -printf '%h\n' | sort -u)
[[ $(wc -l <<<"$private") == 1 && -n $private ]] ||
  { echo "build.sh: no private library folder in the install" >&2; exit 1; }
private=${private#.}
mkdir -p "$root$private"
cp "$work/stage$private/"*.so "$root$private/"

# Shared libraries by DT_NEEDED, searched where Debian's loader looks for this architecture;
# each copied once under its SONAME (the file, not the symlink).
search=("$root$private" "$sysroot/lib/$triplet" "$sysroot/usr/lib/$triplet")
declare -A copied=()
queue=("$root/usr/bin/meshflow-exporter" "$root/usr/bin/meshflow-gateway" "$root$private"/*.so)
while ((${#queue[@]})); do
  elf=${queue[0]}
  queue=("${queue[@]:1}")
  while read -r needed; do
    [[ -n ${copied[$needed]:-} ]] && continue
    found=
    for dir in "${search[@]}"; do
      if [[ -e $dir/$needed ]]; then found=$dir/$needed; break; fi
    done
    [[ -n $found ]] || { echo "build.sh: $needed (needed by $(basename "$elf")) not found for $arch" >&2; exit 1; }
    copied[$needed]=1
    if [[ $found != "$root"* ]]; then
      cp -L "$found" "$root$libdir/$needed"
      queue+=("$root$libdir/$needed")
    fi
  done < <(readelf -d "$elf" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p')
done
# The dynamic loader at the path the binaries ask for (PT_INTERP), laid out as Debian's
# merged /usr: /lib -> usr/lib, /lib64 -> usr/lib64.
interp=$(readelf -l "$exporter" | sed -n 's/.*Requesting program interpreter: \(.*\)]/\1/p')
loader=$(basename "$interp")
if [[ ! -e $root$libdir/$loader ]]; then
  for dir in "${search[@]:1}"; do
    if [[ -e $dir/$loader ]]; then cp -L "$dir/$loader" "$root$libdir/$loader"; break; fi
  done
  [[ -e $root$libdir/$loader ]] || { echo "build.sh: no $loader for $arch" >&2; exit 1; }
fi
ln -s usr/lib "$root/lib"
case "$interp" in
  /lib64/*)
    mkdir -p "$root/usr/lib64"
    ln -s usr/lib64 "$root/lib64"
    ln -s "../lib/$triplet/$loader" "$root/usr/lib64/$loader" ;;
  /lib/"$loader") ln -s "$triplet/$loader" "$root/usr/lib/$loader" ;;
  *) echo "build.sh: unexpected program interpreter $interp" >&2; exit 1 ;;
esac

cp /etc/ssl/certs/ca-certificates.crt "$root/etc/ssl/certs/"
cp "$top/deploy/meshflow.yml" "$top/deploy/gateway.yml" "$root/etc/meshflow/"
printf 'root:x:0:0:root:/nonexistent:/usr/sbin/nologin\nnobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n' >"$root/etc/passwd"
printf 'root:x:0:\nnogroup:x:65534:\n' >"$root/etc/group"
printf 'hosts: files dns\n' >"$root/etc/nsswitch.conf"
cp "$top/deploy/image/Containerfile" "$work/"
# The image's file times and owners do not depend on this build's clock or user.
find "$root" -exec touch -h -d @0 {} +

echo "build.sh: rootfs $(du -sh "$root" | cut -f1) ($(find "$root" -type f | wc -l) files) for $arch"
podman build --quiet --platform "linux/$arch" --timestamp 0 -f "$work/Containerfile" -t "$tag" "$work" >/dev/null
echo "build.sh: built $tag ($(podman image inspect --format '{{.Size}}' "$tag") bytes," \
  "$(podman image inspect --format '{{len .RootFS.Layers}}' "$tag") layer)"
if [[ -n $archive ]]; then
  rm -f "$archive"
  podman save --format docker-archive -o "$archive" "$tag"
  echo "build.sh: saved $archive ($(stat -c %s "$archive") bytes); load it into K3s with" \
    "sudo k3s ctr images import $(basename "$archive")"
fi
