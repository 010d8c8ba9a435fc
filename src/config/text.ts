/**
 * Configs as text: a value given as a string (a command-line flag, a quoted YAML scalar) typed by its row, what a
 * row's value looks like (`float in [0, 1)`, `{no|steps|epoch}`), and a row's entry in `--help`. Flags follow
 * TRL's parser: booleans as `--flag` alone or with true/false (also yes/no, 1/0); lists comma-separated or the
 * flag repeated; mappings as JSON or `k=v,k=v`; `null` unsets a key that may be unset (`none` too, for numbers,
 * booleans and mappings); a list of mappings as JSON.
 *
 * @module
 */
import { rangeText } from "./check.ts";
import type { Field, TrlAvailability } from "./field.ts";
import type { Voice } from "./voice.ts";

const BOOL_TRUE = ["true", "yes", "y", "t", "on", "1"];
const BOOL_FALSE = ["false", "no", "n", "f", "off", "0"];

/** A boolean's text (true/false, yes/no, y/n, t/f, on/off, 1/0, any case), or undefined. */
export const parseBool = (s: string): boolean | undefined =>
  BOOL_TRUE.includes(s.toLowerCase()) ? true : BOOL_FALSE.includes(s.toLowerCase()) ? false : undefined;

/** Kinds for which a bare `none` (besides `null`) unsets the key. */
const NONE_IS_NULL = new Set(["number", "int", "steps", "bool", "map", "mapList", "numberList"]);

const NUMBER_RE = /^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/;
const INT_RE = /^[+-]?\d+$/;

/** What a key's value looks like, for messages and `--help`. */
export function typeLabel(f: Pick<Field, "type">): string {
  const t = f.type;
  const range = rangeText(f);
  switch (t.kind) {
    case "number":
      return `float${range ? " " + range : ""}`;
    case "int":
      return `int${range ? " " + range : ""}`;
    case "steps":
      return "int ≥ 1 | fraction in (0, 1)";
    case "bool":
      return "bool";
    case "string":
      return "str";
    case "enum":
      return `{${t.values.join("|")}}`;
    case "numberList":
      return `list of float${range ? " " + range : ""}`;
    case "enumOrList":
      return `{${t.values.join("|")}} or a list`;
    case "enumList":
      return `list of {${t.values.join("|")}}`;
    case "stringList":
      return "list of str";
    case "map":
      return "mapping";
    case "mapList":
      return "list of mappings";
    case "boolOrPath":
      return "bool | path";
  }
}

function expected(f: Field): string {
  switch (f.type.kind) {
    case "number":
      return "a number";
    case "int":
      return "an integer";
    case "steps":
      return "a whole number of steps or a fraction in (0, 1)";
    case "bool":
      return "true or false";
    case "numberList":
      return "a comma-separated list of numbers";
    case "map":
      return 'a mapping: JSON ({"k": 1}) or k=v,k=v';
    case "mapList":
      return 'a JSON list of mappings ([{"k": 1}])';
    default:
      return typeLabel(f);
  }
}

/**
 * Types the string(s) given for one key (a flag's values, or a quoted YAML scalar) by its row's type; the value
 * is checked against the row later, with the others. `where` names the source in errors ("--beta",
 * "dpo.yaml: beta"); `true` is a flag given without a value.
 */
export function valueFromText(
  f: Field,
  raw: readonly (string | true)[],
  where: string,
  voice: Voice,
): unknown {
  const kind = f.type.kind;
  const isList = kind === "numberList" || kind === "enumOrList" || kind === "enumList" ||
    kind === "stringList";
  if (raw.length > 1 && !isList) voice.fail(`${where} is given ${raw.length} times; give it once`);
  const bad = (s: string | true): never =>
    voice.fail(`${where} expects ${expected(f)}${f.nullable ? " (or null)" : ""}; got '${s}'`);
  if (raw.length === 1 && typeof raw[0] === "string" && f.nullable) {
    const s = raw[0].toLowerCase();
    if (s === "null" || (s === "none" && NONE_IS_NULL.has(kind))) return null;
  }
  if (isList) {
    const items = raw.flatMap((s) => (s === true ? bad(s) : s.split(",").map((x) => x.trim()))).filter((x) =>
      x !== ""
    );
    if (items.length === 0) bad(raw.join(","));
    if (kind === "numberList") return items.map((x) => (NUMBER_RE.test(x) ? Number(x) : bad(x)));
    // a flag's names are always a list (as TRL's nargs="+"), so `--lora_target_modules q_proj` names a module
    if (kind === "enumList" || kind === "stringList") return items;
    return items.length === 1 && raw.length === 1 ? items[0] : items;
  }
  const s = raw[0];
  switch (kind) {
    case "bool":
      return s === true ? true : parseBool(s) ?? bad(s);
    case "boolOrPath":
      return s === true ? true : parseBool(s) ?? s;
    case "number":
    case "steps":
      return s !== true && NUMBER_RE.test(s.trim()) ? Number(s) : bad(s);
    case "int":
      return s !== true && INT_RE.test(s.trim()) ? Number(s) : bad(s);
    case "map":
      return s === true ? bad(s) : parseMap(s, bad);
    case "mapList":
      return s === true ? bad(s) : parseMapList(s, bad);
    default:
      return s === true ? bad(s) : s;
  }
}

function parseMap(s: string, bad: (s: string) => never): Record<string, unknown> {
  const text = s.trim();
  if (text.startsWith("{")) {
    try {
      const v = JSON.parse(text);
      if (v !== null && typeof v === "object" && !Array.isArray(v)) return v;
    } catch {
      // reported below
    }
    return bad(s);
  }
  const out: Record<string, unknown> = {};
  for (const part of text.split(",")) {
    const eq = part.indexOf("=");
    if (eq <= 0) bad(s);
    const k = part.slice(0, eq).trim();
    const raw = part.slice(eq + 1).trim();
    let v: unknown = raw;
    try {
      v = JSON.parse(raw);
    } catch {
      // a bare word stays a string
    }
    out[k] = v;
  }
  return out;
}

function parseMapList(s: string, bad: (s: string) => never): Record<string, unknown>[] {
  try {
    const v = JSON.parse(s.trim());
    if (Array.isArray(v) && v.every((x) => x !== null && typeof x === "object" && !Array.isArray(x))) {
      return v;
    }
  } catch {
    // reported below
  }
  return bad(s);
}

// ---- --help ----

function showNumber(x: number): string {
  return x !== 0 && Math.abs(x) < 1e-3 ? x.toExponential() : String(x);
}

function showDefault(f: Field): string {
  if (f.required) return "required";
  const v = f.default;
  if (v === null) return "unset";
  if (typeof v === "string") return v;
  if (typeof v === "number") return showNumber(v);
  return JSON.stringify(v);
}

/** The TRL releases that accept a key, in words ("TRL ≥ 0.9, < 0.29", "webdpo-only"); unset: from 0.9. */
export function trlText(trl: TrlAvailability | undefined): string {
  const t = trl === undefined ? { since: "0.9" } : trl;
  if (t === null) return "webdpo-only";
  return t.until ? `TRL ≥ ${t.since}, < ${t.until}` : `TRL ≥ ${t.since}`;
}

/** A key's two lines in `--help`: the flag with its type, default and TRL releases, then its documentation. */
export function helpEntry(f: Field): [string, string] {
  return [
    `  --${f.name} <${typeLabel(f)}>  (default: ${showDefault(f)}; ${trlText(f.trl)})`,
    `      ${f.doc}`,
  ];
}
