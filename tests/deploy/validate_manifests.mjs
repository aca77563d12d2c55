// Validates rendered Kubernetes manifests (multi-document YAML on stdin, as `kubectl kustomize`
// prints them) against the Kubernetes API's OpenAPI schemas shipped in kubernetes-models,
// offline. Unknown fields are errors too: a misspelt securityContext key would otherwise be
// dropped by the API server without a word, leaving the pod with more privilege than written.
//   kubectl kustomize deploy/kubernetes/base | node validate_manifests.mjs
import { readFileSync } from "node:fs";
import * as k8s from "@kubernetes/client-node";
import { parseAllDocuments } from "yaml";

// apiVersion -> module path in kubernetes-models ("v1" is the core group).
function modulePath(apiVersion) {
  return `kubernetes-models/${apiVersion}`;
}

// The schemas in kubernetes-models check types and required fields but, like the API's
// OpenAPI document, allow unknown properties. The attribute maps of the official client
// (generated from the same OpenAPI document) list every field, so unknown ones are found here.
function unknownFields(value, type, path, out) {
  if (value === null || value === undefined) return;
  const array = /^Array<(.+)>$/.exec(type);
  if (array) {
    if (Array.isArray(value)) value.forEach((v, i) => unknownFields(v, array[1], `${path}[${i}]`, out));
    return;
  }
  const map = /^\{ \[key: string\]: (.+); \}$/.exec(type);
  if (map) {
    for (const [k, v] of Object.entries(value)) unknownFields(v, map[1], `${path}.${k}`, out);
    return;
  }
  const model = k8s[type];
  if (!model || typeof model.getAttributeTypeMap !== "function" || typeof value !== "object") return;
  const attributes = new Map(model.getAttributeTypeMap().map((a) => [a.baseName, a.type]));
  for (const [k, v] of Object.entries(value)) {
    if (!attributes.has(k)) {
      out.push(`${path}.${k}: unknown field (not in ${type})`);
      continue;
    }
    unknownFields(v, attributes.get(k), `${path}.${k}`, out);
  }
}

const text = readFileSync(0, "utf8");
const docs = parseAllDocuments(text);
let failures = 0;
let count = 0;
for (const doc of docs) {
  if (doc.errors.length) {
    console.error(`YAML error: ${doc.errors[0].message}`);
    failures++;
    continue;
  }
  const obj = doc.toJS();
  if (!obj) continue;
  count++;
  const what = `${obj.kind}/${obj.metadata?.name}`;
  let Model;
  try {
    const mod = await import(modulePath(obj.apiVersion));
    Model = mod[obj.kind];
  } catch (e) {
    console.error(`${what}: no schema for apiVersion ${obj.apiVersion}: ${e.message}`);
    failures++;
    continue;
  }
  if (!Model) {
    console.error(`${what}: unknown kind ${obj.kind} in ${obj.apiVersion}`);
    failures++;
    continue;
  }
  try {
    new Model(obj).validate();
  } catch (e) {
    console.error(`${what}: ${e.message}`);
    if (e.errors) console.error(JSON.stringify(e.errors, null, 2));
    failures++;
    continue;
  }
  const version = obj.apiVersion.split("/").pop();
  const type = version[0].toUpperCase() + version.slice(1) + obj.kind;
  if (!k8s[type]) {
    console.error(`${what}: no client model ${type} for the unknown-field check`);
    failures++;
    continue;
  }
  const unknown = [];
  unknownFields(obj, type, what, unknown);
  if (unknown.length) {
    unknown.forEach((u) => console.error(u));
    failures++;
    continue;
  }
  console.log(`ok: ${what} (${obj.apiVersion})`);
}
if (count === 0) {
  console.error("no manifests on stdin");
  process.exit(1);
}
console.log(`${count - failures} passed, ${failures} failed`);
process.exit(failures ? 1 : 0);
