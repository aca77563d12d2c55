#!/usr/bin/env python3
"""Validates custom resources (multi-document YAML on stdin) offline against the
openAPIV3Schema of the CustomResourceDefinitions given as arguments, as the API server would,
and also flags fields the schema does not know: the API server prunes those without a word.

    kubectl kustomize deploy/kubernetes/prometheus-operator | validate_crds.py CRD.yaml...

The CRDs in tests/deploy/crds are prometheus-operator's own (see the README there).
"""

import sys

import jsonschema
import yaml


def unknown_fields(value, schema, path, out):
    if not isinstance(schema, dict):
        return
    if isinstance(value, dict):
        props = schema.get("properties")
        if props is not None and not schema.get("x-kubernetes-preserve-unknown-fields"):
            for k, v in value.items():
                if k not in props:
                    out.append(f"{path}.{k}: unknown field")
                else:
                    unknown_fields(v, props[k], f"{path}.{k}", out)
        elif isinstance(schema.get("additionalProperties"), dict):
            for k, v in value.items():
                unknown_fields(v, schema["additionalProperties"], f"{path}.{k}", out)
    elif isinstance(value, list) and isinstance(schema.get("items"), dict):
        for i, v in enumerate(value):
            unknown_fields(v, schema["items"], f"{path}[{i}]", out)


def main():
    schemas = {}
    for path in sys.argv[1:]:
        crd = yaml.safe_load(open(path, encoding="utf-8"))
        group = crd["spec"]["group"]
        kind = crd["spec"]["names"]["kind"]
        for v in crd["spec"]["versions"]:
            schemas[(f"{group}/{v['name']}", kind)] = v["schema"]["openAPIV3Schema"]
    failures = 0
    count = 0
    for doc in yaml.safe_load_all(sys.stdin):
        if not doc:
            continue
        count += 1
        what = f"{doc.get('kind')}/{doc.get('metadata', {}).get('name')}"
        schema = schemas.get((doc.get("apiVersion"), doc.get("kind")))
        if schema is None:
            print(f"{what}: no CRD for {doc.get('apiVersion')} {doc.get('kind')}", file=sys.stderr)
            failures += 1
            continue
        errors = [f"{'.'.join(map(str, e.absolute_path)) or '(root)'}: {e.message}"
                  for e in jsonschema.Draft4Validator(schema).iter_errors(doc)]
        spec_schema = schema["properties"]["spec"]
        unknown_fields(doc.get("spec"), spec_schema, "spec", errors)
        for e in errors:
            print(f"{what}: {e}", file=sys.stderr)
        failures += bool(errors)
    if count == 0:
        print("no documents", file=sys.stderr)
        return 1
    if not failures:
        print(f"ok: {count} custom resources match their CRD schemas")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
