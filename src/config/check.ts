/**
 * One value against its row: the type's check (kind, range, list items, allowed values), saying what is allowed
 * in the config's voice, and returning the value as the config keeps it (lists and mappings copied; a single
 * `report_to` value as a list of one).
 *
 * @module
 */
import { nearestKey } from "../util/nearest.ts";
import type { Field, FieldType } from "./field.ts";
import type { Voice } from "./voice.ts";

/** The allowed range of a number field in words ("> 0", "in [0, 0.5)"), or "". */
export function rangeText(f: Pick<Field, "type">): string {
  const t = f.type;
  if (t.kind === "int" || t.kind === "numberList") return t.min !== undefined ? `≥ ${t.min}` : "";
  if (t.kind !== "number") return "";
  if (t.min !== undefined && t.max !== undefined) {
    return `in ${t.minOpen ? "(" : "["}${t.min}, ${t.max}${t.maxOpen ? ")" : "]"}`;
  }
  if (t.min !== undefined) return `${t.minOpen ? ">" : "≥"} ${t.min}`;
  if (t.max !== undefined) return `${t.maxOpen ? "<" : "≤"} ${t.max}`;
  return "";
}

function inRange(t: FieldType, x: number): boolean {
  if (t.kind === "int" || t.kind === "numberList") return t.min === undefined || x >= t.min;
  if (t.kind !== "number") return true;
  if (t.min !== undefined && (t.minOpen ? !(x > t.min) : !(x >= t.min))) return false;
  if (t.max !== undefined && (t.maxOpen ? !(x < t.max) : !(x <= t.max))) return false;
  return true;
}

/** Whether `v` is a plain object (a mapping of keys to values). */
export function isPlainObject(v: unknown): v is Record<string, unknown> {
  if (v === null || typeof v !== "object" || Array.isArray(v)) return false;
  const proto = Object.getPrototypeOf(v);
  return proto === Object.prototype || proto === null;
}

type Enum = Extract<FieldType, { values: readonly string[] }>;

function enumError(voice: Voice, name: string, v: unknown, t: Enum, what = "one of"): never {
  const near = typeof v === "string" ? nearestKey(v, t.values) : null;
  const alias = Object.entries(t.aliases ?? {}).map(([a, to]) => ` (${a} is another name for ${to})`).join(
    "",
  );
  return voice.fail(
    `${name} must be ${what} ${t.values.join(", ")}${alias}${voice.got}${voice.show(v)}` +
      (near ? ` (did you mean '${near}'?)` : ""),
  );
}

/**
 * Checks `v` against row `f` (named `name` in messages) and returns it as the config keeps it; throws the
 * voice's error saying what is allowed. A row's own `check` replaces the type's.
 */
export function checkValue(f: Field, v: unknown, name: string, voice: Voice): unknown {
  if (f.check) return f.check(v, name, voice);
  if (v === null) {
    if (f.nullable) return null;
    return voice.fail(
      `${name} cannot be null` + (f.default !== undefined ? ` (default ${voice.show(f.default)})` : ""),
    );
  }
  const t = f.type;
  const range = rangeText(f);
  const ranged = (s: string) => (range ? `${s} ${range}` : s);
  switch (t.kind) {
    case "number":
      if (typeof v !== "number" || !Number.isFinite(v)) voice.must(name, ranged(voice.number), voice.show(v));
      if (!inRange(t, v)) voice.must(name, range, `${v}`);
      return v;
    case "int":
      if (typeof v !== "number" || !Number.isSafeInteger(v)) {
        voice.must(name, ranged("an integer"), voice.show(v));
      }
      if (!inRange(t, v)) voice.must(name, `an integer ${range}`, `${v}`);
      return v;
    case "steps":
      if (typeof v !== "number" || !Number.isFinite(v) || v <= 0 || (v >= 1 && !Number.isInteger(v))) {
        voice.must(
          name,
          "a whole number of steps ≥ 1, or a fraction in (0, 1) of the run's steps",
          voice.show(v),
        );
      }
      return v;
    case "bool":
      if (typeof v !== "boolean") voice.must(name, "true or false", voice.show(v));
      return v;
    case "string":
      if (typeof v !== "string" || v === "") voice.must(name, "a non-empty string", voice.show(v));
      return v;
    case "enum":
      if (typeof v !== "string" || !t.values.includes(v)) enumError(voice, name, v, t);
      return v;
    case "numberList":
      if (!Array.isArray(v)) voice.must(name, "a list of numbers", voice.show(v));
      v.forEach((x, i) => {
        if (typeof x !== "number" || !Number.isFinite(x) || !inRange(t, x)) {
          voice.must(`${name}[${i}]`, ranged(voice.number), voice.show(x));
        }
      });
      return [...v];
    case "enumOrList":
      if (typeof v === "string") {
        if (!t.values.includes(v)) enumError(voice, name, v, t);
        return v;
      }
      if (!Array.isArray(v)) enumError(voice, name, v, t, "one (or a list) of");
      return enumItems(voice, name, v, t);
    case "enumList": {
      const list = typeof v === "string" ? [v] : v;
      if (!Array.isArray(list)) enumError(voice, name, v, t, "a list of");
      return enumItems(voice, name, list, t);
    }
    case "stringList":
      if (typeof v === "string") {
        if (v === "") voice.must(name, "a non-empty string or a list of them", voice.show(""));
        return v;
      }
      if (!Array.isArray(v) || v.length === 0) {
        voice.must(name, "a non-empty list of names (or one string)", voice.show(v));
      }
      v.forEach((x, i) => {
        if (typeof x !== "string" || x === "") {
          voice.must(`${name}[${i}]`, "a non-empty string", voice.show(x));
        }
      });
      return [...v];
    case "map":
      if (!isPlainObject(v)) voice.must(name, "a mapping of option names to values", voice.show(v));
      try {
        return structuredClone(v);
      } catch {
        return voice.fail(
          `${name} must hold plain data (numbers, strings, booleans, lists, mappings)`,
        );
      }
    case "mapList":
      if (!Array.isArray(v) || !v.every(isPlainObject)) {
        voice.must(name, "a list of mappings", voice.show(v));
      }
      try {
        return structuredClone(v);
      } catch {
        return voice.fail(`${name} must hold plain data (numbers, strings, booleans, lists, mappings)`);
      }
    case "boolOrPath":
      if (typeof v === "boolean") return v;
      if (typeof v === "string" && v !== "") return v;
      return voice.must(name, "true, false or a checkpoint folder", voice.show(v));
  }
}

function enumItems(voice: Voice, name: string, list: unknown[], t: Enum): string[] {
  if (list.length === 0) {
    voice.fail(`${name} is an empty list; give at least one of ${t.values.join(", ")}`);
  }
  list.forEach((x, i) => {
    if (typeof x !== "string" || !t.values.includes(x)) enumError(voice, `${name}[${i}]`, x, t);
  });
  return [...list] as string[];
}
