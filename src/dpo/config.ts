/**
 * `DPOConfig`: the options of a DPO run (TRL's `DPOConfig` with the training arguments it inherits), validated at
 * construction by the config builder of src/config against the table in config_table.ts, then by the DPO rules
 * below (the loss types and their options, the reference strategies, the truncation lengths) and the training
 * rules of src/config/training.ts. The TypeScript API is camelCase (`new DPOConfig({lossType})`); YAML files, CLI
 * flags and saved checkpoints use TRL's snake_case names (`DPOConfig.fromSnakeCase`, `config.toSnakeCase()`).
 *
 * @module
 */
import { checkValue, rangeText } from "../config/check.ts";
import { camelToSnake, snakeToCamel } from "../config/field.ts";
import {
  ConfigSchema,
  deepFreeze,
  isPlainObject,
  type NameStyle,
  printWarningsOnce,
  resetPrintedWarnings,
  type RuleContext,
  sameValue,
} from "../config/schema.ts";
import { checkTrainingArgs, warnOverridden, warnUnusedIntervals } from "../config/training.ts";
import { showValue, Voice } from "../config/voice.ts";
import { editDistance, nearestKey } from "../util/nearest.ts";
import {
  CONFIG_FIELDS,
  type DPOConfigInit,
  type DPOConfigValues,
  FIELD_BY_NAME,
  FIELDS,
  type FieldSpec,
  LABEL_SMOOTHING_LOSS_TYPES,
  LOSS_TYPE_ALIASES,
  LOSS_TYPE_NAMES,
  UNSUPPORTED_TRL_KEYS,
} from "./config_table.ts";
import type { DpoLossType } from "./loss.ts";
import { ConfigError } from "./config_error.ts";

export { camelToSnake, type DPOConfigInit, type DPOConfigValues, snakeToCamel };
export { ConfigError, editDistance, type NameStyle, nearestKey, rangeText };

/** Options of the DPOConfig constructor. */
export interface DPOConfigOptions {
  /** Print each warning to the platform's sink (console.warn), each distinct one once per process (default true). */
  printWarnings?: boolean;
  /** Name keys in error messages in this style (default "camel"; `fromSnakeCase` uses "snake"). */
  nameStyle?: NameStyle;
}

/** How DPOConfig and `webdpo train` word errors: "beta must be > 0; got -1", strings in single quotes. */
export const DPO_VOICE: Voice = new Voice({
  got: "; got ",
  show: showValue,
  error: (m) => new ConfigError(m),
  unknownKey: (key, near) => `unknown key '${key}'` + (near ? `; did you mean '${near}'?` : ""),
});

const SCHEMA = new ConfigSchema(CONFIG_FIELDS, DPO_VOICE);

// ---- keys ----

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

// ---- values ----

/**
 * Checks one value against its field's type and range and returns it normalised (a single `report_to` value as a
 * list of one; lists and mappings copied). Throws a ConfigError saying what is allowed.
 */
export function checkFieldValue(f: FieldSpec, v: unknown, style: NameStyle = "snake"): unknown {
  return checkValue(f, v, style === "camel" ? f.camel : f.name, DPO_VOICE);
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

/** Forgets which config warnings were printed (tests, or a new run in the same process). */
export function resetPrintedConfigWarnings(): void {
  resetPrintedWarnings();
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
      throw new ConfigError(
        `DPOConfig expects an object of options (camelCase keys); got ${showValue(init)}`,
      );
    }
    const bad = Object.keys(init).filter((k) => SCHEMA.field(k, "camel") === undefined);
    if (bad.length) throw new ConfigError(keyErrors(bad, style));
    // label_smoothing is checked by the rules, with the loss types' reasons
    const { values, warnings } = SCHEMA.resolve(init, {
      keys: "camel",
      style,
      rules: (r) => {
        checkDpoOptions(r);
        checkTrainingArgs(r);
        dpoWarnings(r);
      },
    });
    this.warnings = Object.freeze(warnings);
    Object.assign(this, values);
    deepFreeze(values);
    Object.freeze(this);
    if (options.printWarnings ?? true) printWarningsOnce(warnings);
  }

  /** A config from snake_case keys (a YAML file, a saved checkpoint); error messages name snake_case keys. */
  static fromSnakeCase(
    obj: Record<string, unknown>,
    options: Omit<DPOConfigOptions, "nameStyle"> = {},
  ): DPOConfig {
    if (!isPlainObject(obj)) {
      throw new ConfigError(
        `DPOConfig.fromSnakeCase expects an object of snake_case options; got ${showValue(obj)}`,
      );
    }
    const init: Record<string, unknown> = {};
    const bad: string[] = [];
    for (const [k, v] of Object.entries(obj)) {
      const f = SCHEMA.field(k, "snake");
      if (f === undefined) bad.push(k);
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
    return SCHEMA.toCamelCase(this) as DPOConfigInit;
  }

  /**
   * Every field under its snake_case (TRL) name, as plain data: what a checkpoint saves and what a YAML file for
   * webdpo or `trl dpo --config` holds. `omitDefaults` leaves out fields equal to TRL's default.
   */
  toSnakeCase(options: { omitDefaults?: boolean } = {}): Record<string, unknown> {
    return SCHEMA.toSnakeCase(this, options);
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

// ---- the DPO rules ----

/** The loss types, label_smoothing, loss weights, reference strategies, encoder-decoder keys, truncation lengths. */
function checkDpoOptions(r: RuleContext): void {
  const { v, n, fail } = r;
  // Loss types: known, distinct after aliases.
  const types = lossTypeList(v.lossType as string | string[]);
  const dup = types.find((t, i) => types.indexOf(t) !== i);
  if (dup) {
    fail(`${n("loss_type")} lists '${dup}' more than once (aot_unpaired is aot_pair); give each type once`);
  }
  const has = (t: DpoLossType) => types.includes(t);
  const typeNames = typeof v.lossType === "string" ? [v.lossType] : [...(v.lossType as string[])];

  // label_smoothing, with the robust loss's own reason.
  if (r.given("label_smoothing")) {
    const eps = v.labelSmoothing;
    if (typeof eps !== "number" || !Number.isFinite(eps)) {
      r.fail(`${n("label_smoothing")} must be a finite number in [0, 0.5); got ${showValue(eps)}`);
    }
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
}

/** Options the chosen loss or reference strategy ignores, and the training arguments' warnings between them. */
function dpoWarnings(r: RuleContext): void {
  const { v, n } = r;
  const types = lossTypeList(v.lossType as string | string[]);
  const has = (t: DpoLossType) => types.includes(t);
  const typeNames = typeof v.lossType === "string" ? [v.lossType] : [...(v.lossType as string[])];
  if (has("kto_pair")) {
    r.warn(
      "loss_type 'kto_pair': the unpaired KTO formulation (a KTO trainer) is preferable; TRL ≥ 0.10 removed " +
        "kto_pair from its DPO trainer",
    );
  }
  const eps = v.labelSmoothing as number;
  if (eps > 0) {
    const unused = typeNames.filter((t) => !LABEL_SMOOTHING_LOSS_TYPES.includes(lossTypeList(t)[0]));
    if (unused.length) {
      r.warn(
        `${n("label_smoothing")} ${eps} is not used by loss_type ${unused.map((t) => `'${t}'`).join(", ")}` +
          ` (only ${LABEL_SMOOTHING_LOSS_TYPES.join(", ")} use it)`,
      );
    }
  }
  r.unusedUnless(
    "f_alpha_divergence_coef",
    v.fDivergenceType === "alpha_divergence",
    `${n("f_divergence_type")} is not 'alpha_divergence'`,
  );
  r.unusedUnless("discopop_tau", has("discopop"), "loss_type does not include 'discopop'");
  r.unusedUnless("ref_model_mixup_alpha", v.syncRefModel === true, `${n("sync_ref_model")} is off`);
  r.unusedUnless("ref_model_sync_steps", v.syncRefModel === true, `${n("sync_ref_model")} is off`);
  r.unusedUnless(
    "precompute_ref_batch_size",
    v.precomputeRefLogProbs === true,
    `${n("precompute_ref_log_probs")} is off`,
  );
  warnUnusedIntervals(r);
  r.unusedUnless("generate_during_eval", v.evalStrategy !== "no", `${n("eval_strategy")} is 'no'`);
  if (v.precomputeRefLogProbs && v.referenceFree) {
    r.warn(
      `${n("precompute_ref_log_probs")} has no effect: ${
        n("reference_free")
      } makes every reference log-prob 0`,
    );
  }
  warnOverridden(r);
}

/** The table's rows (re-exported for tools that list or document the keys). */
export { CONFIG_FIELDS, FIELDS, type FieldSpec, LOSS_TYPE_NAMES };
