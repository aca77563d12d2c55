#!/usr/bin/env bash
# Both daemons under a real systemd: builds the Debian package with CPack, boots a Debian 12
# root file system (mmdebstrap, cached in the build tree) with `systemd-nspawn --boot` and its
# own network namespace, installs the package with apt and checks, as a user would see it:
#   - the exporter starts on install and serves; the gateway, enabled, starts and serves;
#   - `systemctl reload` applies a good config, and refuses a bad one (ExecReload runs
#     --config.check first) while the old one keeps running in the same process;
#   - `systemctl stop` is clean (exit 0, no SIGKILL);
#   - `apt-get purge` leaves no user, group, file or unit behind.
# It prints `systemd-analyze security` for both units as the booted systemd rates them, and
# fails when the exporter's exposure is above 1.9. Root only (skips with 77 otherwise).
#   systemd_nspawn_test.sh BUILD_DIR SOURCE_DIR
# The first run downloads about 60 MB of Debian packages from the machine's apt mirror; later
# runs reuse BUILD_DIR/nspawn-rootfs/*.tar while the package's dependencies stay the same.
set -euo pipefail
build=$(realpath "$1")
src=$(realpath "$2")
if [[ $(id -u) -ne 0 ]]; then
  echo "systemd_nspawn_test: needs root (skipped)"
  exit 77
fi
for tool in mmdebstrap systemd-nspawn nsenter cpack; do
  command -v "$tool" >/dev/null ||
    { echo "FAIL: $tool is missing; run deploy/install-deps.sh --test" >&2; exit 1; }
done

work=$(mktemp -d /var/tmp/meshflow-nspawn.XXXXXX)
root=$work/root
nspawn_pid=
leader=
cleanup() {
  local status=$?
  if [[ -n $nspawn_pid ]] && kill -0 "$nspawn_pid" 2>/dev/null; then
    # SIGTERM makes systemd-nspawn power the container off (SIGRTMIN+3 to its systemd).
    kill -TERM "$nspawn_pid" 2>/dev/null || true
    for _ in $(seq 1 100); do kill -0 "$nspawn_pid" 2>/dev/null || break; sleep 0.2; done
    if kill -0 "$nspawn_pid" 2>/dev/null; then
      echo "container did not power off in 20 s; killing it" >&2
      kill -KILL "$nspawn_pid" 2>/dev/null || true
    fi
    wait "$nspawn_pid" 2>/dev/null || true
  fi
  # Nothing of the container may outlive the test: mounts under the root, then the files.
  if grep -q " $root" /proc/self/mounts; then
    awk -v r="$root" '$2 ~ "^"r {print $2}' /proc/self/mounts | sort -r | xargs -r -n1 umount -l
  fi
  rm -rf "$work"
  exit "$status"
}
trap cleanup EXIT
fail() {
  echo "FAIL: $*" >&2
  if [[ -n $leader ]]; then
    in_container journalctl --no-pager -n 40 -u meshflow-exporter -u meshflow-gateway >&2 || true
  fi
  exit 1
}
# Runs a shell command inside the booted container (its namespaces, its systemd).
in_container() {
  timeout 120 nsenter --target "$leader" --mount --uts --ipc --net --pid --cgroup -- \
    /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8 /bin/bash -c "$1"
}

echo "=== package"
(cd "$work" && cpack -G DEB --config "$build/CPackConfig.cmake" -B "$work/out" >"$work/cpack.log") ||
  { cat "$work/cpack.log" >&2; fail "cpack"; }
deb=$(ls "$work"/out/meshflow_*.deb)
echo "ok: built $(basename "$deb")"

echo "=== root file system"
# The package's Depends (first of each alternative, versions dropped) go into the root file
# system, so the install inside needs no network; a change of them makes a new cache entry.
depends=$(dpkg-deb -f "$deb" Depends | tr ',' '\n' | sed 's/|.*//; s/(.*)//; s/[[:space:]]//g' |
  grep -v '^$' | sort -u | paste -sd, -)
include="systemd,systemd-sysv,dbus,curl,ca-certificates,$depends"
cache=$build/nspawn-rootfs
mkdir -p "$cache"
tarball=$cache/bookworm-$(sha256sum <<<"$include" | cut -c1-16).tar
if [[ ! -s $tarball ]]; then
  # The mirror the machine itself uses (deb822 sources or a classic sources.list).
  mirror=$(cat /etc/apt/sources.list.d/*.sources 2>/dev/null |
    sed -n 's/^URIs:[[:space:]]*\(.*debian\/*\)$/\1/p' | head -n1)
  [[ -n $mirror ]] || mirror=$(sed -n 's/^deb[[:space:]]\+\(http[^[:space:]]*debian\/*\)[[:space:]].*/\1/p' \
    /etc/apt/sources.list 2>/dev/null | head -n1)
  mirror=${mirror:-http://deb.debian.org/debian}
  echo "mmdebstrap from $mirror (cached as $tarball)"
  rm -f "$cache"/bookworm-*.tar
  timeout 600 mmdebstrap --quiet --format=tar --variant=minbase --include="$include" bookworm \
    "$tarball.partial" "$mirror" || fail "mmdebstrap"
  mv "$tarball.partial" "$tarball"
fi
mkdir "$root"
tar -C "$root" -xf "$tarball"
# Not in /tmp: systemd-nspawn mounts a fresh tmpfs there.
cp "$deb" "$root/root/"
deb_in=/root/$(basename "$deb")
echo "ok: root file system from $(basename "$tarball") ($(du -sh "$root" | cut -f1))"

echo "=== boot"
machine=meshflow-test-$$
systemd-nspawn --quiet --register=no --keep-unit --boot --private-network \
  --machine="$machine" -D "$root" >"$work/console.log" 2>&1 </dev/null &
nspawn_pid=$!
# The container's systemd is the child of systemd-nspawn that runs /sbin/init or systemd.
for _ in $(seq 1 100); do
  leader=$(pgrep -P "$nspawn_pid" | head -n1 || true)
  [[ -n $leader ]] && [[ $(readlink "/proc/$leader/exe" 2>/dev/null) == */systemd ]] && break
  leader=
  kill -0 "$nspawn_pid" 2>/dev/null || { cat "$work/console.log" >&2; fail "systemd-nspawn exited"; }
  sleep 0.2
done
[[ -n $leader ]] || { cat "$work/console.log" >&2; fail "no systemd in the container after 20 s"; }
# systemctl can talk to systemd once its private socket exists, a moment after it starts.
state=
for _ in $(seq 1 60); do
  state=$(in_container 'timeout 60 systemctl is-system-running --wait 2>/dev/null' || true)
  [[ $state == running || $state == degraded ]] && break
  sleep 1
done
echo "ok: booted (systemd pid $leader on the host, system state: $state)"
[[ $state == running || $state == degraded ]] || fail "system state $state"

echo "=== install"
in_container "apt-get install -y -q $deb_in >/tmp/apt.log 2>&1 || { cat /tmp/apt.log; exit 1; }" ||
  fail "apt-get install"
in_container 'getent passwd meshflow >/dev/null' || fail "no user meshflow after install"
scrape() {  # scrape PORT PATH: the body, or nothing within 5 s
  in_container "for i in \$(seq 1 50); do curl -sf --max-time 2 http://127.0.0.1:$1$2 && exit 0; sleep 0.1; done; exit 1"
}
in_container 'systemctl is-active --quiet meshflow-exporter' || fail "exporter not active after install"
grep -q '^meshflow_build_info{' <<<"$(scrape 9474 /metrics)" || fail "exporter does not serve /metrics"
echo "ok: apt-get install started meshflow-exporter; it serves /metrics on :9474"
# The shipped config captures and discovers WireGuard peers, so of what the unit grants the
# running exporter keeps CAP_NET_RAW and CAP_NET_ADMIN (kernel WireGuard peers), as user meshflow.
main_pid=$(in_container 'systemctl show -p MainPID --value meshflow-exporter')
fields='$1 == "Uid:" || $1 == "CapEff:" || $1 == "CapAmb:" {print $2}'
caps=$(in_container "awk '$fields' /proc/$main_pid/status" | tr '\n' ' ')
[[ $caps == "$(in_container 'id -u meshflow') 0000000000003000 0000000000000000 " ]] ||
  fail "exporter uid, CapEff, CapAmb: $caps; expected meshflow's uid, CAP_NET_RAW+CAP_NET_ADMIN, none"
echo "ok: the exporter runs as meshflow with CAP_NET_RAW and CAP_NET_ADMIN, no ambient set left"
in_container 'systemctl is-enabled --quiet meshflow-gateway' && fail "the gateway is enabled on install"
in_container 'systemctl enable --now meshflow-gateway 2>&1' || fail "systemctl enable --now meshflow-gateway"
grep -q '^meshflow_build_info{' <<<"$(scrape 9475 /metrics)" || fail "gateway does not serve /metrics"
[[ $(scrape 9475 /targets) == "[]" ]] || fail "gateway /targets is not an empty list"
echo "ok: meshflow-gateway enabled and started; it serves /metrics and /targets on :9475"

echo "=== reload"
reload_count() {  # reload_count UNIT: the reloads systemd has logged as finished
  in_container "journalctl --no-pager -o cat -u $1 | grep -c '^Reloaded ' || true"
}
main_pid() { in_container "systemctl show -p MainPID --value $1"; }
# The exporter: a good config applies (a new node), a bad one is refused and the old one stays.
exporter_pid=$(main_pid meshflow-exporter)
in_container "sed -i 's/^nodes: \[\]$/nodes: [{name: reload-check, addresses: [10.99.0.1\/32]}]/' /etc/meshflow/meshflow.yml"
in_container 'grep -q reload-check /etc/meshflow/meshflow.yml' || fail "could not edit meshflow.yml"
in_container 'systemctl reload meshflow-exporter' || fail "reload of a good exporter config"
ok=0
for _ in $(seq 1 50); do
  metrics=$(scrape 9474 /metrics)
  grep -q 'meshflow_config_last_reload_successful 1' <<<"$metrics" &&
    in_container 'journalctl --no-pager -o cat -u meshflow-exporter | grep -q "config reloaded from"' && { ok=1; break; }
  sleep 0.1
done
((ok)) || fail "the exporter did not log a successful reload"
in_container "sed -i 's/10.99.0.1\/32/10.99.0.1\/33/' /etc/meshflow/meshflow.yml"
if in_container 'systemctl reload meshflow-exporter 2>/dev/null'; then
  fail "systemctl reload accepted a bad exporter config"
fi
in_container 'journalctl --no-pager -o cat -u meshflow-exporter | grep -q "meshflow.yml:[0-9]*:[0-9]*: field nodes\[0\].addresses\[0\]"' ||
  fail "the refused reload did not log the error's file, line and field"
in_container 'systemctl is-active --quiet meshflow-exporter' || fail "exporter stopped after a bad reload"
[[ $(main_pid meshflow-exporter) == "$exporter_pid" ]] || fail "exporter restarted on a bad reload"
grep -q 'meshflow_config_last_reload_successful 1' <<<"$(scrape 9474 /metrics)" ||
  fail "the exporter took the bad config"
echo "ok: exporter reload applies a good config; a bad one fails systemctl reload with its" \
  "location, and the same process keeps serving the old one"
# The gateway: the same, with a push node whose token file is missing as the bad config.
gateway_pid=$(main_pid meshflow-gateway)
in_container "printf 'targets:\n  static: [{node: reload-check, url: \"http://127.0.0.1:9474/metrics\"}]\n' >/etc/meshflow/gateway.yml"
in_container 'systemctl reload meshflow-gateway' || fail "reload of a good gateway config"
ok=0
for _ in $(seq 1 50); do
  grep -q reload-check <<<"$(scrape 9475 /targets)" && { ok=1; break; }
  sleep 0.1
done
((ok)) || fail "the gateway did not apply the reloaded config"
in_container "printf 'targets:\n  push: [{node: laptop, token_file: /etc/meshflow/missing-token}]\n' >/etc/meshflow/gateway.yml"
if in_container 'systemctl reload meshflow-gateway 2>/dev/null'; then
  fail "systemctl reload accepted a bad gateway config"
fi
in_container 'journalctl --no-pager -o cat -u meshflow-gateway | grep -q "gateway.yml:[0-9]*:[0-9]*: field targets.push\[0\].token_file"' ||
  fail "the refused gateway reload did not log the error's file, line and field"
[[ $(main_pid meshflow-gateway) == "$gateway_pid" ]] || fail "gateway restarted on a bad reload"
grep -q reload-check <<<"$(scrape 9475 /targets)" || fail "the gateway dropped its config"
echo "ok: gateway reload applies a good config; a bad one fails systemctl reload with its" \
  "location, and the same process keeps serving the old one"

echo "=== systemd-analyze security (as the booted systemd rates the installed units)"
for unit in meshflow-exporter meshflow-gateway; do
  in_container "systemd-analyze security --no-pager $unit.service" >"$work/security-$unit.txt" 2>&1 || true
  grep -v '^✓' "$work/security-$unit.txt" || true
done
exposure=$(sed -n 's/.*Overall exposure level for meshflow-exporter.service: \([0-9.]*\) .*/\1/p' \
  "$work/security-meshflow-exporter.txt")
[[ -n $exposure ]] || fail "no exposure level for meshflow-exporter.service"
awk -v a="$exposure" 'BEGIN { exit !(a <= 1.9) }' ||
  fail "meshflow-exporter.service exposure $exposure is above 1.9"

echo "=== stop"
for unit in meshflow-exporter meshflow-gateway; do
  start=$(date +%s%N)
  in_container "systemctl stop $unit" || fail "systemctl stop $unit"
  ms=$((($(date +%s%N) - start) / 1000000))
  result=$(in_container "systemctl show -p Result --value $unit")
  status=$(in_container "systemctl show -p ExecMainStatus --value $unit")
  code=$(in_container "systemctl show -p ExecMainCode --value $unit")
  # ExecMainCode 1 is CLD_EXITED: the process exited by itself rather than by a signal.
  [[ $result == success && $status == 0 && $code == 1 ]] ||
    fail "$unit did not stop cleanly: Result=$result ExecMainCode=$code ExecMainStatus=$status"
  in_container "journalctl --no-pager -o cat -u $unit | grep -q 'SIGKILL'" && fail "$unit was killed"
  echo "ok: $unit stopped in $ms ms, exit status 0"
done

echo "=== purge"
in_container "rm -f $deb_in; apt-get purge -y -q meshflow >/tmp/apt.log 2>&1 || { cat /tmp/apt.log; exit 1; }" ||
  fail "apt-get purge"
in_container 'getent passwd meshflow' && fail "user meshflow left after purge"
in_container 'getent group meshflow' && fail "group meshflow left after purge"
left=$(in_container 'find / -xdev \( -path /proc -o -path /sys -o -path /var/log/journal \) -prune -o \
  \( -name "*meshflow*" -o -nouser -o -nogroup \) -print 2>/dev/null' || true)
[[ -z $left ]] || fail "left after purge: $left"
units=$(in_container "systemctl list-unit-files --no-legend 'meshflow*'" || true)
[[ -z $units ]] || fail "units left after purge: $units"
loaded=$(in_container "systemctl list-units --all --no-legend 'meshflow*'" || true)
[[ -z $loaded ]] || fail "units still loaded after purge: $loaded"
echo "ok: apt-get purge left no user, group, file or unit"
echo "systemd_nspawn_test: all checks passed"
