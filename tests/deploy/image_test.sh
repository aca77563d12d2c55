#!/usr/bin/env bash
# The image, built for real with deploy/image/build.sh (podman, FROM scratch), then run. `podman
# run` cannot start containers on every machine (crun: setrlimit RLIMIT_NOFILE refused inside
# some sandboxes), so the image's own root file system (`podman image mount`) runs its
# entrypoint under systemd-nspawn, in a network namespace of its own, as user nobody with
# CAP_NET_RAW as its only capability (ambient, so a non-root process holds it, as the
# DaemonSet's pods do with added capabilities). Checks: one layer, the size (printed), /metrics
# served by the exporter with the image's default config, the process's uid and capabilities,
# the gateway from the same image, an image build without a build tree failing with what to run,
# and the archive `k3s ctr images import` takes. Root only (skips with 77 otherwise).
#   image_test.sh BUILD_DIR SOURCE_DIR
set -euo pipefail
build=$(realpath "$1")
src=$(realpath "$2")
if [[ $(id -u) -ne 0 ]]; then
  echo "image_test: needs root (skipped)"
  exit 77
fi
for tool in podman systemd-nspawn nsenter curl; do
  command -v "$tool" >/dev/null ||
    { echo "FAIL: $tool is missing; run deploy/install-deps.sh --test" >&2; exit 1; }
done
tag=localhost/meshflow-image-test:$$
work=$(mktemp -d)
mounted=
pids=()
cleanup() {
  local status=$?
  for p in "${pids[@]}"; do
    kill -TERM "$p" 2>/dev/null || true
    for _ in $(seq 1 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$p" 2>/dev/null || true
    wait "$p" 2>/dev/null || true
  done
  [[ -n $mounted ]] && podman image unmount "$tag" >/dev/null 2>&1
  podman image rm -f "$tag" >/dev/null 2>&1 || true
  rm -rf "$work"
  exit "$status"
}
trap cleanup EXIT
fail() {
  echo "FAIL: $*" >&2
  for f in "$work"/*.log; do [[ -f $f ]] && { echo "--- $f" >&2; tail -n 20 "$f" >&2; }; done
  exit 1
}

echo "=== a build without its base"
if "$src/deploy/image/build.sh" "$work/no-such-build" --tag "$tag" >"$work/nobase.out" 2>&1; then
  fail "build.sh succeeded without a build tree"
fi
grep -q 'cmake --build' "$work/nobase.out" || fail "build.sh did not say what to run"
echo "ok: without a build tree build.sh fails and says what to run"

echo "=== build"
start=$(date +%s)
"$src/deploy/image/build.sh" "$build" --tag "$tag" --archive "$work/image.tar" | tee "$work/build.out" ||
  fail "build.sh"
echo "image built in $(($(date +%s) - start)) s"
layers=$(podman image inspect --format '{{len .RootFS.Layers}}' "$tag")
size=$(podman image inspect --format '{{.Size}}' "$tag")
[[ $layers == 1 ]] || fail "$layers layers, expected 1"
gzip_size=$(gzip -c "$work/image.tar" | wc -c)
echo "image: $layers layer, $size bytes unpacked, archive $(stat -c %s "$work/image.tar") bytes," \
  "$gzip_size bytes gzipped (as a registry would store its layer)"
# The binaries must be the stripped release artefacts, not a debug build's: a bound on the
# whole image keeps libraries from creeping in unnoticed.
((size < 40 * 1024 * 1024)) || fail "image is $size bytes, above 40 MiB"
entry=$(podman image inspect --format '{{json .Config.Entrypoint}}' "$tag")
[[ $entry == '["/usr/bin/meshflow-exporter"]' ]] || fail "entrypoint $entry"
tar -tf "$work/image.tar" | grep -q 'manifest.json' || fail "the archive has no manifest.json"

echo "=== run the entrypoint under systemd-nspawn as nobody with CAP_NET_RAW only"
# The image's files as podman stores them, copied out (19 MB) so that the mount points a
# container runtime adds (/proc, /sys, /dev, /run) can be made; then run read-only.
mounted=1
cp -a "$(podman image mount "$tag")" "$work/rootfs"
podman image unmount "$tag" >/dev/null
mounted=
rootfs=$work/rootfs
mkdir -p "$rootfs/proc" "$rootfs/sys" "$rootfs/dev" "$rootfs/run"
# systemd-nspawn resolves --user by running getent inside the container; the image has no
# getent (nor a shell), so the copy gets the host's (it needs only libc, which the image has).
cp /usr/bin/getent "$rootfs/usr/bin/getent"
# and it creates the user's home, which a read-only root cannot hold: give nobody "/" here.
sed -i 's#^nobody:\(.*\):/nonexistent:#nobody:\1:/:#' "$rootfs/etc/passwd"
# Every capability nspawn grants by default except CAP_NET_RAW, dropped from the bounding set.
drop=CAP_CHOWN,CAP_DAC_OVERRIDE,CAP_DAC_READ_SEARCH,CAP_FOWNER,CAP_FSETID,CAP_IPC_OWNER,CAP_KILL
drop+=,CAP_LEASE,CAP_LINUX_IMMUTABLE,CAP_MKNOD,CAP_NET_BIND_SERVICE,CAP_NET_BROADCAST
drop+=,CAP_SETFCAP,CAP_SETGID,CAP_SETPCAP,CAP_SETUID,CAP_SYS_ADMIN,CAP_SYS_BOOT,CAP_SYS_CHROOT
drop+=,CAP_SYS_NICE,CAP_SYS_PTRACE,CAP_SYS_RESOURCE,CAP_SYS_TTY_CONFIG,CAP_AUDIT_CONTROL
drop+=,CAP_AUDIT_WRITE,CAP_NET_ADMIN,CAP_IPC_LOCK
run_image() {  # run_image LOG ARGS...: the image's rootfs, read-only, its own network namespace
  local log=$1
  shift
  systemd-nspawn --quiet --register=no --keep-unit --read-only --private-network \
    --timezone=off --resolv-conf=off \
    --machine="meshflow-image-$$-${#pids[@]}" -D "$rootfs" --user=nobody \
    --drop-capability="$drop" --ambient-capability=CAP_NET_RAW --no-new-privileges=yes \
    --as-pid2 "$@" >"$log" 2>&1 </dev/null &
  pids+=($!)
}
# The daemon inside: the process of that name descending from the last systemd-nspawn.
find_daemon() {  # find_daemon NAME: its host pid, within 10 s
  local nspawn=${pids[-1]} pid up
  for _ in $(seq 1 100); do
    for pid in $(pgrep -x "$1" || true); do
      up=$pid
      while [[ $up -gt 1 && $up != "$nspawn" ]]; do
        up=$(awk '{print $4}' "/proc/$up/stat" 2>/dev/null || echo 1)
      done
      [[ $up == "$nspawn" ]] && { echo "$pid"; return 0; }
    done
    sleep 0.1
  done
  return 1
}
scrape() {  # scrape PID URL: from inside the daemon's network namespace
  for _ in $(seq 1 50); do
    nsenter --target "$1" --net -- curl -sf --max-time 2 "$2" && return 0
    sleep 0.1
  done
  return 1
}
run_image "$work/exporter.log" /usr/bin/meshflow-exporter --config.file=/etc/meshflow/meshflow.yml
exporter_pid=$(find_daemon meshflow-export) || fail "the exporter did not start"
metrics=$(scrape "$exporter_pid" http://127.0.0.1:9474/metrics) || fail "no /metrics from the image"
grep -q '^meshflow_build_info{' <<<"$metrics" || fail "no meshflow_build_info"
grep -q '^meshflow_collector_success{collector="probe"} 1' <<<"$metrics" ||
  fail "the probe collector does not run in the image"
status=/proc/$exporter_pid/status
uid=$(awk '$1 == "Uid:" {print $2}' "$status")
capeff=$(awk '$1 == "CapEff:" {print $2}' "$status")
capbnd=$(awk '$1 == "CapBnd:" {print $2}' "$status")
[[ $uid == 65534 ]] || fail "runs as uid $uid, not nobody"
[[ $capbnd == 0000000000002000 ]] || fail "bounding set $capbnd, expected CAP_NET_RAW only"
[[ $capeff == 0000000000002000 || $capeff == 0000000000000000 ]] ||
  fail "effective capabilities $capeff beyond CAP_NET_RAW"
grep -q '^meshflow_running_as_root 0' <<<"$metrics" || fail "the exporter thinks it runs as root"
echo "ok: the image's exporter serves /metrics as uid $uid, bounding set $capbnd," \
  "effective $capeff, RSS $(awk '$1 == "VmRSS:" {print $2, $3}' "$status")"

run_image "$work/gateway.log" /usr/bin/meshflow-gateway --config.file=/etc/meshflow/gateway.yml
gateway_pid=$(find_daemon meshflow-gatewa) || fail "the gateway did not start"
grep -q '^meshflow_build_info{' <<<"$(scrape "$gateway_pid" http://127.0.0.1:9475/metrics)" ||
  fail "no /metrics from the image's gateway"
echo "ok: the image's gateway serves /metrics"
echo "image_test: all checks passed"
