# Shared by up, down and status. Sourced, never run.
# An instance is one running test bed: its namespaces are "<instance>-<node>" and
# "<instance>-lan-<segment>", its files live in one run directory. Several instances can run
# side by side (tests in parallel) as long as their names differ.

TESTBED_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_DIR=$(cd "$TESTBED_DIR/../.." && pwd)

INSTANCE=${MF_TESTBED_INSTANCE:-mf}

die() {
  echo "testbed: $*" >&2
  exit 1
}
say() { echo "testbed[$INSTANCE]: $*"; }

set_instance() {
  INSTANCE=$1
  [[ $INSTANCE =~ ^mf[a-z0-9-]{0,12}$ ]] ||
    die "instance name must match mf[a-z0-9-]{0,12} (namespaces are named after it): $INSTANCE"
  PREFIX="$INSTANCE-"
  RUN_DIR=${MF_TESTBED_RUN_DIR:-${TMPDIR:-/tmp}/meshflow-testbed.$INSTANCE}
  SOCKET="$RUN_DIR/overlay.sock"
  WG_TAG=$(printf '%s' "$INSTANCE" | cksum | awk '{printf "%05x", $1 % 1048576}')
}
set_instance "$INSTANCE"

# The first build directory that has the binary, unless told by environment or option.
find_built() {
  local rel=$1 candidate
  if [[ -n ${MESHFLOW_BUILD_DIR:-} && -x $MESHFLOW_BUILD_DIR/$rel ]]; then
    echo "$MESHFLOW_BUILD_DIR/$rel"
    return 0
  fi
  for candidate in "$REPO_DIR"/build/*/"$rel" "$REPO_DIR"/build/"$rel"; do
    if [[ -x $candidate ]]; then
      echo "$candidate"
      return 0
    fi
  done
  return 1
}

pid_of() { [[ -f $RUN_DIR/pids/$1.pid ]] && cat "$RUN_DIR/pids/$1.pid"; }

# A process that exited but was not reaped yet (a zombie) counts as gone.
pid_running() {
  local state
  [[ -n $1 ]] && kill -0 "$1" 2>/dev/null || return 1
  state=$(sed -E 's/^.*\) ([A-Za-z]).*/\1/' "/proc/$1/stat" 2>/dev/null) || return 1
  [[ $state != Z ]]
}

alive() {
  local pid
  pid=$(pid_of "$1") || return 1
  pid_running "$pid"
}

# The control client the running instance was started with.
ctl_path() {
  if [[ -n ${MESHFLOW_OVERLAY_CTL:-} ]]; then
    echo "$MESHFLOW_OVERLAY_CTL"
  else
    cat "$RUN_DIR/ctl"
  fi
}

# Waits until a command succeeds: up to $1 tries, 0.2 s apart.
retry() {
  local tries=$1 i
  shift
  for ((i = 0; i < tries; i++)); do
    if "$@" >/dev/null 2>&1; then return 0; fi
    sleep 0.2
  done
  return 1
}

# Node table from the running emulator's state (or the topology): name ipv4 ipv6 [lan fields].
# Sets NODE_NAMES and the maps NODE_V4, NODE_V6, NODE_LAN, NODE_VXLAN.
load_nodes() {
  local file=$RUN_DIR/nodes line name
  [[ -f $file ]] || die "no node table in $RUN_DIR (is the test bed up?)"
  NODE_NAMES=()
  declare -gA NODE_V4=() NODE_V6=() NODE_LAN=() NODE_VXLAN=() NODE_UNDERLAY=()
  # Bash's own matching: under load every grep or cut started costs tens of milliseconds.
  node_field() { if [[ $line =~ \ $1=([^ ]*) ]]; then echo "${BASH_REMATCH[1]}"; fi; }
  while read -r line; do
    [[ $line == node\ * ]] || continue
    name=${line#node }
    name=${name%% *}
    NODE_NAMES+=("$name")
    NODE_V4[$name]=$(node_field ipv4)
    NODE_V6[$name]=$(node_field ipv6)
    NODE_LAN[$name]=$(node_field lan_address)
    NODE_VXLAN[$name]=$(node_field vxlan_address)
    NODE_UNDERLAY[$name]=$(node_field underlay)
  done <"$file"
  ((${#NODE_NAMES[@]} > 0)) || die "empty node table in $file"
}

has_node() { [[ -n ${NODE_V4[$1]:-} ]]; }
ns_of() { echo "$PREFIX$1"; }

# The running topology's overlay range: overlay_prefix 4 or overlay_prefix 6.
overlay_prefix() {
  sed -nE "s/^overlay mode=.* ipv$1=([^ ]+).*/\1/p" "$RUN_DIR/nodes"
}

# A node's wireguard-go interface: wg<N>-<tag>, N its place in the topology, tag five hex digits
# of the instance name. wireguard-go's UAPI socket is /var/run/wireguard/<interface>.sock for
# every namespace, so the name must differ between test beds; and it has at most 15 characters.
wg_ifname() {
  local i
  for i in "${!NODE_NAMES[@]}"; do
    if [[ ${NODE_NAMES[$i]} == "$1" ]]; then
      echo "wg$((i + 1))-$WG_TAG"
      return 0
    fi
  done
  die "no node $1"
}

# One up or down per instance at a time: a second would build over, or pull down, the first's
# namespaces. The lock file holds the owner's pid; a dead owner's lock is taken over. up passes
# its lock on to the down it runs (MF_TESTBED_LOCK_OWNER). A file, not flock: every process up
# starts would inherit an flock descriptor and hold the lock for its whole life.
LOCK_HELD=0
take_lock() {
  local file=${TMPDIR:-/tmp}/meshflow-testbed.$INSTANCE.lock owner
  if [[ ${MF_TESTBED_LOCK_OWNER:-} == "$INSTANCE:$PPID" ]]; then return 0; fi
  if ! (set -o noclobber && echo $$ >"$file") 2>/dev/null; then
    owner=$(cat "$file" 2>/dev/null || true)
    if [[ $owner =~ ^[0-9]+$ ]] && pid_running "$owner"; then
      die "another up or down of instance $INSTANCE is running (pid $owner)"
    fi
    echo $$ >"$file"
  fi
  LOCK_HELD=1
  export MF_TESTBED_LOCK_OWNER="$INSTANCE:$$"
}
release_lock() {
  if ((LOCK_HELD)); then rm -f "${TMPDIR:-/tmp}/meshflow-testbed.$INSTANCE.lock"; fi
  LOCK_HELD=0
}

# Tests name their instance "<base>-<pid of the test>". A test killed by a timeout cannot run its
# trap; the next run of the same test removes what such dead runs left.
reap_stale_instances() {
  local base=$1 dir name owner
  for dir in "${TMPDIR:-/tmp}"/meshflow-testbed."$base"-*; do
    [[ -d $dir ]] || continue
    name=${dir##*/meshflow-testbed.}
    owner=${name##*-}
    [[ $owner =~ ^[0-9]+$ ]] || continue
    if ! kill -0 "$owner" 2>/dev/null; then
      echo "removing test bed $name left by a dead run"
      "$TESTBED_DIR/down" --instance "$name" || true
    fi
  done
}

# own_instance BASE: the calling test's own instance, BASE-<its pid>, after taking down any BASE-*
# left by a dead run, and $WORK, a fresh directory. On exit the instance is taken down and $WORK
# removed.
own_instance() {
  reap_stale_instances "$1"
  set_instance "$1-$$"
  WORK=$(mktemp -d)
  trap _own_instance_cleanup EXIT
}
_own_instance_cleanup() {
  "$TESTBED_DIR/down" --instance "$INSTANCE" >/dev/null 2>&1 || true
  rm -rf -- "$WORK"
}

# The checks of a test: each says ok or FAIL and the test goes on; finish ends it, with status 1
# when any check failed.
failures=0
pass() { echo "ok:   $*"; }
fail() {
  echo "FAIL: $*"
  failures=$((failures + 1))
}
finish() {
  if ((failures)); then
    echo "$failures check(s) failed"
    exit 1
  fi
  echo "all checks passed"
}
