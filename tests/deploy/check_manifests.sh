#!/usr/bin/env bash
# Renders the kustomize base and overlays with `kubectl kustomize` (which must not warn, e.g.
# about deprecated fields), validates every object offline against the Kubernetes API schemas
# (kubernetes-models, plus an unknown-field check with the official client's field lists), and
# checks the security and scheduling settings the exporter and the gateway rely on. The
# prometheus-operator resources are validated against the operator's CRDs (tests/deploy/crds).
# The config files the ConfigMaps carry are parsed by deploy_config_test.
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
  kubectl kustomize "$dir" 2>"$work/kustomize.err" >"$work/rendered.yaml" ||
    { cat "$work/kustomize.err" >&2; status=1; continue; }
  if [[ -s $work/kustomize.err ]]; then
    echo "FAIL: kubectl kustomize warns:" >&2
    cat "$work/kustomize.err" >&2
    status=1
  fi
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

for kind in ("Namespace", "ServiceAccount", "DaemonSet", "Deployment", "ClusterRole",
             "ClusterRoleBinding"):
    need(len(by_kind.get(kind, [])) == 1, f"exactly one {kind}")
for kind in ("ConfigMap", "Service"):
    need(len(by_kind.get(kind, [])) == 2, f"two {kind}s (exporter and gateway)")
def named(kind, prefix):
    found = [d for d in by_kind.get(kind, []) if d["metadata"]["name"].startswith(prefix)]
    need(len(found) == 1, f"one {kind} named {prefix}*")
    return found[0] if found else {"metadata": {"name": ""}, "spec": {}, "data": {}}
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
exporter_cm = named("ConfigMap", "meshflow-config-")
promiscuous = "promiscuous: true" in exporter_cm["data"].get("meshflow.yml", "")
need(("NET_ADMIN" in sc["capabilities"]["add"]) == promiscuous,
     "NET_ADMIN exactly when the config captures promiscuously")
res = c.get("resources", {})
for k in ("requests", "limits"):
    for r in ("cpu", "memory"):
        need(r in res.get(k, {}), f"resources.{k}.{r}")
cm = exporter_cm["metadata"]["name"]
vols = {v["name"]: v for v in pod.get("volumes", [])}
need(any(v.get("configMap", {}).get("name") == cm for v in vols.values()),
     "the DaemonSet mounts the generated ConfigMap")
svc = named("Service", "meshflow-exporter")["spec"]
need(svc.get("clusterIP") == "None", "headless Service")
need(svc.get("selector", {}).items() <= ds["spec"]["template"]["metadata"]["labels"].items(),
     "the Service selects the exporter pods")

# --config.check runs first, with the image and config of the main container.
def init_checks(pod_spec, main, what):
    inits = pod_spec.get("initContainers", [])
    need(len(inits) == 1, f"{what}: one init container")
    if not inits:
        return
    init = inits[0]
    need("--config.check" in init.get("args", []), f"{what}: the init container runs --config.check")
    need(init.get("image") == main.get("image"), f"{what}: init container has the main image")
    need(init.get("command") == main.get("command"), f"{what}: init container runs the same binary")
    cfg = [a for a in main.get("args", []) if a.startswith("--config.file=")]
    need(bool(cfg) and cfg[0] in init.get("args", []), f"{what}: init container checks the same file")
    isc = init.get("securityContext", {})
    need(isc.get("capabilities", {}).get("drop") == ["ALL"] and
         not isc.get("capabilities", {}).get("add"), f"{what}: init container holds no capability")
    need(isc.get("allowPrivilegeEscalation") is False, f"{what}: init container no escalation")
init_checks(pod, c, "DaemonSet")

dep = by_kind["Deployment"][0]
gpod = dep["spec"]["template"]["spec"]
gc = gpod["containers"][0]
gsc = gc.get("securityContext", {})
need(gc.get("command") == ["/usr/bin/meshflow-gateway"], "the Deployment runs meshflow-gateway")
need(gc.get("image") == c.get("image"), "the gateway runs the exporter's image")
need(dep["spec"].get("strategy", {}).get("rollingUpdate", {}).get("maxUnavailable") == 0,
     "the gateway is not replaced before its successor is ready (maxUnavailable 0)")
need(gpod.get("securityContext", {}).get("runAsNonRoot") is True, "the gateway runs as non-root")
need(gsc.get("capabilities", {}).get("drop") == ["ALL"] and not gsc["capabilities"].get("add"),
     "the gateway holds no capability")
need(gsc.get("readOnlyRootFilesystem") is True, "gateway readOnlyRootFilesystem")
need(gsc.get("allowPrivilegeEscalation") is False, "gateway allowPrivilegeEscalation false")
gcm = named("ConfigMap", "meshflow-gateway-config-")["metadata"]["name"]
need(any(v.get("configMap", {}).get("name") == gcm for v in gpod.get("volumes", [])),
     "the Deployment mounts the gateway's ConfigMap")
init_checks(gpod, gc, "Deployment")
gsvc = named("Service", "meshflow-gateway")["spec"]
need(gsvc.get("selector", {}).items() <= dep["spec"]["template"]["metadata"]["labels"].items(),
     "the gateway Service selects the gateway pods")
for p in problems:
    print("FAIL: " + p, file=sys.stderr)
if not problems:
    print("ok: security and scheduling settings")
sys.exit(1 if problems else 0)
PY
done

# prometheus-operator's PodMonitor and PrometheusRule, against the operator's CRD schemas, and
# the PrometheusRule generated from alerts/ up to date.
echo "=== prometheus-operator"
kubectl kustomize "$src/deploy/kubernetes/prometheus-operator" 2>"$work/kustomize.err" \
  >"$work/operator.yaml" || { cat "$work/kustomize.err" >&2; status=1; }
if [[ -s $work/kustomize.err ]]; then
  echo "FAIL: kubectl kustomize warns:" >&2
  cat "$work/kustomize.err" >&2
  status=1
fi
python3 "$here/validate_crds.py" "$here"/crds/*.yaml <"$work/operator.yaml" || status=1
python3 "$src/alerts/render.py" --check || status=1
exit $status
