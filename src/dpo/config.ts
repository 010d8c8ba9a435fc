/**
 * `DPOConfig`: the options of a DPO run (TRL's `DPOConfig` with the training arguments it inherits), validated at
 * construction against the table in config_table.ts. The TypeScript API is camelCase (`new DPOConfig({lossType})`);
 * YAML files, CLI flags and saved checkpoints use TRL's snake_case names (`DPOConfig.fromSnakeCase`,
 * `config.toSnakeCase()`).
 *
 * @module
 */
import {
  camelToSnake,
  CONFIG_FIELDS,
  type DPOConfigInit,
  type DPOConfigValues,
  FIELD_BY_NAME,
  FIELDS,
  type FieldSpec,
  LABEL_SMOOTHING_LOSS_TYPES,
  LOSS_TYPE_ALIASES,
  LOSS_TYPE_NAMES,
  LR_SCHEDULER_KWARGS,
  snakeToCamel,
  UNSUPPORTED_TRL_KEYS,
} from "./config_table.ts";
import type { DpoLossType } from "./loss.ts";
import { ConfigError } from "./config_error.ts";

export { camelToSnake, type DPOConfigInit, type DPOConfigValues, snakeToCamel };

export { ConfigError };

/** How keys are named in messages: the camelCase API, or the snake_case of YAML files and flags. */
export type NameStyle = "camel" | "snake";

/** Options of the DPOConfig constructor. */
export interface DPOConfigOptions {
  /** Print each warning with console.warn, each distinct message once per process (default true). */
  printWarnings?: boolean;
  /** Name keys in error messages in this style (default "camel"; `fromSnakeCase` uses "snake"). */
  nameStyle?: NameStyle;
}

// ---- key suggestions ----

/** Levenshtein distance. */
export function editDistance(a: string, b: string): number {
  const row = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    let diag = row[0];
    row[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const up = row[j];
      row[j] = Math.min(up + 1, row[j - 1] + 1, diag + (a[i - 1] === b[j - 1] ? 0 : 1));
      diag = up;
    }
  }
  return row[b.length];
}

const squash = (s: string) => s.toLowerCase().replace(/[_-]/g, "");

/**
 * The key of `candidates` nearest to `name`, comparing case- and separator-insensitively (so `learningRte`,
 * `learning_rte` and `LEARNING-RATE` all find learning_rate / learningRate), or null when nothing is close.
 */
export function nearestKey(name: string, candidates: readonly string[]): string | null {
  let best: string | null = null;
  let bestD = Infinity;
  let bestRaw = Infinity;
  const n = squash(name);
  for (const c of candidates) {
    const d = editDistance(n, squash(c));
    const raw = editDistance(name, c);
    if (d < bestD || (d === bestD && raw < bestRaw)) [best, bestD, bestRaw] = [c, d, raw];
  }
  return best !== null && bestD <= Math.max(2, Math.floor(n.length / 3)) ? best : null;
}

/**
 * The message for a key that is not in the table: the reason when it is a known TRL key webdpo does not support,
 * else the nearest valid key in `style`. `flag` words it for a command-line flag (`--key`).
 */
export function unknownKeyMessage(
  key: string,
  style: NameStyle,
  candidates: readonly FieldSpec[],
  flag = false,
): string {
  const q = (k: string) => (flag ? `'--${k}'` : `'${k}'`);
  const what = `unknown ${flag ? "flag" : "key"} ${q(key)}`;
  const reason = UNSUPPORTED_TRL_KEYS[camelToSnake(key).replace(/-/g, "_")];
  if (reason !== undefined) return `${what}: ${reason}`;
  const near = nearestKey(key, candidates.flatMap((f) => [f.name, f.camel]));
  if (near === null) return `${what} (no key is close; \`webdpo train --help\` lists them all)`;
  const f = FIELD_BY_NAME.get(near)!;
  return `${what}; did you mean ${q(style === "camel" ? f.camel : f.name)}?`;
}

// ---- values ----

const keyOf = (f: FieldSpec, style: NameStyle) => (style === "camel" ? f.camel : f.name);

function show(v: unknown): string {
  if (typeof v === "string") return `'${v}'`;
  if (v === undefined) return "undefined";
  try {
    return JSON.stringify(v) ?? String(v);
  } catch {
    return String(v);
  }
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  if (v === null || typeof v !== "object" || Array.isArray(v)) return false;
  const proto = Object.getPrototypeOf(v);
  return proto === Object.prototype || proto === null;
}

function deepFreeze<T>(v: T): T {
  if (v !== null && typeof v === "object") {
    for (const x of Object.values(v)) deepFreeze(x);
    Object.freeze(v);
  }
  return v;
}

/** The allowed range of a number field in words ("> 0", "in [0, 0.5)"), or "". */
export function rangeText(f: FieldSpec): string {
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

function inRange(f: FieldSpec, x: number): boolean {
  const t = f.type;
  if (t.kind === "int" || t.kind === "numberList") return t.min === undefined || x >= t.min;
  if (t.kind !== "number") return true;
  if (t.min !== undefined && (t.minOpen ? !(x > t.min) : !(x >= t.min))) return false;
  if (t.max !== undefined && (t.maxOpen ? !(x < t.max) : !(x <= t.max))) return false;
  return true;
}

function enumError(name: string, v: unknown, values: readonly string[], what = "one of"): ConfigError {
  const near = typeof v === "string" ? nearestKey(v, values) : null;
  const alias = Object.entries(LOSS_TYPE_ALIASES).filter(([a]) => values.includes(a))
    .map(([a, t]) => ` (${a} is another name for ${t})`).join("");
  return new ConfigError(
    `${name} must be ${what} ${values.join(", ")}${alias}; got ${show(v)}` +
      (near ? ` (did you mean '${near}'?)` : ""),
  );
}

/**
 * Checks one value against its field's type and range and returns it normalised (a single `report_to` value as a
 * list of one; lists and mappings copied). Throws a ConfigError saying what is allowed.
 */
export function checkFieldValue(f: FieldSpec, v: unknown, style: NameStyle = "snake"): unknown {
  const name = keyOf(f, style);
  if (v === null) {
    if (f.nullable) return null;
    throw new ConfigError(
      `${name} cannot be null` + (f.default !== undefined ? ` (default ${show(f.default)})` : ""),
    );
  }
  const t = f.type;
  const range = rangeText(f);
  switch (t.kind) {
    case "number":
      if (typeof v !== "number" || !Number.isFinite(v)) {
        throw new ConfigError(`${name} must be a finite number${range ? " " + range : ""}; got ${show(v)}`);
      }
      if (!inRange(f, v)) throw new ConfigError(`${name} must be ${range}; got ${v}`);
      return v;
    case "int":
      if (typeof v !== "number" || !Number.isSafeInteger(v)) {
        throw new ConfigError(`${name} must be an integer${range ? " " + range : ""}; got ${show(v)}`);
      }
      if (!inRange(f, v)) throw new ConfigError(`${name} must be an integer ${range}; got ${v}`);
      return v;
    case "steps":
      if (typeof v !== "number" || !Number.isFinite(v) || v <= 0 || (v >= 1 && !Number.isInteger(v))) {
        throw new ConfigError(
          `${name} must be a whole number of steps ≥ 1, or a fraction in (0, 1) of the run's steps; got ${
            show(v)
          }`,
        );
      }
      return v;
    case "bool":
      if (typeof v !== "boolean") throw new ConfigError(`${name} must be true or false; got ${show(v)}`);
      return v;
    case "string":
      if (typeof v !== "string" || v === "") {
        throw new ConfigError(`${name} must be a non-empty string; got ${show(v)}`);
      }
      return v;
    case "enum":
      if (typeof v !== "string" || !t.values.includes(v)) throw enumError(name, v, t.values);
      return v;
    case "numberList": {
      if (!Array.isArray(v)) throw new ConfigError(`${name} must be a list of numbers; got ${show(v)}`);
      v.forEach((x, i) => {
        if (typeof x !== "number" || !Number.isFinite(x) || !inRange(f, x)) {
          throw new ConfigError(
            `${name}[${i}] must be a finite number${range ? " " + range : ""}; got ${show(x)}`,
          );
        }
      });
      return [...v];
    }
    case "enumOrList": {
      if (typeof v === "string") {
        if (!t.values.includes(v)) throw enumError(name, v, t.values);
        return v;
      }
      if (!Array.isArray(v)) throw enumError(name, v, t.values, "one (or a list) of");
      if (v.length === 0) {
        throw new ConfigError(`${name} is an empty list; give at least one of ${t.values.join(", ")}`);
      }
      v.forEach((x, i) => {
        if (typeof x !== "string" || !t.values.includes(x)) throw enumError(`${name}[${i}]`, x, t.values);
      });
      return [...v];
    }
    case "enumList": {
      const list = typeof v === "string" ? [v] : v;
      if (!Array.isArray(list)) throw enumError(name, v, t.values, "a list of");
      if (list.length === 0) {
        throw new ConfigError(`${name} is an empty list; give at least one of ${t.values.join(", ")}`);
      }
      list.forEach((x, i) => {
        if (typeof x !== "string" || !t.values.includes(x)) throw enumError(`${name}[${i}]`, x, t.values);
      });
      return [...list];
    }
    case "stringList": {
      if (typeof v === "string") {
        if (v === "") throw new ConfigError(`${name} must be a non-empty string or a list of them; got ''`);
        return v;
      }
      if (!Array.isArray(v) || v.length === 0) {
        throw new ConfigError(`${name} must be a non-empty list of names (or one string); got ${show(v)}`);
      }
      v.forEach((x, i) => {
        if (typeof x !== "string" || x === "") {
          throw new ConfigError(`${name}[${i}] must be a non-empty string; got ${show(x)}`);
        }
      });
      return [...v];
    }
    case "map":
      if (!isPlainObject(v)) {
        throw new ConfigError(`${name} must be a mapping of option names to values; got ${show(v)}`);
      }
      try {
        return structuredClone(v);
      } catch {
        throw new ConfigError(`${name} must hold plain data (numbers, strings, booleans, lists, mappings)`);
      }
    case "boolOrPath":
      if (typeof v === "boolean") return v;
      if (typeof v === "string" && v !== "") return v;
      throw new ConfigError(`${name} must be true, false or a checkpoint folder; got ${show(v)}`);
  }
}

/** The loss types of a `loss_type` value, aliases resolved. */
export function lossTypeList(lossType: string | readonly string[]): DpoLossType[] {
  const names = typeof lossType === "string" ? [lossType] : [...lossType];
  return names.map((n) => (LOSS_TYPE_ALIASES[n] ?? n) as DpoLossType);
}

// the training loop's rule, kept importable from here
export { intervalSteps } from "../train/plan.ts";

/** Compares dotted version strings numerically ("0.9.6" < "0.13"). */
export function compareVersions(a: string, b: string): number {
  const pa = a.split(".").map(Number);
  const pb = b.split(".").map(Number);
  for (let i = 0; i < Math.max(pa.length, pb.length); i++) {
    const d = (pa[i] ?? 0) - (pb[i] ?? 0);
    if (d !== 0) return Math.sign(d);
  }
  return 0;
}

/** Whether `trl dpo --config` of TRL `version` knows the key. */
export function trlKnowsKey(f: FieldSpec, version: string): boolean {
  if (f.trl === null) return false;
  if (compareVersions(version, f.trl.since) < 0) return false;
  return f.trl.until === undefined || compareVersions(version, f.trl.until) < 0;
}

const printed = new Set<string>();
/** Forgets which config warnings were printed (tests, or a new run in the same process). */
export function resetPrintedConfigWarnings(): void {
  printed.clear();
}

function sameValue(a: unknown, b: unknown): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}

/** DPOConfig's fields, typed from the table (merged into the class below). */
export interface DPOConfig extends DPOConfigValues {}

/**
 * The options of a DPO run, validated at construction: every field of TRL's DPOConfig (camelCase), the training
 * arguments a run uses, and the loss options TRL added later. Missing fields get TRL's defaults; `outputDir` is
 * required. Invalid values and combinations throw a ConfigError saying what is allowed; softer problems are
 * collected in `warnings` (and printed once). The object is frozen: use `with()` for a changed copy.
 *
 * ```ts
 * const config = new DPOConfig({ outputDir: "out", beta: 0.1, lossType: "sigmoid" });
 * ```
 */
export class DPOConfig {
  /** Problems that do not stop a run (an option the chosen loss ignores, a deprecated loss type, ...). */
  readonly warnings: readonly string[];

  /** Applies TRL's defaults to `init`, validates every value and combination, and collects the warnings. */
  constructor(init: DPOConfigInit, options: DPOConfigOptions = {}) {
    const style = options.nameStyle ?? "camel";
    if (!isPlainObject(init)) {
      throw new ConfigError(`DPOConfig expects an object of options (camelCase keys); got ${show(init)}`);
    }
    const given = init as Record<string, unknown>;
    checkKeys(Object.keys(given), style);

    const values: Record<string, unknown> = {};
    const explicit = new Set<string>();
    // Each value's type and range; label_smoothing is checked with the loss types in validateCombinations.
    for (const f of CONFIG_FIELDS) {
      const v = given[f.camel];
      if (v === undefined) {
        if (f.required) {
          throw new ConfigError(`${keyOf(f, style)} is required: ${f.doc}`);
        }
        values[f.camel] = structuredClone(f.default);
        continue;
      }
      explicit.add(f.camel);
      if (f.name === "label_smoothing") continue;
      values[f.camel] = checkFieldValue(f, v, style);
    }
    const warnings: string[] = [];
    validateCombinations(values, given, style, warnings, explicit);

    this.warnings = Object.freeze(warnings);
    Object.assign(this, values);
    deepFreeze(values);
    Object.freeze(this);
    if (options.printWarnings ?? true) {
      for (const w of warnings) {
        if (printed.has(w)) continue;
        printed.add(w);
        console.warn(`webdpo: ${w}`);
      }
    }
  }

  /** A config from snake_case keys (a YAML file, a saved checkpoint); error messages name snake_case keys. */
  static fromSnakeCase(
    obj: Record<string, unknown>,
    options: Omit<DPOConfigOptions, "nameStyle"> = {},
  ): DPOConfig {
    if (!isPlainObject(obj)) {
      throw new ConfigError(
        `DPOConfig.fromSnakeCase expects an object of snake_case options; got ${show(obj)}`,
      );
    }
    const init: Record<string, unknown> = {};
    const bad: string[] = [];
    for (const [k, v] of Object.entries(obj)) {
      const f = FIELD_BY_NAME.get(k);
      if (f === undefined || f.name !== k || f.group === "script") bad.push(k);
      else init[f.camel] = v;
    }
    if (bad.length) throw new ConfigError(keyErrors(bad, "snake"));
    return new DPOConfig(init as DPOConfigInit, { ...options, nameStyle: "snake" });
  }

  /** The loss types of `lossType` as a list, aliases resolved (`aot_unpaired` → `aot_pair`). */
  get lossTypes(): readonly DpoLossType[] {
    return lossTypeList(this.lossType);
  }

  /** Every field, camelCase, as a plain object (copies of lists and mappings). */
  toCamelCase(): DPOConfigInit {
    const out: Record<string, unknown> = {};
    for (const f of CONFIG_FIELDS) out[f.camel] = structuredClone((this as Record<string, unknown>)[f.camel]);
    return out as DPOConfigInit;
  }

  /**
   * Every field under its snake_case (TRL) name, as plain data: what a checkpoint saves and what a YAML file for
   * webdpo or `trl dpo --config` holds. `omitDefaults` leaves out fields equal to TRL's default.
   */
  toSnakeCase(options: { omitDefaults?: boolean } = {}): Record<string, unknown> {
    const out: Record<string, unknown> = {};
    for (const f of CONFIG_FIELDS) {
      const v = (this as Record<string, unknown>)[f.camel];
      if (options.omitDefaults && sameValue(v, f.default)) continue;
      out[f.name] = structuredClone(v);
    }
    return out;
  }

  /** A validated copy with some fields changed. */
  with(changes: Partial<DPOConfigInit>, options: DPOConfigOptions = {}): DPOConfig {
    return new DPOConfig({ ...this.toCamelCase(), ...changes } as DPOConfigInit, options);
  }

  /**
   * The snake_case keys of this config that `trl dpo --config` of TRL `version` would not accept: keys that
   * version lacks, holding a value other than the default, and `report_to` values TRL does not know (jsonl).
   */
  keysUnknownToTrl(version: string): string[] {
    const out: string[] = [];
    for (const f of CONFIG_FIELDS) {
      const v = (this as Record<string, unknown>)[f.camel];
      if (!trlKnowsKey(f, version) && !sameValue(v, f.default)) out.push(f.name);
      else if (f.name === "report_to" && Array.isArray(v) && v.includes("jsonl")) out.push(f.name);
    }
    return out;
  }
}

function keyErrors(keys: readonly string[], style: NameStyle): string {
  const lines = keys.map((k) => {
    const f = FIELD_BY_NAME.get(k);
    if (f?.group === "script") {
      return `'${k}' is a script key of \`webdpo train\` (loadTrainConfig reads it), not a DPOConfig field`;
    }
    if (f !== undefined && style === "camel") {
      return `'${k}' is a snake_case name: the constructor takes camelCase '${f.camel}' ` +
        "(DPOConfig.fromSnakeCase reads snake_case)";
    }
    if (f !== undefined) {
      return `'${k}' is a camelCase name: snake_case options use '${f.name}'`;
    }
    return unknownKeyMessage(k, style, CONFIG_FIELDS);
  });
  return lines.length === 1 ? lines[0] : `${lines.length} unknown keys:\n  ${lines.join("\n  ")}`;
}

function checkKeys(keys: readonly string[], style: NameStyle): void {
  const bad = keys.filter((k) => {
    const f = FIELD_BY_NAME.get(k);
    return f === undefined || f.group === "script" || f.camel !== k;
  });
  if (bad.length) throw new ConfigError(keyErrors(bad, style));
}

/** The cross-field rules; fills in derived defaults (eval_steps) and collects warnings. */
function validateCombinations(
  v: Record<string, unknown>,
  given: Record<string, unknown>,
  style: NameStyle,
  warnings: string[],
  explicit: Set<string>,
): void {
  const F = (snake: string) => FIELD_BY_NAME.get(snake)!;
  const n = (snake: string) => keyOf(F(snake), style);
  const fail = (msg: string): never => {
    throw new ConfigError(msg);
  };

  // Loss types: known, distinct after aliases.
  const types = lossTypeList(v.lossType as string | string[]);
  const dup = types.find((t, i) => types.indexOf(t) !== i);
  if (dup) {
    fail(`${n("loss_type")} lists '${dup}' more than once (aot_unpaired is aot_pair); give each type once`);
  }
  const has = (t: DpoLossType) => types.includes(t);
  const typeNames = typeof v.lossType === "string" ? [v.lossType] : [...(v.lossType as string[])];

  // label_smoothing, with the robust loss's own reason.
  const lsField = F("label_smoothing");
  const lsGiven = given[lsField.camel];
  if (lsGiven !== undefined) {
    if (typeof lsGiven !== "number" || !Number.isFinite(lsGiven)) {
      fail(`${n("label_smoothing")} must be a finite number in [0, 0.5); got ${show(lsGiven)}`);
    }
    const eps = lsGiven as number;
    if (has("robust") && !(eps >= 0 && eps < 0.5)) {
      fail(
        `loss_type 'robust' needs ${
          n("label_smoothing")
        } in [0, 0.5) (its loss divides by 1 − 2ε); got ${eps}`,
      );
    }
    if (eps < 0) fail(`${n("label_smoothing")} must be ≥ 0 (a probability of flipped labels); got ${eps}`);
    if (!(eps < 0.5)) {
      fail(`${n("label_smoothing")} must be < 0.5 (ε ≥ 0.5 would trust the flipped labels more); got ${eps}`);
    }
    v[lsField.camel] = eps;
  }
  const eps = v.labelSmoothing as number;
  if (has("exo_pair") && eps === 0) {
    fail(`loss_type 'exo_pair' needs ${n("label_smoothing")} > 0 (its loss takes log ε); try 1e-3`);
  }
  const lw = v.lossWeights as number[] | null;
  if (lw !== null && lw.length !== typeNames.length) {
    fail(
      `${n("loss_weights")} has ${lw.length} value(s) but ${n("loss_type")} has ${typeNames.length} ` +
        `(${typeNames.join(", ")}); give one weight per loss type`,
    );
  }
  if (v.useWeighting && (has("aot") || has("aot_pair"))) {
    fail(
      `${
        n("use_weighting")
      } does not work with loss_type 'aot' or 'aot_pair' (their losses belong to sorted ` +
        "positions, not to pairs); turn one of them off",
    );
  }

  // Reference model strategies.
  if (v.syncRefModel && v.precomputeRefLogProbs) {
    fail(
      `${
        n("sync_ref_model")
      } updates the reference during training, so its log-probs cannot be precomputed: ` +
        `turn off ${n("precompute_ref_log_probs")} or ${n("sync_ref_model")}`,
    );
  }
  if (v.syncRefModel && v.referenceFree) {
    fail(
      `${n("sync_ref_model")} needs a reference model, but ${n("reference_free")} uses none; turn one off`,
    );
  }

  // Encoder-decoder models.
  if (v.maxTargetLength !== null) {
    fail(
      `${
        n("max_target_length")
      } is for encoder-decoder models, which webdpo does not support yet (it trains ` +
        `decoder-only causal LMs); remove it and use ${n("max_length")} / ${n("max_prompt_length")}`,
    );
  }
  if (v.isEncoderDecoder === true) {
    fail(
      `${
        n("is_encoder_decoder")
      }: encoder-decoder models are not supported yet (webdpo trains decoder-only ` +
        "causal LMs); leave it unset or false",
    );
  }

  // Truncation lengths (with the defaults tokenize_row applies when unset).
  const maxLength = (v.maxLength as number | null) ?? 512;
  const maxPrompt = (v.maxPromptLength as number | null) ?? 128;
  if (maxPrompt >= maxLength) {
    fail(
      `${n("max_prompt_length")} (${maxPrompt}${
        v.maxPromptLength === null ? ", the default" : ""
      }) must be less ` +
        `than ${n("max_length")} (${maxLength}${v.maxLength === null ? ", the default" : ""}) so that ` +
        "completions keep at least one token",
    );
  }

  // Run length and schedule.
  if (v.maxSteps === 0) fail(`${n("max_steps")} must be -1 (use ${n("num_train_epochs")}) or ≥ 1; got 0`);
  const sched = v.lrSchedulerType as keyof typeof LR_SCHEDULER_KWARGS;
  const kwargs = v.lrSchedulerKwargs as Record<string, unknown>;
  const allowed = LR_SCHEDULER_KWARGS[sched];
  for (const [k, x] of Object.entries(kwargs)) {
    if (!allowed.includes(k)) {
      const near = allowed.length ? nearestKey(k, allowed) : null;
      fail(
        `${n("lr_scheduler_kwargs")}: '${k}' is not an option of the '${sched}' schedule` +
          (near ? ` (did you mean '${near}'?)` : "") +
          `; it takes ${allowed.length ? allowed.join(", ") : "none"}`,
      );
    }
    if (typeof x !== "number" || !Number.isFinite(x)) {
      fail(`${n("lr_scheduler_kwargs")}.${k} must be a finite number; got ${show(x)}`);
    }
  }
  if (kwargs.num_cycles !== undefined && !((kwargs.num_cycles as number) > 0)) {
    fail(`${n("lr_scheduler_kwargs")}.num_cycles must be > 0; got ${kwargs.num_cycles}`);
  }
  if (kwargs.min_lr !== undefined && !((kwargs.min_lr as number) >= 0)) {
    fail(`${n("lr_scheduler_kwargs")}.min_lr must be ≥ 0; got ${kwargs.min_lr}`);
  }
  if (
    kwargs.min_lr_rate !== undefined &&
    !((kwargs.min_lr_rate as number) >= 0 && (kwargs.min_lr_rate as number) <= 1)
  ) {
    fail(`${n("lr_scheduler_kwargs")}.min_lr_rate must be in [0, 1]; got ${kwargs.min_lr_rate}`);
  }
  if (sched === "cosine_with_min_lr") {
    const count = (kwargs.min_lr !== undefined ? 1 : 0) + (kwargs.min_lr_rate !== undefined ? 1 : 0);
    if (count !== 1) {
      fail(
        `${n("lr_scheduler_type")} 'cosine_with_min_lr' needs exactly one of min_lr and min_lr_rate in ` +
          `${n("lr_scheduler_kwargs")} (for example {"min_lr_rate": 0.1}); got ${show(kwargs)}`,
      );
    }
  }

  // report_to: none stands alone.
  const rt = v.reportTo as string[] | null;
  if (rt !== null && rt.includes("none") && rt.length > 1) {
    fail(`${n("report_to")}: 'none' cannot be combined with other values; got ${rt.join(", ")}`);
  }

  // Evaluation interval: transformers falls back to logging_steps.
  if (v.evalStrategy === "steps" && v.evalSteps === null) v.evalSteps = v.loggingSteps;

  // ---- warnings ----
  if (has("kto_pair")) {
    warnings.push(
      "loss_type 'kto_pair': the unpaired KTO formulation (a KTO trainer) is preferable; TRL ≥ 0.10 removed " +
        "kto_pair from its DPO trainer",
    );
  }
  if (eps > 0) {
    const unused = typeNames.filter((t) => !LABEL_SMOOTHING_LOSS_TYPES.includes(lossTypeList(t)[0]));
    if (unused.length) {
      warnings.push(
        `${n("label_smoothing")} ${eps} is not used by loss_type ${unused.map((t) => `'${t}'`).join(", ")}` +
          ` (only ${LABEL_SMOOTHING_LOSS_TYPES.join(", ")} use it)`,
      );
    }
  }
  const changed = (snake: string) => {
    const f = F(snake);
    return explicit.has(f.camel) && !sameValue(v[f.camel], f.default);
  };
  const unusedUnless = (snake: string, cond: boolean, because: string) => {
    if (changed(snake) && !cond) warnings.push(`${n(snake)} has no effect: ${because}`);
  };
  unusedUnless(
    "f_alpha_divergence_coef",
    v.fDivergenceType === "alpha_divergence",
    `${n("f_divergence_type")} is not 'alpha_divergence'`,
  );
  unusedUnless("discopop_tau", has("discopop"), "loss_type does not include 'discopop'");
  unusedUnless("ref_model_mixup_alpha", v.syncRefModel === true, `${n("sync_ref_model")} is off`);
  unusedUnless("ref_model_sync_steps", v.syncRefModel === true, `${n("sync_ref_model")} is off`);
  unusedUnless(
    "precompute_ref_batch_size",
    v.precomputeRefLogProbs === true,
    `${n("precompute_ref_log_probs")} is off`,
  );
  unusedUnless("eval_steps", v.evalStrategy === "steps", `${n("eval_strategy")} is not 'steps'`);
  unusedUnless("save_steps", v.saveStrategy === "steps", `${n("save_strategy")} is not 'steps'`);
  unusedUnless("save_total_limit", v.saveStrategy !== "no", `${n("save_strategy")} is 'no'`);
  unusedUnless("generate_during_eval", v.evalStrategy !== "no", `${n("eval_strategy")} is 'no'`);
  if (v.precomputeRefLogProbs && v.referenceFree) {
    warnings.push(
      `${n("precompute_ref_log_probs")} has no effect: ${
        n("reference_free")
      } makes every reference log-prob 0`,
    );
  }
  if ((v.warmupSteps as number) > 0 && (v.warmupRatio as number) > 0) {
    warnings.push(
      `${n("warmup_steps")} (${v.warmupSteps}) overrides ${n("warmup_ratio")} (${v.warmupRatio})`,
    );
  }
  if (changed("num_train_epochs") && (v.maxSteps as number) > 0) {
    warnings.push(
      `${n("num_train_epochs")} has no effect: ${n("max_steps")} (${v.maxSteps}) sets the run length`,
    );
  }
}

/** The table's rows (re-exported for tools that list or document the keys). */
export { CONFIG_FIELDS, FIELDS, type FieldSpec, LOSS_TYPE_NAMES };
