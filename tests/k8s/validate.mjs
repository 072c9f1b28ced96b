// Validate Kubernetes manifests (YAML, several documents per file) against the Kubernetes API
// schemas compiled into the kubernetes-models package (types, required fields, enums, formats).
//   node tests/k8s/validate.mjs [--json OUT.json] FILE.yaml ...
// Prints "ok FILE KIND/NAME" per document, or "error FILE KIND/NAME: PATH message" lines, and
// exits 1 when any document is invalid, has an apiVersion/kind the package does not model, or
// a file does not parse. Install the packages first: npm ci --prefix tests/k8s
// --json OUT.json also writes what was read, {FILE: [document, ...]}, for the test to compare.
// Limit: the package's schemas do not reject unknown fields (no additionalProperties).
import { readFileSync, writeFileSync } from "node:fs";
import { parseAllDocuments } from "yaml";

let failed = 0;
let count = 0;
const args = process.argv.slice(2);
let jsonOut = null;
if (args[0] === "--json") {
  jsonOut = args[1];
  args.splice(0, 2);
}
const read = {};
for (const file of args) {
  const docs = parseAllDocuments(readFileSync(file, "utf8"));
  read[file] = [];
  for (const doc of docs) {
    if (doc.errors.length) {
      console.log(`error ${file}: YAML: ${doc.errors.map((e) => e.message).join("; ")}`);
      failed++;
      continue;
    }
    const obj = doc.toJS();
    if (obj === null || obj === undefined) continue;
    read[file].push(obj);
    const { apiVersion, kind } = obj;
    const name = `${kind}/${obj.metadata?.name}`;
    if (typeof apiVersion !== "string" || typeof kind !== "string") {
      console.log(`error ${file} ${name}: no apiVersion or kind`);
      failed++;
      continue;
    }
    // apps/v1 -> kubernetes-models/apps/v1/Kind.js; v1 -> kubernetes-models/v1/Kind.js
    let Model;
    try {
      Model = (await import(`kubernetes-models/${apiVersion}/${kind}`))[kind];
    } catch (e) {
      console.log(`error ${file} ${name}: ${apiVersion} ${kind} is not a Kubernetes model (${e.code || e.message})`);
      failed++;
      continue;
    }
    count++;
    try {
      new Model(obj).validate();
      console.log(`ok ${file} ${name}`);
    } catch (e) {
      const details = (e.errors || []).map((x) => `${x.instancePath || "/"} ${x.message}`).join("; ");
      console.log(`error ${file} ${name}: ${details || e.message}`);
      failed++;
    }
  }
}
if (jsonOut) writeFileSync(jsonOut, JSON.stringify(read));
console.log(`validated ${count} document(s), ${failed} problem(s)`);
process.exit(failed ? 1 : 0);
