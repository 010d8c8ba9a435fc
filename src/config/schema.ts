/**
 * The config builder: a config's rows and voice make a `ConfigSchema`, which turns what a user gives into the
 * config's values — each key found in the spelling the config reads (camelCase, snake_case, or any spelling and
 * alias), unknown keys named with the nearest valid one, each value checked against its row, defaults for the
 * rest — then runs the config's own rules (cross-key checks, derived defaults, warnings), and converts values to
 * snake_case (TRL's names: checkpoints, YAML) and back. DPOConfig, SFTConfig and the LoRA config are built on it;
 * a new trainer's config is its rows, its rules and a class of a few lines.
 *
 * @module
 */
import { sink } from "../io/platform.ts";
import { nearestKey } from "../util/nearest.ts";
import { checkValue, isPlainObject } from "./check.ts";
import type { Field } from "./field.ts";
import type { Voice } from "./voice.ts";

export { isPlainObject };

/** How keys are spelt: the camelCase API, or the snake_case of YAML files, flags and checkpoints. */
export type NameStyle = "camel" | "snake";

/** What a config's rules see and use. */
export interface RuleContext {
  /** The values by camelCase name, checked one by one (a rule may fill in a derived default). */
  readonly v: Record<string, unknown>;
  /** A key as the messages name it (`snake` is its snake_case name). */
  n(snake: string): string;
  /** Throws the config's error. */
  fail(message: string): never;
  /** Adds a warning (a problem that does not stop a run). */
  warn(message: string): void;
  /** Whether the key was given. */
  given(snake: string): boolean;
  /** Whether the key was given with a value other than its default. */
  changed(snake: string): boolean;
  /** Warns that a changed key has no effect unless `cond`, `because` ... */
  unusedUnless(snake: string, cond: boolean, because: string): void;
}

/** A config's values, and the warnings its rules found. */
export interface Resolved {
  values: Record<string, unknown>;
  warnings: string[];
}

/** Whether two plain-data values are equal. */
export function sameValue(a: unknown, b: unknown): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}

/** Freezes a value and everything in it. */
export function deepFreeze<T>(v: T): T {
  if (v !== null && typeof v === "object") {
    for (const x of Object.values(v)) deepFreeze(x);
    Object.freeze(v);
  }
  return v;
}

/** One config: its rows (in documentation order) and the voice of its errors. */
export class ConfigSchema<F extends Field = Field> {
  readonly fields: readonly F[];
  readonly voice: Voice;
  readonly #byKey = new Map<string, F>();

  constructor(fields: readonly F[], voice: Voice) {
    this.fields = fields;
    this.voice = voice;
    for (const f of fields) {
      for (const k of new Set([f.name, f.camel, ...(f.aliases ?? [])])) {
        if (this.#byKey.has(k)) throw new Error(`ConfigSchema: two rows are spelt ${k}`);
        this.#byKey.set(k, f);
      }
    }
  }

  /** The row a key names: spelt in `style`, or (no style) in any spelling the config accepts. */
  field(key: string, style?: NameStyle): F | undefined {
    const f = this.#byKey.get(key);
    if (f === undefined || style === undefined) return f;
    return nameIn(f, style) === key ? f : undefined;
  }

  /** Every key spelt in `style`, or every accepted spelling. */
  keys(style?: NameStyle): string[] {
    return style === undefined ? [...this.#byKey.keys()] : this.fields.map((f) => nameIn(f, style));
  }

  /** The message for a key the config does not have, with the nearest key (spelt in `style`). */
  unknownKey(key: string, style?: NameStyle): string {
    return this.voice.unknownKey(key, nearestKey(key, this.keys(style)));
  }

  /**
   * The values of a config from `given` — keys spelt as `o.keys` says, or in any accepted spelling, each row once —
   * each given value checked against its row, defaults for the rest (a required row must be given), then
   * `o.rules`. Messages name keys in `o.style` (default: `o.keys`), or as they were given. Values given as
   * `undefined` count as not given.
   */
  resolve(
    given: Readonly<Record<string, unknown>>,
    o: { keys?: NameStyle; style?: NameStyle; rules?: (r: RuleContext) => void } = {},
  ): Resolved {
    const v: Voice = this.voice;
    const byRow = new Map<Field, [key: string, value: unknown]>();
    for (const [key, value] of Object.entries(given)) {
      if (value === undefined) continue;
      const f = this.field(key, o.keys);
      if (f === undefined) v.fail(this.unknownKey(key, o.keys));
      const prev = byRow.get(f);
      if (prev !== undefined) v.fail(`"${key}" and "${prev[0]}" set the same option`);
      byRow.set(f, [key, value]);
    }
    const style = o.style ?? o.keys;
    const name = (f: Field) => (style ? nameIn(f, style) : byRow.get(f)?.[0] ?? f.name);
    const values: Record<string, unknown> = {};
    for (const f of this.fields) {
      const g = byRow.get(f);
      if (g === undefined) {
        if (f.required) v.fail(`${name(f)} is required: ${f.doc}`);
        values[f.camel] = structuredClone(f.default);
      } else {
        values[f.camel] = f.byRules ? g[1] : checkValue(f, g[1], name(f), v);
      }
    }
    const warnings: string[] = [];
    if (o.rules) {
      const row = (snake: string) => {
        const f = this.field(snake, "snake");
        if (f === undefined) throw new Error(`a config rule names ${snake}, which is not a key`);
        return f;
      };
      const changed = (snake: string) => {
        const f = row(snake);
        return byRow.has(f) && !sameValue(values[f.camel], f.default);
      };
      const n = (snake: string) => name(row(snake));
      o.rules({
        v: values,
        n,
        fail: (m) => v.fail(m),
        warn: (m) => void warnings.push(m),
        given: (snake) => byRow.has(row(snake)),
        changed,
        unusedUnless: (snake, cond, because) => {
          if (changed(snake) && !cond) warnings.push(`${n(snake)} has no effect: ${because}`);
        },
      });
    }
    return { values, warnings };
  }

  /** The values of `config` under snake_case names, copied; `omitDefaults` leaves out those equal to the default. */
  toSnakeCase(config: object, o: { omitDefaults?: boolean } = {}): Record<string, unknown> {
    const out: Record<string, unknown> = {};
    for (const f of this.fields) {
      const x = (config as Record<string, unknown>)[f.camel];
      if (o.omitDefaults && sameValue(x, f.default)) continue;
      out[f.name] = structuredClone(x);
    }
    return out;
  }

  /** The values of `config` under camelCase names, copied. */
  toCamelCase(config: object): Record<string, unknown> {
    const out: Record<string, unknown> = {};
    for (const f of this.fields) out[f.camel] = structuredClone((config as Record<string, unknown>)[f.camel]);
    return out;
  }
}

function nameIn(f: Field, style: NameStyle): string {
  return style === "camel" ? f.camel : f.name;
}

const printed = new Set<string>();

/** Prints each warning to the platform's sink (the console) as `webdpo: <warning>`, each distinct one once. */
export function printWarningsOnce(warnings: readonly string[]): void {
  for (const w of warnings) {
    if (printed.has(w)) continue;
    printed.add(w);
    sink().warn(`webdpo: ${w}`);
  }
}

/** Forgets which warnings were printed (tests, or a new run in the same process). */
export function resetPrintedWarnings(): void {
  printed.clear();
}
