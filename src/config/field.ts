/**
 * The row kind of every config webdpo has (the training arguments, DPO, SFT and LoRA): one key with its snake_case
 * name, the type of its value, its default, one line of documentation and, for the keys of `webdpo train`, the TRL
 * releases that know it. A config is a list of rows: schema.ts validates, converts and prints configs from them,
 * and the rows' types give each config's TypeScript type (`ConfigValues`, `ConfigInit`). A config of the
 * published API writes its value type out (JSR needs explicit types) and `SameType` checks it against the rows.
 *
 * Rows are written with the helpers below, one to three lines each:
 *
 *   float("beta", 0.1, { gt: 0 }).doc("β > 0: strength of the pull towards the reference"),
 *   int("data_seed", null, { min: 0 }).doc("seed of the data order; unset: seed"),
 *   str("output_dir", REQUIRED).doc("folder for checkpoints ..."),
 *
 * A default of `null` makes the key nullable (null: unset); `REQUIRED` makes it required (no default). Options
 * carry the range, the TRL releases, other accepted spellings (`aliases`) and, for values no type below
 * describes, the row's own `check`.
 *
 * @module
 */
import type { Voice } from "./voice.ts";

/** The type of a key's value. */
export type FieldType =
  /** A finite number, optionally bounded (`min`/`max` inclusive unless `minOpen`/`maxOpen`). */
  | {
    readonly kind: "number";
    readonly min?: number;
    readonly max?: number;
    readonly minOpen?: boolean;
    readonly maxOpen?: boolean;
  }
  /** An integer ≥ `min` (when given). */
  | { readonly kind: "int"; readonly min?: number }
  | { readonly kind: "bool" }
  /** A non-empty string. */
  | { readonly kind: "string" }
  | EnumType<"enum">
  /** A list of finite numbers ≥ `min` (when given). */
  | { readonly kind: "numberList"; readonly min?: number }
  /** One value of `values`, or a list of them (kept as given). */
  | EnumType<"enumOrList">
  /** A list of `values` (a single value is read as a list of one). */
  | EnumType<"enumList">
  /**
   * Names: a list of non-empty strings, or one string kept as it is (LoRA's target_modules: one string is a regex
   * or "all-linear", as PEFT reads it).
   */
  | { readonly kind: "stringList" }
  /** A JSON object whose keys are passed through unchanged (snake_case). */
  | { readonly kind: "map" }
  /** A list of JSON objects, keys passed through unchanged (TRL's `datasets` entries); the row checks the items. */
  | { readonly kind: "mapList" }
  /** An interval in optimizer steps: an integer ≥ 1, or a number in (0, 1) meaning that fraction of the run's steps. */
  | { readonly kind: "steps" }
  /** `true` (the latest checkpoint in output_dir), `false`, or a checkpoint folder. */
  | { readonly kind: "boolOrPath" };

/** One of `values` (or a list of them); `aliases` are values that name another one (said in messages). */
interface EnumType<K extends string> {
  readonly kind: K;
  readonly values: readonly string[];
  readonly aliases?: Readonly<Record<string, string>>;
}

/**
 * The TRL releases whose `trl dpo --config` accepts the key: from `since` on, and before `until` when TRL removed it.
 * null: webdpo-only (remove it from a YAML before running it under TRL).
 */
export type TrlAvailability = { readonly since: string; readonly until?: string } | null;

/** One key of a config. `V` is the TypeScript type of its value (type-level only). */
export interface Field<N extends string = string, V = unknown> {
  /** The snake_case (TRL, PEFT, YAML, CLI) name. */
  readonly name: N;
  /** The camelCase name of the TypeScript API (`snakeToCamel(name)`). */
  readonly camel: string;
  /** What the value looks like. */
  readonly type: FieldType;
  /** Whether null (unset) is allowed. */
  readonly nullable: boolean;
  /** The default (a snake_case value); `undefined` only for required keys. */
  readonly default: unknown;
  /** The key must be given (it has no default). */
  readonly required?: boolean;
  /** One line of documentation. */
  readonly doc: string;
  /** The TRL releases that accept the key (null: webdpo-only); unset: every release from 0.9 on. */
  readonly trl?: TrlAvailability;
  /** Other spellings of the key that a config accepts (LoRA: `lora_r` and `loraR` for `r`). */
  readonly aliases?: readonly string[];
  /** The row's own check instead of its type's (a value no FieldType describes): the value as kept, or throws. */
  readonly check?: (value: unknown, name: string, voice: Voice) => unknown;
  /** The config's rules check the value (their message depends on other keys); it is kept as given. */
  readonly byRules?: boolean;
  /** Type-level only: the TypeScript type of the value. */
  readonly __value?: V;
}

/** The default of a key that must be given. */
export const REQUIRED: unique symbol = Symbol("required");

/** What a row's key may default to: a value, null (unset) or REQUIRED. */
type Default<T> = T | null | typeof REQUIRED;
/** The value type of a row whose default is `D`. */
type ValueWith<T, D> = D extends null ? T | null : T;
/** A row made by a helper, waiting for its documentation. */
interface Draft<N extends string, V, D> {
  doc(text: string): Field<N, V> & (D extends typeof REQUIRED ? { readonly required: true } : unknown);
}

/** Options every helper takes. */
export interface RowOptions {
  /** TRL releases that accept the key: "0.10" (from), ["0.9", "0.29"] (from, before), null (webdpo-only). */
  trl?: string | readonly [string, string] | null;
  aliases?: readonly string[];
  check?: Field["check"];
  byRules?: boolean;
}

/** A number's bounds: `min`/`max` inclusive, `gt`/`lt` exclusive. */
export interface Range {
  min?: number;
  max?: number;
  gt?: number;
  lt?: number;
}

function draft<N extends string, V, D>(
  name: N,
  type: FieldType,
  def: unknown,
  o: RowOptions,
): Draft<N, V, D> {
  const row: Record<string, unknown> = { name, camel: snakeToCamel(name), type, nullable: def === null };
  if (def === REQUIRED) row.required = true;
  row.default = def === REQUIRED ? undefined : def;
  if (o.trl !== undefined) {
    row.trl = o.trl === null
      ? null
      : typeof o.trl === "string"
      ? { since: o.trl }
      : { since: o.trl[0], until: o.trl[1] };
  }
  if (o.aliases) row.aliases = o.aliases;
  if (o.check) row.check = o.check;
  if (o.byRules) row.byRules = true;
  return { doc: (text) => Object.freeze({ ...row, doc: text }) as never };
}

function numberType(r: Range): FieldType {
  const t: Record<string, unknown> = { kind: "number" };
  if (r.gt !== undefined) [t.min, t.minOpen] = [r.gt, true];
  else if (r.min !== undefined) t.min = r.min;
  if (r.lt !== undefined) [t.max, t.maxOpen] = [r.lt, true];
  else if (r.max !== undefined) t.max = r.max;
  return t as FieldType;
}

const withMin = <K extends string>(kind: K, min: number | undefined) =>
  (min === undefined ? { kind } : { kind, min }) as FieldType;

/** A finite number in `range`. */
export function float<const N extends string, D extends Default<number>>(
  name: N,
  def: D,
  o: Range & RowOptions = {},
): Draft<N, ValueWith<number, D>, D> {
  return draft(name, numberType(o), def, o);
}

/** An integer ≥ `min`. */
export function int<const N extends string, D extends Default<number>>(
  name: N,
  def: D,
  o: { min?: number } & RowOptions = {},
): Draft<N, ValueWith<number, D>, D> {
  return draft(name, withMin("int", o.min), def, o);
}

/** An interval in optimizer steps (≥ 1), or a fraction in (0, 1) of the run. */
export function steps<const N extends string, D extends Default<number>>(
  name: N,
  def: D,
  o: RowOptions = {},
): Draft<N, ValueWith<number, D>, D> {
  return draft(name, { kind: "steps" }, def, o);
}

export function bool<const N extends string, D extends Default<boolean>>(
  name: N,
  def: D,
  o: RowOptions = {},
): Draft<N, ValueWith<boolean, D>, D> {
  return draft(name, { kind: "bool" }, def, o);
}

/** A non-empty string. */
export function str<const N extends string, D extends Default<string>>(
  name: N,
  def: D,
  o: RowOptions = {},
): Draft<N, ValueWith<string, D>, D> {
  return draft(name, { kind: "string" }, def, o);
}

/** One of `values` (`valueAliases`: values that name another, said in messages). */
export function oneOf<
  const N extends string,
  const V extends readonly string[],
  D extends Default<V[number]>,
>(
  name: N,
  values: V,
  def: D,
  o: RowOptions & { valueAliases?: Readonly<Record<string, string>> } = {},
): Draft<N, ValueWith<V[number], D>, D> {
  return draft(name, enumType("enum", values, o.valueAliases), def, o);
}

/** One of `values` or a list of them. */
export function oneOrList<
  const N extends string,
  const V extends readonly string[],
  D extends Default<V[number] | readonly V[number][]>,
>(
  name: N,
  values: V,
  def: D,
  o: RowOptions & { valueAliases?: Readonly<Record<string, string>> } = {},
): Draft<N, ValueWith<V[number] | readonly V[number][], D>, D> {
  return draft(name, enumType("enumOrList", values, o.valueAliases), def, o);
}

/** A list of `values` (one value is read as a list of one). */
export function listOf<
  const N extends string,
  const V extends readonly string[],
  D extends Default<readonly V[number][]>,
>(name: N, values: V, def: D, o: RowOptions = {}): Draft<N, ValueWith<readonly V[number][], D>, D> {
  return draft(name, enumType("enumList", values, undefined), def, o);
}

/** A list of finite numbers ≥ `min`. */
export function floats<const N extends string, D extends Default<readonly number[]>>(
  name: N,
  def: D,
  o: { min?: number } & RowOptions = {},
): Draft<N, ValueWith<readonly number[], D>, D> {
  return draft(name, withMin("numberList", o.min), def, o);
}

/** Names: a list of non-empty strings, or one string kept as it is. */
export function names<const N extends string, D extends Default<string | readonly string[]>>(
  name: N,
  def: D,
  o: RowOptions = {},
): Draft<N, ValueWith<string | readonly string[], D>, D> {
  return draft(name, { kind: "stringList" }, def, o);
}

/** A mapping of option names to values (plain data, keys kept as given). */
export function map<const N extends string, D extends Default<Readonly<Record<string, unknown>>>>(
  name: N,
  def: D,
  o: RowOptions = {},
): Draft<N, ValueWith<Readonly<Record<string, unknown>>, D>, D> {
  return draft(name, { kind: "map" }, def, o);
}

/** A list of mappings (plain data, keys kept as given); `check` says what an item may hold. */
export function mapList<const N extends string, V extends object, D extends Default<readonly V[]>>(
  name: N,
  def: D,
  o: RowOptions = {},
): Draft<N, ValueWith<readonly V[], D>, D> {
  return draft(name, { kind: "mapList" }, def, o);
}

/** true, false or a path (resume_from_checkpoint). */
export function boolOrPath<const N extends string, D extends Default<boolean | string>>(
  name: N,
  def: D,
  o: RowOptions = {},
): Draft<N, ValueWith<boolean | string, D>, D> {
  return draft(name, { kind: "boolOrPath" }, def, o);
}

function enumType(
  kind: "enum" | "enumOrList" | "enumList",
  values: readonly string[],
  aliases: Readonly<Record<string, string>> | undefined,
): FieldType {
  return aliases ? { kind, values, aliases } : { kind, values };
}

// ---- shared rows in other configs ----

/** The rows of `R` with the defaults of `C` (a default other than null makes a nullable row's value non-null). */
type Redefaulted<R, C> = R extends Field<infer N, infer V>
  ? N extends keyof C ? Field<N, C[N] extends null ? V : NonNullable<V>> : R
  : never;

/**
 * `rows` with other defaults for some of them (by snake_case name): a config's own defaults for shared rows. A row
 * that was required gets a default and is no longer required.
 */
export function withDefaults<R extends Field, const C extends { readonly [K in R["name"]]?: unknown }>(
  rows: readonly R[],
  defaults: C,
): Redefaulted<R, C>[] {
  checkNames(rows, defaults);
  return rows.map((f) => {
    if (!(f.name in defaults)) return f;
    const { required: _, ...rest } = f;
    const def = (defaults as Record<string, unknown>)[f.name];
    return Object.freeze({ ...rest, default: def, nullable: def === null });
  }) as never;
}

/** `rows` with other documentation for some of them (by snake_case name): a config's own wording. */
export function withDocs<R extends Field>(
  rows: readonly R[],
  docs: { readonly [K in R["name"]]?: string },
): R[] {
  checkNames(rows, docs);
  return rows.map((f) => {
    const doc = (docs as Record<string, string | undefined>)[f.name];
    return doc === undefined ? f : Object.freeze({ ...f, doc });
  });
}

function checkNames(rows: readonly Field[], changes: object): void {
  for (const k of Object.keys(changes)) {
    if (!rows.some((f) => f.name === k)) throw new Error(`no row is named ${k}`);
  }
}

// ---- names ----

/** camelCase of a snake_case name: `per_device_train_batch_size` → `perDeviceTrainBatchSize`. */
export function snakeToCamel(name: string): string {
  return name.replace(/_([a-z0-9])/g, (_, c: string) => c.toUpperCase());
}

/** snake_case of a camelCase name: `perDeviceTrainBatchSize` → `per_device_train_batch_size`. */
export function camelToSnake(name: string): string {
  return name.replace(/[A-Z]/g, (c) => "_" + c.toLowerCase());
}

// ---- TypeScript types of a config, from its rows ----

/** The camelCase of a snake_case string type. */
export type SnakeToCamel<S extends string> = S extends `${infer H}_${infer T}`
  ? `${H}${SnakeToCamel<Capitalize<T>>}`
  : S;
type ValueOf<F> = F extends Field<string, infer V> ? V : never;
type Camel<F extends Field> = SnakeToCamel<F["name"]>;

/** A config's values after construction (camelCase): `F` is the union of its rows' types. */
export type ConfigValues<F extends Field> = { readonly [R in F as Camel<R>]: ValueOf<R> };

/** What a config's constructor takes (camelCase): the required keys, and any others. */
export type ConfigInit<F extends Field> =
  & { -readonly [R in F as R extends { required: true } ? Camel<R> : never]: ValueOf<R> }
  & { -readonly [R in F as R extends { required: true } ? never : Camel<R>]?: ValueOf<R> };

/**
 * true when each of A and B is assignable to the other: a compile-time check that a config's written-out value
 * type (which a published API needs) is its rows' type, `const _same: SameType<Rows, Values> = true`.
 */
export type SameType<A, B> = [A] extends [B] ? [B] extends [A] ? true : false : false;
