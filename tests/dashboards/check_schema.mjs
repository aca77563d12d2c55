// Validates Grafana dashboard JSON against the types Grafana publishes in @grafana/schema.
//
// The package ships TypeScript declarations only, so the JSON schemas are derived from them
// here (ts-json-schema-generator), with additional properties forbidden: a misspelt option is
// an error, as it would be silently ignored by Grafana. Checked: the dashboard model, and for
// each panel its plugin's Options and FieldConfig (the `options` and
// `fieldConfig.defaults.custom` objects).
//
// Usage: node check_schema.mjs DASHBOARD.json...   (or a directory holding them)
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import Ajv from 'ajv';
import { createGenerator } from 'ts-json-schema-generator';

const require = createRequire(import.meta.url);
const schemaRoot = join(dirname(require.resolve('@grafana/schema/package.json')), 'dist/types/raw');

// Panel plugin id -> folder of its generated types.
const panelTypes = {
  timeseries: 'timeseries',
  table: 'table',
  heatmap: 'heatmap',
  stat: 'stat',
  bargauge: 'bargauge',
  nodeGraph: 'nodegraph',
};

const ajv = new Ajv({ allErrors: true, strict: false });
const validators = new Map();

function validator(file, type) {
  const key = `${file}#${type}`;
  if (!validators.has(key)) {
    const generator = createGenerator({
      path: join(schemaRoot, file),
      type,
      skipTypeCheck: true,
      expose: 'all',
      additionalProperties: false,
    });
    validators.set(key, ajv.compile(generator.createSchema(type)));
  }
  return validators.get(key);
}

function hasType(file, type) {
  const text = readFileSync(join(schemaRoot, file), 'utf8');
  return new RegExp(`export (interface|type) ${type}\\b`).test(text);
}

function report(errors, where, validate) {
  for (const e of validate.errors ?? []) {
    const extra = e.params?.additionalProperty ? ` (${e.params.additionalProperty})` : '';
    errors.push(`${where}${e.instancePath}: ${e.message}${extra}`);
  }
}

function checkDashboard(path) {
  const errors = [];
  const json = JSON.parse(readFileSync(path, 'utf8'));
  // __inputs and __requires belong to Grafana's export/import wrapper, not to the model.
  const { __inputs, __requires, ...model } = json;
  if (!Array.isArray(__inputs) || __inputs.length === 0) errors.push(`${path}: no __inputs`);
  if (!Array.isArray(__requires)) errors.push(`${path}: no __requires`);

  const dashboard = validator('dashboard/x/types.gen.d.ts', 'Dashboard');
  if (!dashboard(model)) report(errors, path, dashboard);

  const panels = [];
  for (const p of model.panels ?? []) {
    panels.push(p);
    if (p.type === 'row') panels.push(...(p.panels ?? []));
  }
  for (const panel of panels) {
    if (panel.type === 'row') continue;
    const where = `${path}: panel ${panel.id} "${panel.title}" (${panel.type})`;
    const folder = panelTypes[panel.type];
    if (!folder) {
      errors.push(`${where}: no schema known for this panel type`);
      continue;
    }
    const file = `composable/${folder}/panelcfg/x/types.gen.d.ts`;
    const options = validator(file, 'Options');
    if (!options(panel.options ?? {})) report(errors, `${where} options`, options);
    if (hasType(file, 'FieldConfig')) {
      const custom = validator(file, 'FieldConfig');
      const value = panel.fieldConfig?.defaults?.custom ?? {};
      if (!custom(value)) report(errors, `${where} fieldConfig.defaults.custom`, custom);
    }
  }
  return { errors, panels: panels.length };
}

const files = process.argv.slice(2).flatMap((arg) =>
  statSync(arg).isDirectory()
    ? readdirSync(arg).filter((f) => f.endsWith('.json')).sort().map((f) => join(arg, f))
    : [arg]);
if (files.length === 0) {
  console.error('check_schema: no dashboards given');
  process.exit(2);
}
let failed = 0;
for (const file of files) {
  const { errors, panels } = checkDashboard(file);
  for (const e of errors) console.error(`check_schema: ${e}`);
  if (errors.length) failed++;
  else console.log(`check_schema: ${file}: dashboard and ${panels} panels valid`);
}
process.exit(failed ? 1 : 0);
