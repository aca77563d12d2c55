#!/usr/bin/env python3
"""Checks deploy/prometheus/prometheus.yml with promtool.

Debian 12's Prometheus and promtool are built without Kubernetes service discovery, so
`promtool check config` refuses `kubernetes_sd_configs` as an unknown field. This check
therefore:
  1. checks the kubernetes_sd_configs blocks against the fields upstream Prometheus accepts;
  2. replaces each by a file_sd_configs that serves pods as the Kubernetes API would describe
     them (the __meta_kubernetes_* labels), and runs `promtool check config` on the result,
     with the alert rules beside it as deployed;
  3. runs `promtool check service-discovery` on that file to see the relabelling at work:
     only the exporter's metrics port of running pods, `node` from the pod's node name.

usage: check_prometheus_config.py PROMETHEUS_YML ALERTS_DIR
"""
import glob
import json
import os
import shutil
import subprocess
import sys
import tempfile

import yaml

# Upstream's kubernetes_sd_config fields (Prometheus 2.x documentation).
K8S_SD_FIELDS = {"api_server", "role", "kubeconfig_file", "namespaces", "selectors",
                 "attach_metadata", "basic_auth", "authorization", "oauth2", "proxy_url",
                 "follow_redirects", "enable_http2", "tls_config", "no_proxy",
                 "proxy_from_environment", "proxy_connect_header"}
K8S_ROLES = {"node", "service", "pod", "endpoints", "endpointslice", "ingress"}

# Pods as the Kubernetes API describes them to Prometheus.
PODS = [
    {"targets": ["100.64.0.3:9474"], "labels": {
        "__meta_kubernetes_pod_container_port_name": "metrics",
        "__meta_kubernetes_pod_phase": "Running",
        "__meta_kubernetes_pod_node_name": "acer-agent"}},
    {"targets": ["100.64.0.4:9474"], "labels": {
        "__meta_kubernetes_pod_container_port_name": "metrics",
        "__meta_kubernetes_pod_phase": "Running",
        "__meta_kubernetes_pod_node_name": "laptop-agent",
        "__meta_kubernetes_node_label_meshflow_io_on_demand": "true"}},
    # The same pod's other port, a pod still starting: neither is scraped.
    {"targets": ["100.64.0.3:9999"], "labels": {
        "__meta_kubernetes_pod_container_port_name": "other",
        "__meta_kubernetes_pod_phase": "Running",
        "__meta_kubernetes_pod_node_name": "acer-agent"}},
    {"targets": ["100.64.0.5:9474"], "labels": {
        "__meta_kubernetes_pod_container_port_name": "metrics",
        "__meta_kubernetes_pod_phase": "Pending",
        "__meta_kubernetes_pod_node_name": "gce-agent-tw"}},
]
EXPECTED = {
    "acer-agent": {"node": "acer-agent", "instance": "acer-agent"},
    "laptop-agent": {"node": "laptop-agent", "instance": "laptop-agent", "on_demand": "true"},
}


def fail(message):
    print("FAIL: " + message, file=sys.stderr)
    sys.exit(1)


def main():
    source, alerts = sys.argv[1], sys.argv[2]
    with open(source) as f:
        config = yaml.safe_load(f)
    if config["global"].get("scrape_interval") != "5s":
        fail("global scrape_interval is not 5s")
    work = tempfile.mkdtemp()
    try:
        os.mkdir(os.path.join(work, "alerts"))
        for rules in glob.glob(os.path.join(alerts, "*_rules.yml")):
            shutil.copy(rules, os.path.join(work, "alerts"))
        pods = os.path.join(work, "pods.json")
        with open(pods, "w") as f:
            json.dump(PODS, f)
        k8s_jobs = []
        for job in config["scrape_configs"]:
            for sd in job.pop("kubernetes_sd_configs", []) or []:
                unknown = set(sd) - K8S_SD_FIELDS
                if unknown:
                    fail(f"job {job['job_name']}: unknown kubernetes_sd_configs fields {unknown}")
                if sd.get("role") not in K8S_ROLES:
                    fail(f"job {job['job_name']}: role {sd.get('role')!r}")
                for sel in sd.get("selectors", []):
                    if sel.get("role") not in K8S_ROLES or set(sel) - {"role", "label", "field"}:
                        fail(f"job {job['job_name']}: bad selector {sel}")
                job.setdefault("file_sd_configs", []).append({"files": [pods]})
                k8s_jobs.append(job["job_name"])
        if k8s_jobs != ["meshflow"]:
            fail(f"expected Kubernetes discovery in job meshflow only, got {k8s_jobs}")
        transformed = os.path.join(work, "prometheus.yml")
        with open(transformed, "w") as f:
            yaml.safe_dump(config, f)

        result = subprocess.run(["promtool", "check", "config", transformed],
                                capture_output=True, text=True)
        print(result.stdout + result.stderr)
        if result.returncode != 0:
            fail("promtool check config")
        rule_files = len(glob.glob(os.path.join(work, "alerts", "*_rules.yml")))
        if rule_files == 0 or result.stdout.count("SUCCESS:") < 1 + rule_files:
            fail("promtool did not check the rule files")

        result = subprocess.run(["promtool", "check", "service-discovery", "--timeout=5s", transformed,
                                 "meshflow"], capture_output=True, text=True, timeout=60)
        if result.returncode != 0:
            fail("promtool check service-discovery: " + result.stderr)
        targets = {}
        for t in json.loads(result.stdout):
            if t["labels"]:
                targets[t["labels"]["node"]] = {
                    k: v for k, v in t["labels"].items() if not k.startswith("__") and k != "job"}
        if targets != EXPECTED:
            fail(f"relabelled targets {targets}, expected {EXPECTED}")
        print("ok: the meshflow job keeps running pods' metrics ports and labels them with "
              "node, instance and on_demand:", json.dumps(targets, sort_keys=True))
        print("check_prometheus_config: ok")
    finally:
        shutil.rmtree(work)


if __name__ == "__main__":
    main()
