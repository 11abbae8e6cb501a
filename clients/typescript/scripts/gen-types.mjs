#!/usr/bin/env node
// Generates src/generated/protocol.ts from the published JSON Schemas (docs/schemas/*.json,
// themselves generated from the Rust wire types), so the TypeScript types cannot drift from
// the server's.
//
//   node scripts/gen-types.mjs           write src/generated/protocol.ts
//   node scripts/gen-types.mjs --check   exit 1 if it is not what the schemas give
//
// Only the JSON Schema the Rust generator emits is understood; any other keyword stops the
// generator (a type must never silently become `unknown`).

import { readFileSync, writeFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { isDeepStrictEqual } from "node:util";

const here = dirname(fileURLToPath(import.meta.url));
const SCHEMAS = resolve(here, "../../../docs/schemas");
const OUT = resolve(here, "../src/generated/protocol.ts");

/** Schema files and the name of the type their root schema defines (null: definitions only). */
const FILES = [
  ["client-message.schema.json", "ClientMessage"],
  ["server-message.schema.json", "ServerMessage"],
  ["http.schema.json", null],
];

/** Keywords that only constrain or annotate values: no effect on the TypeScript type. */
const IGNORED = new Set(["format", "minimum", "maximum", "additionalProperties", "title", "$schema", "$id", "$defs", "default"]);
const KNOWN = new Set([...IGNORED, "$ref", "type", "properties", "required", "description", "enum", "const", "oneOf", "anyOf", "items"]);

export class SchemaError extends Error {}

function check(schema, at) {
  if (typeof schema === "boolean") return;
  if (typeof schema !== "object" || schema === null) throw new SchemaError(`${at}: not a schema`);
  for (const k of Object.keys(schema)) {
    if (!KNOWN.has(k)) throw new SchemaError(`${at}: unsupported keyword ${JSON.stringify(k)}`);
  }
}

function refName(ref, at) {
  const m = /^#\/\$defs\/([A-Za-z_][A-Za-z0-9_]*)$/.exec(ref);
  if (!m) throw new SchemaError(`${at}: unsupported $ref ${ref}`);
  return m[1];
}

const ident = (k) => (/^[A-Za-z_$][A-Za-z0-9_$]*$/.test(k) ? k : JSON.stringify(k));

function doc(text, indent) {
  if (!text) return "";
  const lines = text.replace(/\*\//g, "*\\/").split("\n");
  if (lines.length === 1) return `${indent}/** ${lines[0]} */\n`;
  return `${indent}/**\n${lines.map((l) => `${indent} * ${l}`.trimEnd()).join("\n")}\n${indent} */\n`;
}

function primitive(t, at) {
  switch (t) {
    case "string":
      return "string";
    case "integer":
    case "number":
      return "number";
    case "boolean":
      return "boolean";
    case "null":
      return "null";
    default:
      throw new SchemaError(`${at}: unsupported type ${JSON.stringify(t)}`);
  }
}

/** The TypeScript type of a schema, at nesting `indent`. */
export function tsType(schema, at, indent = "") {
  if (schema === true) return "unknown";
  if (schema === false) return "never";
  check(schema, at);
  if (schema.oneOf || schema.anyOf) {
    const branches = schema.oneOf ?? schema.anyOf;
    const branch = (ind) => branches.map((b, i) => tsType(b, `${at}/${schema.oneOf ? "oneOf" : "anyOf"}/${i}`, ind));
    const flat = branch(indent);
    if (flat.length <= 2 && !flat.some((p) => p.includes("\n"))) return flat.join(" | ");
    return branch(`${indent}  `).map((p) => `\n${indent}  | ${p}`).join("");
  }
  if (schema.const !== undefined) return JSON.stringify(schema.const);
  if (schema.enum) return schema.enum.map((v) => JSON.stringify(v)).join(" | ");
  const hasObject = schema.properties !== undefined || schema.type === "object";
  if (schema.$ref) {
    const name = refName(schema.$ref, at);
    // A tagged newtype variant: the tag's object beside the referenced type.
    return schema.properties ? `(${objectType(schema, at, indent)} & ${name})` : name;
  }
  if (hasObject) return objectType(schema, at, indent);
  if (schema.type === "array") return `${wrap(tsType(schema.items ?? true, `${at}/items`, indent))}[]`;
  if (Array.isArray(schema.type)) return schema.type.map((t) => (t === "array" ? `${wrap(tsType(schema.items ?? true, `${at}/items`, indent))}[]` : primitive(t, at))).join(" | ");
  if (schema.type) return primitive(schema.type, at);
  throw new SchemaError(`${at}: a schema without a type`);
}

const wrap = (t) => (/[|&\s]/.test(t) ? `(${t})` : t);

function objectType(schema, at, indent) {
  const props = schema.properties ?? {};
  const required = new Set(schema.required ?? []);
  for (const r of required) if (!(r in props)) throw new SchemaError(`${at}: required ${r} has no property`);
  const keys = Object.keys(props);
  if (keys.length === 0) return "Record<string, never>";
  // The `type` tag first, then the order of the Rust fields.
  keys.sort((a, b) => (a === "type" ? -1 : b === "type" ? 1 : 0));
  const inner = `${indent}  `;
  const lines = keys.map((k) => {
    const p = props[k];
    const opt = required.has(k) ? "" : "?";
    return `${doc(typeof p === "object" ? p.description : undefined, inner)}${inner}${ident(k)}${opt}: ${tsType(p, `${at}/properties/${k}`, inner)};`;
  });
  return `{\n${lines.join("\n")}\n${indent}}`;
}

function declaration(name, schema, at) {
  const body = tsType(schema, at);
  const d = doc(typeof schema === "object" ? schema.description : undefined, "");
  if (body.startsWith("{\n") && !schema.$ref) return `${d}export interface ${name} ${body}\n`;
  return `${d}export type ${name} =${body.startsWith("\n") ? "" : " "}${body};\n`;
}

/** The whole generated module for a list of (file name, root name, schema). */
export function generate(docs) {
  const defs = new Map();
  const roots = [];
  for (const [file, rootName, schema] of docs) {
    for (const [name, def] of Object.entries(schema.$defs ?? {})) {
      const seen = defs.get(name);
      if (seen && !isDeepStrictEqual(seen.def, def)) {
        throw new SchemaError(`${file}: $defs/${name} differs from the one in ${seen.file}`);
      }
      if (!seen) defs.set(name, { def, file });
    }
    if (rootName) roots.push([rootName, schema, file]);
  }
  let out =
    "// Generated by scripts/gen-types.mjs from docs/schemas/*.schema.json (themselves generated\n" +
    "// from crates/gavel-protocol). Do not edit: run `npm run gen` (or scripts/gen-contract.sh).\n" +
    "// Money is integer minor units; times are server UTC milliseconds.\n";
  for (const [name, schema, file] of roots) out += `\n${declaration(name, schema, `${file}#`)}`;
  for (const name of [...defs.keys()].sort()) {
    const { def, file } = defs.get(name);
    out += `\n${declaration(name, def, `${file}#/$defs/${name}`)}`;
  }
  out +=
    "\n/** The server message of one `type`. */\n" +
    'export type ServerMessageOf<T extends ServerMessage["type"]> = Extract<ServerMessage, { type: T }>;\n' +
    "\n/** The client message of one `type`. */\n" +
    'export type ClientMessageOf<T extends ClientMessage["type"]> = Extract<ClientMessage, { type: T }>;\n';
  return out;
}

function main() {
  const docs = FILES.map(([file, root]) => [file, root, JSON.parse(readFileSync(join(SCHEMAS, file), "utf8"))]);
  const text = generate(docs);
  if (process.argv.includes("--check")) {
    let current = "";
    try {
      current = readFileSync(OUT, "utf8");
    } catch {
      // missing: stale
    }
    if (current !== text) {
      console.error("clients/typescript/src/generated/protocol.ts is not what docs/schemas gives: run `npm run gen` in clients/typescript (or scripts/gen-contract.sh) and commit it");
      process.exit(1);
    }
    console.log("generated types are current");
    return;
  }
  writeFileSync(OUT, text);
  console.log(`wrote ${OUT}`);
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) main();
