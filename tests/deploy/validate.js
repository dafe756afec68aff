#!/usr/bin/env node
// Offline validation of rendered Kubernetes manifests, for the deploy tests.
//
//   node validate.js FILE.yaml...
//
// Every YAML document of every file is checked twice:
//   1. against its schema with the npm kubernetes-models (and
//      @kubernetes-models/prometheus-operator) model: types, enums, required
//      fields. Those schemas allow any extra property, so a misspelled key
//      (`readOnlyRootFileSystem`) passes them;
//   2. field names, against the field lists the same packages ship as
//      TypeScript declarations (one interface per OpenAPI definition): every
//      key of the document must be a field of its type, recursively.
//
// Prints one JSON object: {"documents": [{"file", "index", "kind", "name"}],
// "errors": ["file #i Kind/name: message"]}; exits 1 when there are errors
// (or a document has no model), 2 on a usage error.
"use strict";

const fs = require("fs");
const path = require("path");
const YAML = require("yaml");

// ---- TypeScript declaration files as field lists ------------------------

// Tokens of a .d.ts file, comments dropped.
function tokenize(src) {
  const tokens = [];
  const re = /\s+|\/\*[\s\S]*?\*\/|\/\/[^\n]*|"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|[A-Za-z_$][\w$]*|-?\d+(?:\.\d+)?|=>|[{}()<>\[\]:;?|,=.&*]/y;
  let m;
  while (re.lastIndex < src.length) {
    const at = re.lastIndex;
    m = re.exec(src);
    if (!m) throw new Error(`cannot tokenize at ${at}: ${src.slice(at, at + 30)}`);
    const t = m[0];
    if (/^\s/.test(t) || t.startsWith("/*") || t.startsWith("//")) continue;
    tokens.push(t);
  }
  return tokens;
}

// Parses the declarations we need: interfaces, type aliases, imports and
// `export { A as B }` aliases. Types: {k: "obj", props, index} | {k: "arr",
// of} | {k: "ref", name} | {k: "union", of} | {k: "scalar"}.
function parseDts(src) {
  const tk = tokenize(src);
  let i = 0;
  const decls = {}; // local name -> type
  const imports = {}; // local name -> {module, name}
  const aliases = {}; // exported name -> local name
  const stars = []; // modules re-exported whole (export * from "...")
  const peek = () => tk[i];
  const next = () => tk[i++];
  const expect = (t) => {
    if (tk[i] !== t) throw new Error(`expected ${t}, got ${tk[i]} at token ${i}`);
    i++;
  };
  const unquote = (t) => (t[0] === '"' || t[0] === "'" ? JSON.parse(t[0] === "'" ? `"${t.slice(1, -1)}"` : t) : t);

  function skipBalanced(open, close) {
    let depth = 0;
    do {
      const t = next();
      if (t === open) depth++;
      else if (t === close) depth--;
    } while (depth > 0 && i < tk.length);
  }

  // Up to the next ";" outside brackets.
  function skipStatement() {
    let depth = 0;
    while (i < tk.length) {
      const t = tk[i];
      if (depth === 0 && t === ";") return;
      if (t === "(" || t === "{" || t === "[" || t === "<") depth++;
      else if (t === ")" || t === "}" || t === "]" || t === ">") depth--;
      i++;
    }
  }

  function parseType() {
    const alts = [];
    if (peek() === "|") next();
    alts.push(parsePostfix());
    while (peek() === "|") {
      next();
      alts.push(parsePostfix());
    }
    return alts.length === 1 ? alts[0] : { k: "union", of: alts };
  }
  function parsePostfix() {
    let t = parsePrimary();
    while (peek() === "[") {
      next();
      if (peek() === "]") {
        next();
        t = { k: "arr", of: t };
      } else {
        // Indexed access (T["x"]): only in class declarations, not checked.
        parseType();
        expect("]");
        t = { k: "scalar" };
      }
    }
    return t;
  }
  function parsePrimary() {
    const t = next();
    if (t === "{") return parseMembers();
    if (t === "(") {
      const inner = parseType();
      expect(")");
      return inner;
    }
    if (t[0] === '"' || t[0] === "'" || /^-?\d/.test(t)) return { k: "scalar" };
    if (/^[A-Za-z_$]/.test(t)) {
      let name = t;
      while (peek() === ".") {
        next();
        name += "." + next();
      }
      if (peek() === "<") {
        next();
        const args = [parseType()];
        while (peek() === ",") {
          next();
          args.push(parseType());
        }
        expect(">");
        if (name === "Array" || name === "ReadonlyArray") return { k: "arr", of: args[0] };
        if (name === "Record") return { k: "obj", props: {}, index: args[1] };
        return { k: "scalar" };
      }
      if (["string", "number", "boolean", "null", "undefined", "true", "false", "bigint"].includes(name))
        return { k: "scalar" };
      if (["any", "unknown", "object", "never"].includes(name)) return { k: "any" };
      return { k: "ref", name };
    }
    throw new Error(`unexpected token ${t}`);
  }
  // After "{": members up to the matching "}".
  function parseMembers() {
    const props = {};
    let index = null;
    while (peek() !== "}") {
      if (peek() === "[") {
        next();
        next(); // key name
        expect(":");
        parseType();
        expect("]");
        if (peek() === "?") next();
        expect(":");
        index = parseType();
      } else {
        if (peek() === "readonly") next();
        const name = unquote(next());
        if (peek() === "?") next();
        if (peek() === "(") {
          // a method: not data
          skipBalanced("(", ")");
          if (peek() === ":") {
            next();
            parseType();
          }
        } else {
          expect(":");
          props[name] = parseType();
        }
      }
      if (peek() === ";" || peek() === ",") next();
    }
    expect("}");
    return { k: "obj", props, index };
  }

  while (i < tk.length) {
    const t = next();
    if (t === "import") {
      if (peek() === "{") {
        next();
        while (peek() !== "}") {
          const name = next();
          let local = name;
          if (peek() === "as") {
            next();
            local = next();
          }
          imports[local] = { name };
          if (peek() === ",") next();
        }
        next();
        expect("from");
        const mod = unquote(next());
        for (const k of Object.keys(imports)) if (!imports[k].module) imports[k].module = mod;
      } else {
        while (i < tk.length && peek() !== ";") next();
      }
      if (peek() === ";") next();
    } else if (t === "interface") {
      const name = next();
      if (peek() === "<") skipBalanced("<", ">");
      let ext = [];
      if (peek() === "extends") {
        next();
        while (peek() !== "{") {
          const e = next();
          if (e !== ",") ext.push(e);
          if (peek() === "<") skipBalanced("<", ">");
        }
      }
      expect("{");
      const type = parseMembers();
      type.extends = ext;
      decls[name] = type;
    } else if (t === "type") {
      const name = next();
      if (peek() === "<") skipBalanced("<", ">");
      expect("=");
      const start = i;
      try {
        decls[name] = parseType();
      } catch (e) {
        // A type this parser does not read (a function type, a conditional
        // type): not a field list, so nothing to check against.
        i = start;
        skipStatement();
        decls[name] = { k: "any" };
      }
      if (peek() === ";") next();
    } else if (t === "function") {
      skipStatement();
    } else if (t === "class") {
      while (peek() !== "{") next();
      skipBalanced("{", "}");
    } else if (t === "export" && peek() === "*") {
      next();
      if (peek() === "as") {
        next();
        next();
      }
      expect("from");
      stars.push(unquote(next()));
    } else if (t === "export" && peek() === "{") {
      next();
      while (peek() !== "}") {
        const local = next();
        let exported = local;
        if (peek() === "as") {
          next();
          exported = next();
        }
        aliases[exported] = local;
        if (peek() === ",") next();
      }
      next();
      if (peek() === "from") {
        // export { A, B as C } from "./x": names of another file
        next();
        const mod = unquote(next());
        for (const [exported, local] of Object.entries(aliases))
          if (!decls[local] && !imports[exported]) imports[exported] = { name: local, module: mod };
      }
    }
  }
  return { decls, imports, aliases, stars };
}

const dtsCache = new Map();
function loadDts(file) {
  if (!dtsCache.has(file)) {
    const parsed = parseDts(fs.readFileSync(file, "utf8"));
    parsed.file = file;
    dtsCache.set(file, parsed);
  }
  return dtsCache.get(file);
}

// The file a bare module path names ("@scope/pkg/a/b" or "pkg/a/b"), found in
// the node_modules directories Node would search (the packages' "exports"
// maps hide their .d.ts files from require.resolve).
function packageFile(mod) {
  const parts = mod.split("/");
  const n = mod.startsWith("@") ? 2 : 1;
  const pkg = parts.slice(0, n).join("/");
  for (const dir of require.resolve.paths(pkg) || []) {
    const root = path.join(dir, pkg);
    if (fs.existsSync(path.join(root, "package.json"))) return path.join(root, ...parts.slice(n));
  }
  throw new Error(`package ${pkg} not found`);
}

function resolveModule(fromFile, mod) {
  const base = mod.startsWith(".") ? path.resolve(path.dirname(fromFile), mod) : packageFile(mod);
  const cands = [base + ".d.ts", path.join(base, "index.d.ts")];
  const pj = path.join(base, "package.json");
  if (fs.existsSync(pj)) {
    const types = JSON.parse(fs.readFileSync(pj, "utf8")).types;
    if (types) cands.push(path.join(base, types));
  }
  for (const cand of cands) if (fs.existsSync(cand)) return cand;
  throw new Error(`cannot resolve ${mod} from ${fromFile}`);
}

// The declaration a name stands for in a file: {dts, type}.
function lookup(dts, name) {
  if (dts.decls[name]) return { dts, type: dts.decls[name] };
  if (dts.aliases[name] && dts.decls[dts.aliases[name]]) return { dts, type: dts.decls[dts.aliases[name]] };
  const imp = dts.imports[name];
  if (imp) {
    const target = loadDts(resolveModule(dts.file, imp.module));
    return lookup(target, imp.name);
  }
  for (const mod of dts.stars) {
    try {
      return lookup(loadDts(resolveModule(dts.file, mod)), name);
    } catch (e) {
      // not in that one
    }
  }
  throw new Error(`type ${name} not found in ${dts.file}`);
}

// Reports every key of `value` that is not a field of `type`.
function checkFields(value, type, dts, where, errors) {
  if (value === null || value === undefined) return;
  switch (type.k) {
    case "ref": {
      const r = lookup(dts, type.name);
      return checkFields(value, r.type, r.dts, where, errors);
    }
    case "arr":
      if (Array.isArray(value)) value.forEach((v, n) => checkFields(v, type.of, dts, `${where}[${n}]`, errors));
      return;
    case "union": {
      const want = Array.isArray(value) ? "arr" : typeof value === "object" ? "obj" : null;
      if (!want) return;
      const alts = type.of.map((a) => (a.k === "ref" ? lookup(dts, a.name) : { dts, type: a }));
      const fitting = alts.filter((a) => a.type.k === want || a.type.k === "ref" || a.type.k === "union");
      if (fitting.length === 0) return;
      let best = null;
      for (const a of fitting) {
        const errs = [];
        checkFields(value, a.type, a.dts, where, errs);
        if (!best || errs.length < best.length) best = errs;
      }
      errors.push(...best);
      return;
    }
    case "obj": {
      if (typeof value !== "object" || Array.isArray(value)) return;
      const props = { ...type.props };
      for (const e of type.extends || []) Object.assign(props, lookup(dts, e).type.props);
      for (const [key, v] of Object.entries(value)) {
        if (Object.prototype.hasOwnProperty.call(props, key)) checkFields(v, props[key], dts, `${where}.${key}`, errors);
        else if (type.index) checkFields(v, type.index, dts, `${where}.${key}`, errors);
        else errors.push(`unknown field ${where}.${key}`);
      }
      return;
    }
    default:
      return;
  }
}

// ---- models --------------------------------------------------------------

function modelFor(apiVersion, kind) {
  const candidates = [
    [`kubernetes-models/${apiVersion}`, `kubernetes-models/${apiVersion}/${kind}`],
    [`@kubernetes-models/prometheus-operator/${apiVersion}`, `@kubernetes-models/prometheus-operator/${apiVersion}/${kind}`],
  ];
  for (const [pkg, file] of candidates) {
    let mod;
    try {
      mod = require(pkg);
    } catch (e) {
      continue;
    }
    if (mod[kind]) {
      const dtsFile = packageFile(file) + ".d.ts";
      return { Model: mod[kind], dtsFile };
    }
  }
  return null;
}

function describeValidation(err) {
  if (Array.isArray(err.errors) && err.errors.length) {
    return err.errors
      .map((e) => `${e.instancePath || "/"} ${e.message || e.keyword}${e.params ? " " + JSON.stringify(e.params) : ""}`)
      .join("; ");
  }
  return err.message;
}

function main(files) {
  if (files.length === 0) {
    process.stderr.write("usage: validate.js FILE.yaml...\n");
    process.exit(2);
  }
  const documents = [];
  const errors = [];
  for (const file of files) {
    const docs = YAML.parseAllDocuments(fs.readFileSync(file, "utf8"), { version: "1.1" });
    docs.forEach((d, index) => {
      const label0 = `${file} #${index}`;
      if (d.errors.length) {
        errors.push(`${label0}: YAML: ${d.errors.map((e) => e.message).join("; ")}`);
        return;
      }
      const obj = d.toJS();
      if (obj === null || obj === undefined) return; // empty document
      const label = `${label0} ${obj.kind}/${obj.metadata && obj.metadata.name}`;
      documents.push({ file, index, kind: obj.kind, apiVersion: obj.apiVersion, name: obj.metadata && obj.metadata.name });
      const found = modelFor(obj.apiVersion, obj.kind);
      if (!found) {
        errors.push(`${label}: no model for ${obj.apiVersion} ${obj.kind}`);
        return;
      }
      // kustomize wraps long base64 values over lines; the API server reads
      // them with Go's decoder, which skips newlines. The model's "byte"
      // format does not, so compare what the server decodes.
      const forModel = obj.kind === "Secret" && obj.data ? { ...obj, data: { ...obj.data } } : obj;
      if (forModel !== obj)
        for (const k of Object.keys(forModel.data))
          if (typeof forModel.data[k] === "string") forModel.data[k] = forModel.data[k].replace(/[\r\n]/g, "");
      try {
        new found.Model(forModel).validate();
      } catch (e) {
        errors.push(`${label}: schema: ${describeValidation(e)}`);
      }
      const dts = loadDts(found.dtsFile);
      const fieldErrors = [];
      checkFields(obj, { k: "ref", name: `I${obj.kind}` }, dts, obj.kind, fieldErrors);
      for (const e of fieldErrors) errors.push(`${label}: ${e}`);
    });
  }
  process.stdout.write(JSON.stringify({ documents, errors }, null, 2) + "\n");
  process.exit(errors.length ? 1 : 0);
}

main(process.argv.slice(2));
