#!/usr/bin/env bash
# Renders the kustomize base and overlays with `kubectl kustomize`, validates every object
# offline against the Kubernetes API schemas (kubernetes-models, plus an unknown-field check
# with the official client's field lists), and checks the security and scheduling settings
# the exporter relies on. The config files the ConfigMaps carry are parsed by deploy_config_test.
#   check_manifests.sh SOURCE_DIR WORK_DIR
set -euo pipefail
src=$1
work=$2
here=$src/tests/deploy
mkdir -p "$work"

# npm packages live in the build tree, beside a copy of the validator (ES modules resolve
# packages from the importing file's folder). Reinstalled only when the lock file changes.
cp "$here/package.json" "$here/package-lock.json" "$here/validate_manifests.mjs" "$work/"
if ! cmp -s "$here/package-lock.json" "$work/node_modules/.installed-lock" 2>/dev/null; then
  (cd "$work" && npm ci --no-audit --no-fund --loglevel=error)
  cp "$here/package-lock.json" "$work/node_modules/.installed-lock"
fi

status=0
for dir in "$src"/deploy/kubernetes/base "$src"/deploy/kubernetes/overlays/*/; do
  name=${dir%/}
  name=${name#"$src"/deploy/kubernetes/}
  echo "=== $name"
  kubectl kustomize "$dir" 2>/dev/null >"$work/rendered.yaml"
  (cd "$work" && node validate_manifests.mjs <rendered.yaml) || status=1
  python3 - "$work/rendered.yaml" <<'PY' || status=1
import sys
import yaml

docs = [d for d in yaml.safe_load_all(open(sys.argv[1])) if d]
by_kind = {}
for d in docs:
    by_kind.setdefault(d["kind"], []).append(d)
problems = []
def need(cond, what):
    if not cond:
        problems.append(what)

for kind in ("Namespace", "ServiceAccount", "ConfigMap", "DaemonSet", "Service", "ClusterRole",
             "ClusterRoleBinding"):
    need(len(by_kind.get(kind, [])) == 1, f"exactly one {kind}")
ds = by_kind["DaemonSet"][0]
pod = ds["spec"]["template"]["spec"]
c = pod["containers"][0]
sc = c["securityContext"]
for d in docs:
    if d["kind"] not in ("Namespace", "ClusterRole", "ClusterRoleBinding"):
        need(d["metadata"].get("namespace") == "meshflow", f"{d['kind']} in namespace meshflow")
need(pod.get("hostNetwork") is True, "hostNetwork")
need(pod.get("dnsPolicy") == "ClusterFirstWithHostNet", "dnsPolicy ClusterFirstWithHostNet")
need(pod.get("priorityClassName") == "system-node-critical", "priorityClassName")
# The token is mounted for discovery, whose role may read nodes and nothing else.
role = by_kind["ClusterRole"][0]
need(role.get("rules") == [{"apiGroups": [""], "resources": ["nodes"],
                            "verbs": ["get", "list", "watch"]}],
     "the ClusterRole grants get, list and watch on nodes only")
binding = by_kind["ClusterRoleBinding"][0]
need(binding["roleRef"]["name"] == role["metadata"]["name"] and
     binding["subjects"] == [{"kind": "ServiceAccount", "name": pod.get("serviceAccountName"),
                              "namespace": "meshflow"}],
     "the ClusterRole is bound to the exporter's ServiceAccount only")
need(pod.get("serviceAccountName") == by_kind["ServiceAccount"][0]["metadata"]["name"],
     "the ServiceAccount is used")
tol = pod.get("tolerations", [])
need(any(t.get("key") == "node-role.kubernetes.io/control-plane" and t.get("effect") == "NoSchedule"
         for t in tol), "control-plane toleration")
need(any(t.get("operator") == "Exists" and "key" not in t and t.get("effect") == "NoExecute"
         for t in tol), "NoExecute toleration")
env = {e["name"]: e for e in c.get("env", [])}
need(env.get("NODE_NAME", {}).get("valueFrom", {}).get("fieldRef", {}).get("fieldPath")
     == "spec.nodeName", "NODE_NAME from the downward API")
need(sc.get("readOnlyRootFilesystem") is True, "readOnlyRootFilesystem")
need(sc.get("allowPrivilegeEscalation") is False, "allowPrivilegeEscalation false")
need(sc.get("privileged") in (None, False), "not privileged")
need(sc.get("capabilities", {}).get("drop") == ["ALL"], "drop ALL")
need(sc.get("capabilities", {}).get("add") in (["NET_RAW"], ["NET_RAW", "NET_ADMIN"]),
     "add only NET_RAW (and NET_ADMIN)")
promiscuous = "promiscuous: true" in by_kind["ConfigMap"][0]["data"]["meshflow.yml"]
need(("NET_ADMIN" in sc["capabilities"]["add"]) == promiscuous,
     "NET_ADMIN exactly when the config captures promiscuously")
res = c.get("resources", {})
for k in ("requests", "limits"):
    for r in ("cpu", "memory"):
        need(r in res.get(k, {}), f"resources.{k}.{r}")
cm = by_kind["ConfigMap"][0]["metadata"]["name"]
vols = {v["name"]: v for v in pod.get("volumes", [])}
need(any(v.get("configMap", {}).get("name") == cm for v in vols.values()),
     "the DaemonSet mounts the generated ConfigMap")
svc = by_kind["Service"][0]["spec"]
need(svc.get("clusterIP") == "None", "headless Service")
need(svc.get("selector", {}).items() <= ds["spec"]["template"]["metadata"]["labels"].items(),
     "the Service selects the exporter pods")
for p in problems:
    print("FAIL: " + p, file=sys.stderr)
if not problems:
    print("ok: security and scheduling settings")
sys.exit(1 if problems else 0)
PY
done
exit $status
