#!/usr/bin/env bash
# Builds the Debian package with CPack from a finished build tree, checks it with lintian,
# installs it with dpkg -i, verifies the installed unit with systemd-analyze, and starts the
# installed exporter the way the unit does (its user, the capabilities of its Ambient line,
# no_new_privs, its ExecStart line) since no systemd runs as PID 1 here. Then purges it.
# Root only: dpkg changes the machine, and everything installed is removed at the end.
#   check_package.sh BUILD_DIR
set -euo pipefail
build=$(realpath "$1")
if [[ $(id -u) -ne 0 ]]; then
  echo "check_package: needs root (skipped)"
  exit 77
fi
work=$(mktemp -d)
pid=
installed=0
cleanup() {
  [[ -n $pid ]] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
  [[ $installed == 1 ]] && dpkg --purge meshflow >/dev/null 2>&1
  rm -rf "$work"
}
trap cleanup EXIT
fail() {
  echo "FAIL: $*" >&2
  [[ -f $work/log ]] && tail -n 20 "$work/log" >&2
  exit 1
}
if dpkg-query -W -f='${Status}' meshflow 2>/dev/null | grep -q 'install ok installed'; then
  fail "a meshflow package is installed already; this test would replace and then purge it"
fi

(cd "$work" && cpack -G DEB --config "$build/CPackConfig.cmake" -B "$work/out" >"$work/cpack.log") ||
  { cat "$work/cpack.log" >&2; fail "cpack"; }
deb=$(ls "$work"/out/meshflow_*.deb)
echo "ok: built $(basename "$deb")"
dpkg-deb --info "$deb" | sed -n 's/^ \(Depends\|Version\|Architecture\):/  \1:/p'
contents=$(dpkg-deb --contents "$deb" | awk '{print $6}')
for f in ./usr/bin/meshflow-exporter ./lib/systemd/system/meshflow-exporter.service \
  ./etc/meshflow/meshflow.yml ./etc/default/meshflow-exporter \
  ./usr/bin/meshflow-gateway ./lib/systemd/system/meshflow-gateway.service \
  ./etc/meshflow/gateway.yml ./etc/default/meshflow-gateway \
  ./usr/share/man/man1/meshflow-exporter.1.gz ./usr/share/man/man1/meshflow-gateway.1.gz \
  ./usr/share/man/man1/meshflow-probe.1.gz \
  ./usr/share/doc/meshflow/runbooks.md \
  ./usr/share/meshflow/web-config.example.yml ./usr/share/meshflow/prometheus/prometheus.yml \
  ./usr/share/meshflow/alerts/alerting_rules.yml ./usr/share/meshflow/dashboards/overlay-mesh.json \
  ./usr/share/doc/meshflow/copyright ./usr/share/doc/meshflow/changelog.gz; do
  grep -qx "$f" <<<"$contents" || fail "$f is not in the package"
done
grep -q '/meshflow/libssl.so$' <<<"$contents" || fail "the compat libssl.so is not in the package"
echo "ok: binaries, units, configs, man pages, dashboards, alerts, runbooks and docs are in the package"
dpkg-deb -f "$deb" Description | grep -q . || fail "no description"
grep -q '^License: Apache-2.0' <(dpkg-deb --fsys-tarfile "$deb" | tar -xO ./usr/share/doc/meshflow/copyright) ||
  fail "copyright does not name Apache-2.0"

# lintian: errors fail the test; the overrides file says why each remaining tag is accepted.
lintian --tag-display-limit 0 --suppress-tags-from-file \
  "$(dirname "$0")/../../deploy/debian/lintian-accepted" "$deb" >"$work/lintian.log" 2>&1 || true
cat "$work/lintian.log"
if grep -q '^[EW]:' "$work/lintian.log"; then fail "lintian reports errors or warnings"; fi
echo "ok: lintian reports no errors and no warnings"

dpkg -i "$deb" >"$work/dpkg.log" 2>&1 || { cat "$work/dpkg.log" >&2; fail "dpkg -i"; }
installed=1
getent passwd meshflow >/dev/null || fail "postinst did not create the meshflow user"
systemd-analyze verify /lib/systemd/system/meshflow-exporter.service \
  /lib/systemd/system/meshflow-gateway.service || fail "systemd-analyze verify of the installed units"
man -l /usr/share/man/man1/meshflow-gateway.1.gz 2>/dev/null | grep -q -- '--config.check' ||
  fail "the gateway's man page lacks --config.check"
echo "ok: installed; user meshflow exists; systemd-analyze verify passes on the installed unit"
readelf -d /usr/bin/meshflow-exporter | grep -q 'RUNPATH.*meshflow' ||
  fail "installed binary has no RUNPATH to its private directory"

# ExecStart from the installed unit, with MESHFLOW_ARGS as /etc/default would give it: a
# loopback port, and the reflector kept off the port that other tests may hold.
exec_start=$(sed -n 's/^ExecStart=//p' /lib/systemd/system/meshflow-exporter.service)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
args="--web.listen-address=127.0.0.1:$port --no-collector.probe"
command=${exec_start//\$MESHFLOW_ARGS/$args}
# shellcheck disable=SC2086
# The capabilities the installed unit grants, as setpriv spells them (net_raw,net_admin).
caps=$(sed -n 's/^AmbientCapabilities=//p' /lib/systemd/system/meshflow-exporter.service |
  tr 'A-Z' 'a-z' | sed -e 's/cap_//g' -e 's/ /,+/g')
[[ $caps == "net_raw,+net_admin" ]] || fail "the unit grants +$caps, expected net_raw and net_admin"
setpriv --reuid=meshflow --regid=meshflow --clear-groups \
  --inh-caps=-all,+$caps --ambient-caps=-all,+$caps --bounding-set=-all,+$caps \
  --no-new-privs $command >"$work/log" 2>&1 &
pid=$!
for _ in $(seq 1 100); do
  grep -q 'running as uid=' "$work/log" && break
  sleep 0.1
done
kill -0 "$pid" 2>/dev/null || fail "the installed exporter exited"
metrics=$(curl -s --max-time 5 "http://127.0.0.1:$port/metrics") || fail "no metrics"
grep -q '^meshflow_build_info{' <<<"$metrics" || fail "no meshflow_build_info"
status=/proc/$pid/status
[[ $(awk '$1 == "Uid:" {print $2}' "$status") == $(id -u meshflow) ]] || fail "not user meshflow"
# The shipped config captures and discovers WireGuard peers: both capabilities stay.
[[ $(awk '$1 == "CapEff:" {print $2}' "$status") == 0000000000003000 ]] ||
  fail "CapEff $(awk '$1 == "CapEff:" {print $2}' "$status"), expected CAP_NET_RAW and CAP_NET_ADMIN"
[[ $(awk '$1 == "CapAmb:" {print $2}' "$status") == 0000000000000000 ]] ||
  fail "ambient capabilities left for children"
[[ $(awk '$1 == "NoNewPrivs:" {print $2}' "$status") == 1 ]] || fail "no_new_privs not set"
grep -q '^meshflow_capabilities{cap="cap_net_raw",set="effective"} 1' <<<"$metrics" ||
  fail "metrics do not show cap_net_raw"
grep -q '^meshflow_capabilities{cap="cap_net_admin",set="effective"} 1' <<<"$metrics" ||
  fail "metrics do not show cap_net_admin"
grep -q 'capture opened' "$work/log" || echo "note: no interface matched the capture patterns"
echo "ok: installed exporter runs as meshflow with CAP_NET_RAW and CAP_NET_ADMIN (ambient cleared)," \
  "no_new_privs, serves metrics"
kill "$pid"
wait "$pid" 2>/dev/null || true
pid=
dpkg --purge meshflow >/dev/null || fail "dpkg --purge"
installed=0
[[ ! -e /usr/bin/meshflow-exporter && ! -e /etc/meshflow ]] || fail "files left after purge"
getent passwd meshflow >/dev/null && fail "user meshflow left after purge"
echo "ok: purged"
echo "check_package: all checks passed"
