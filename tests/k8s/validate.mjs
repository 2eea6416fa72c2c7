// validate.mjs - checks rendered Kubernetes manifests against the Kubernetes API schemas.
//
//   node tests/k8s/validate.mjs FILE.yaml...      (a file of "-" reads standard input)
//
// Role: the schema half of tests/integration/test_k8s_manifests.py (which renders deploy/k8s
// with `kubectl kustomize` and checks the deployment's own invariants on this script's
// output). Prints one JSON document on stdout:
//   {"objects": [{"file": F, "object": {...}}...],
//    "errors": [{"file": F, "index": N, "kind": K, "name": M, "error": "..."}...]}
// and exits 0 when "errors" is empty, 1 otherwise, 2 on a usage or YAML error.
//
// Design: every document is built as the model class of its apiVersion and kind from the npm
// package kubernetes-models (the Kubernetes OpenAPI schemas compiled to validators) and
// validated: types, required fields, enums, formats. Those validators accept fields they do
// not know, so a misspelt field (say `readinesProbe`) would pass; the unknown-field check
// below finds them by putting, in turn, a value no schema accepts in each field of the
// document: a field the schema knows gets an error at its path, an unknown one none.
// An apiVersion/kind without a model is an error, not a skip. Debian's kubectl 1.20 and newer
// ones render the same objects; both outputs are checked by the test.
import { readFileSync } from "node:fs";
import { parseAllDocuments } from "yaml";

const POISON = [[[Symbol.for("no schema accepts this")]]];

async function modelFor(apiVersion, kind) {
    const [group, version] = apiVersion.includes("/") ? apiVersion.split("/") : ["", apiVersion];
    const path = group === "" ? `kubernetes-models/${version}/${kind}` : `kubernetes-models/${group}/${version}/${kind}`;
    try {
        const mod = await import(path);
        return mod[kind] ?? null;
    } catch {
        return null;
    }
}

// The ajv errors of validating data with the model class (empty when valid).
function schemaErrors(Model, data) {
    try {
        new Model(data).validate();
        return [];
    } catch (e) {
        if (Array.isArray(e.errors)) return e.errors;
        return [{ instancePath: "", message: String(e.message ?? e) }];
    }
}

// Paths (JSON pointers) of the fields in root the schema does not know.
function unknownFields(Model, root) {
    const unknown = [];
    const walk = (node, path) => {
        if (Array.isArray(node)) {
            node.forEach((v, i) => walk(v, `${path}/${i}`));
            return;
        }
        if (node === null || typeof node !== "object") return;
        for (const key of Object.keys(node)) {
            const here = `${path}/${key.replace(/~/g, "~0").replace(/\//g, "~1")}`;
            const saved = node[key];
            node[key] = POISON;
            const hit = schemaErrors(Model, root).some(
                (e) => e.instancePath === here || e.instancePath.startsWith(here + "/"));
            node[key] = saved;
            if (!hit) {
                unknown.push(here);
                continue; // nothing under an unknown field is known either
            }
            walk(saved, here);
        }
    };
    walk(root, "");
    return unknown;
}

async function main(files) {
    if (files.length === 0) {
        process.stderr.write("usage: node validate.mjs FILE.yaml... (- for stdin)\n");
        return 2;
    }
    const out = { objects: [], errors: [] };
    for (const file of files) {
        const text = readFileSync(file === "-" ? 0 : file, "utf8");
        const docs = parseAllDocuments(text);
        for (const [index, doc] of docs.entries()) {
            if (doc.errors.length > 0) {
                process.stderr.write(`${file}: document ${index}: ${doc.errors[0].message}\n`);
                return 2;
            }
            const obj = doc.toJS();
            if (obj === null || obj === undefined) continue;
            out.objects.push({ file, object: obj });
            const where = { file, index, kind: obj.kind ?? "?", name: obj.metadata?.name ?? "?" };
            if (typeof obj.apiVersion !== "string" || typeof obj.kind !== "string") {
                out.errors.push({ ...where, error: "no apiVersion or kind" });
                continue;
            }
            const Model = await modelFor(obj.apiVersion, obj.kind);
            if (Model === null) {
                out.errors.push({ ...where, error: `no schema for ${obj.apiVersion} ${obj.kind}` });
                continue;
            }
            const copy = structuredClone(obj);
            // kustomize v5 wraps the base64 of Secret data at 70 columns; the API server's
            // decoder (Go's encoding/base64) skips the line breaks, the schema's "byte"
            // format does not.
            if (obj.apiVersion === "v1" && obj.kind === "Secret" && copy.data)
                for (const k of Object.keys(copy.data))
                    if (typeof copy.data[k] === "string") copy.data[k] = copy.data[k].replace(/[\r\n]/g, "");
            for (const e of schemaErrors(Model, copy))
                out.errors.push({ ...where, error: `${e.instancePath || "/"} ${e.message}` });
            for (const path of unknownFields(Model, copy))
                out.errors.push({ ...where, error: `${path}: unknown field` });
        }
    }
    process.stdout.write(JSON.stringify(out) + "\n");
    return out.errors.length === 0 ? 0 : 1;
}

process.exitCode = await main(process.argv.slice(2));
