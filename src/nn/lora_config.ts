/**
 * LoraConfig: PEFT's LoRA options with PEFT's defaults, as rows of the config builder (src/config), given in
 * camelCase (the TypeScript API), in PEFT's snake_case (`adapter_config.json`, YAML) or with TRL's `lora_` prefixes
 * (`lora_r`, `lora_target_modules`, `lora_modules_to_save`: the rows' aliases). `loraConfig()` is strict (an
 * unknown key is an error naming the closest valid key, two spellings of one option are an error);
 * `loraConfigFromPeft()` reads a PEFT `adapter_config.json`, where keys of options webdpo does not implement are
 * accepted only at their neutral value (null, false, {}, []), and anything else is an error naming the key.
 * Messages quote values as excerpts of their JSON: an adapter_config.json may hold anything.
 *
 * Scaling: `lora_alpha / r`, or `lora_alpha / sqrt(r)` with `use_rslora` (rank-stabilised LoRA).
 * Per-module rank and alpha: `rank_pattern` / `alpha_pattern` map a regex to a value; a module whose full name
 * matches `(.*\.)?(pattern)$` uses it (the first matching pattern wins), as PEFT does.
 */
import { checkValue } from "../config/check.ts";
import { bool, type ConfigValues, float, int, map, names, oneOf, REQUIRED, str } from "../config/field.ts";
import { ConfigSchema } from "../config/schema.ts";
import { quotedUnknownKey, Voice } from "../config/voice.ts";
import { WebDPOError } from "../gpu/errors.ts";
import { jsonExcerpt } from "../util/json_excerpt.ts";

/** A malformed or unsupported LoRA configuration or adapter folder. */
export class LoraError extends WebDPOError {}

/** A normalised LoRA configuration (PEFT's LoraConfig fields, camelCase; the rows below document them). */
export interface LoraConfig {
  /** Rank r (PEFT default 8). */
  r: number;
  /** lora_alpha (PEFT default 8). */
  loraAlpha: number;
  /** Dropout on the LoRA branch's input in train mode (PEFT default 0). */
  loraDropout: number;
  /**
   * Module names (a module matches when its full name equals one or ends with "." + it), one regex string (a full
   * match of the module's full name), "all-linear" (every projection except the LM head), or null for PEFT's
   * per-architecture default (llama family: q_proj, v_proj; gpt2: c_attn).
   */
  targetModules: string[] | string | null;
  /** Module names excluded from the targets (same matching as targetModules), or null. */
  excludeModules: string[] | string | null;
  /** Modules trained in full and saved in the adapter (e.g. lm_head, embed_tokens), or null. */
  modulesToSave: string[] | null;
  /** scaling = alpha / sqrt(r) instead of alpha / r. */
  useRslora: boolean;
  /** Only "none" (bias terms stay frozen and are not saved). */
  bias: "none";
  /** Per-module ranks by regex. */
  rankPattern: Record<string, number>;
  /** Per-module alphas by regex. */
  alphaPattern: Record<string, number>;
  /** Only true: A Kaiming-uniform, B zero (the adapter starts as the identity). */
  initLoraWeights: true;
  /** The base model's name or folder (written to adapter_config.json). */
  baseModelNameOrPath: string | null;
}

/**
 * The options `loraConfig()` accepts: any LoraConfig field in camelCase, or in snake_case / TRL's prefixed names
 * (`lora_r`, `lora_alpha`, `lora_dropout`, `lora_target_modules`, `lora_modules_to_save`, `use_rslora`, …).
 */
export interface LoraConfigInput {
  r?: number;
  loraAlpha?: number;
  loraDropout?: number;
  targetModules?: string[] | string | null;
  excludeModules?: string[] | string | null;
  modulesToSave?: string[] | string | null;
  useRslora?: boolean;
  bias?: string;
  rankPattern?: Record<string, number>;
  alphaPattern?: Record<string, number>;
  initLoraWeights?: boolean | string;
  baseModelNameOrPath?: string | null;
  [snakeCaseKey: string]: unknown;
}

/** The regex a target_modules / exclude_modules string stands for: a full match of the module name. */
const targetRegex = (spec: string) => `^(?:${spec})$`;

/** The regex of a rank_pattern / alpha_pattern key: it matches the module name's end, after a ".". */
const patternRegex = (key: string) => `^(.*\\.)?(${key})$`;

/** Whether a regex source compiles (V8 compiles on first use: a regex too large fails only then). */
function compiles(source: string): boolean {
  try {
    new RegExp(source).test("");
    return true;
  } catch {
    return false;
  }
}

// ---- the rows' own checks (values no FieldType describes) ----

/** Module names, or (`regex`) one string: a regex that must compile; null stays null. */
const moduleList = (regex: boolean) => (v: unknown, key: string, voice: Voice): unknown => {
  if (v === null || v === undefined) return null;
  if (typeof v === "string") {
    if (!regex) return [v];
    if (v.length === 0) voice.fail(`${key} is an empty string`);
    if (!compiles(targetRegex(v))) voice.fail(`${key} ${voice.show(v)} is not a valid regex`);
    return v;
  }
  if (Array.isArray(v) && v.every((s) => typeof s === "string" && s.length > 0)) return [...v] as string[];
  return voice.must(key, `a list of module names${regex ? ", a regex string" : ""} or null`, voice.show(v));
};

/** A mapping of module regexes to values checked against `value`'s row; null is {}. */
const patterns = (value: Parameters<typeof checkValue>[0]) => (v: unknown, key: string, voice: Voice) => {
  if (v === null || v === undefined) return {};
  if (typeof v !== "object" || Array.isArray(v)) {
    voice.must(key, "an object mapping regexes to numbers", voice.show(v));
  }
  const out: Record<string, number> = {};
  for (const [k, x] of Object.entries(v as Record<string, unknown>)) {
    if (!compiles(patternRegex(k))) voice.fail(`${key} key ${voice.show(k)} is not a valid regex`);
    out[k] = checkValue(value, x, `${key}[${JSON.stringify(k)}]`, voice) as number;
  }
  return out;
};

/** Only `value` is supported: anything else is an error saying `why`. */
const only = (value: unknown, why: string) => (v: unknown, key: string, voice: Voice) => {
  if (v !== value) voice.fail(`${key} ${voice.show(v)} is not supported; ${why}`);
  return value;
};

/** Any string (an empty one too: it is only written back to adapter_config.json), or null. */
const stringOrNull = (v: unknown, key: string, voice: Voice) => {
  if (v !== null && typeof v !== "string") voice.must(key, "a string or null", voice.show(v));
  return v;
};

/** A rank_pattern value, an alpha_pattern value. */
const RANK = int("rank", REQUIRED, { min: 1 }).doc("a module's rank");
const ALPHA = float("alpha", REQUIRED).doc("a module's lora_alpha");

/** PEFT's LoraConfig fields that webdpo implements, with PEFT's defaults. */
const LORA_ROWS = [
  int("r", 8, { min: 1, aliases: ["lora_r", "loraR"] }).doc(
    "rank r of the adapter's A [r, in] and B [out, r]",
  ),
  float("lora_alpha", 8).doc("the adapter's output is scaled by lora_alpha / r (/ sqrt(r) with use_rslora)"),
  float("lora_dropout", 0, { min: 0, lt: 1 }).doc("dropout on the adapter's input in train mode, in [0, 1)"),
  names("target_modules", null, {
    aliases: ["lora_target_modules", "loraTargetModules"],
    check: moduleList(true),
  }).doc("module names, one regex or all-linear; unset: PEFT's default for the architecture"),
  names("exclude_modules", null, { check: moduleList(true) }).doc(
    "module names or a regex kept out of the targets",
  ),
  names("modules_to_save", null, {
    aliases: ["lora_modules_to_save", "loraModulesToSave"],
    check: moduleList(false),
  }).doc("modules trained in full and saved with the adapter (e.g. lm_head, embed_tokens)"),
  bool("use_rslora", false).doc("rank-stabilised LoRA: scale by lora_alpha / sqrt(r)"),
  oneOf("bias", ["none"], "none", {
    check: only("none", 'webdpo implements bias "none" only (biases stay frozen)'),
  }).doc("which biases train: none (they stay frozen and are not saved)"),
  map("rank_pattern", {}, { check: patterns(RANK) }).doc(
    "per-module ranks: a regex of the module's name → r",
  ),
  map("alpha_pattern", {}, { check: patterns(ALPHA) }).doc("per-module alphas: a regex → lora_alpha"),
  bool("init_lora_weights", true, {
    check: only(true, "webdpo initialises as PEFT's default (true: A Kaiming-uniform, B zero)"),
  }).doc("PEFT's default initialisation: A Kaiming-uniform, B zero (the adapter starts as the identity)"),
  str("base_model_name_or_path", null, { check: stringOrNull }).doc(
    "the base model's name or folder (written to adapter_config.json)",
  ),
];

// LoraConfig, written out above for its users, has exactly the rows' keys.
const _sameKeys: [keyof LoraConfig] extends [keyof ConfigValues<typeof LORA_ROWS[number]>]
  ? [keyof ConfigValues<typeof LORA_ROWS[number]>] extends [keyof LoraConfig] ? true : never
  : never = true;

const SCHEMA: ConfigSchema = new ConfigSchema(
  LORA_ROWS,
  new Voice({
    prefix: "LoRA config: ",
    got: ", got ",
    show: jsonExcerpt,
    error: (m) => new LoraError(m),
    unknownKey: quotedUnknownKey("key", () => SCHEMA.keys("snake")),
  }),
);

/** PEFT's defaults. */
export const LORA_DEFAULTS: Readonly<LoraConfig> = Object.freeze(
  Object.fromEntries(LORA_ROWS.map((f) => [f.camel, f.default])) as unknown as LoraConfig,
);

/**
 * A LoraConfig from options in camelCase, snake_case or TRL's prefixed names, with PEFT's defaults for what is
 * not given. Unknown keys and invalid values throw a LoraError naming the key (and the closest valid key).
 * `lora_dropout` > 0 is applied in train mode (see lora_dropout.ts).
 */
export function loraConfig(opts: LoraConfigInput = {}): LoraConfig {
  if (opts === null || typeof opts !== "object" || Array.isArray(opts)) {
    throw new LoraError(`LoRA config: expected an object of options, got ${jsonExcerpt(opts)}`);
  }
  return SCHEMA.resolve(opts).values as unknown as LoraConfig;
}

/** Keys of a PEFT config that describe the file, not the adapter (accepted, checked where it matters). */
const DESCRIPTIVE = new Set([
  "peft_type",
  "peftType",
  "task_type",
  "taskType",
  "inference_mode",
  "inferenceMode",
  "fan_in_fan_out",
  "fanInFanOut",
  "revision",
  "auto_mapping",
  "peft_version",
]);

function isNeutral(v: unknown): boolean {
  if (v === null || v === undefined || v === false) return true;
  if (Array.isArray(v)) return v.length === 0;
  if (typeof v === "object") return Object.keys(v as object).length === 0;
  return false;
}

/**
 * A LoraConfig from a PEFT `adapter_config.json` object (`where` names the file in errors). Keys of PEFT options
 * webdpo does not implement (use_dora, layers_to_transform, layer_replication, lora_bias, …) are accepted at
 * their neutral value and rejected otherwise.
 */
export function loraConfigFromPeft(json: Record<string, unknown>, where: string): LoraConfig {
  if (json === null || typeof json !== "object" || Array.isArray(json)) {
    throw new LoraError(`${where}: expected a JSON object`);
  }
  const type = json.peft_type ?? json.peftType;
  if (type !== undefined && type !== "LORA") {
    throw new LoraError(
      `${where}: peft_type is ${jsonExcerpt(type)}; webdpo loads LoRA adapters ("LORA")`,
    );
  }
  const task = json.task_type ?? json.taskType;
  if (task !== undefined && task !== null && task !== "CAUSAL_LM") {
    throw new LoraError(`${where}: task_type is ${jsonExcerpt(task)}; webdpo loads CAUSAL_LM adapters`);
  }
  const known: Record<string, unknown> = {};
  for (const [key, v] of Object.entries(json)) {
    if (SCHEMA.field(key)) known[key] = v;
    else if (
      !DESCRIPTIVE.has(key) && !isNeutral(v) && !(key === "megatron_core" && v === "megatron.core")
    ) {
      throw new LoraError(
        `${where}: "${key}" is set to ${jsonExcerpt(v)}, a PEFT option webdpo does not implement ` +
          `(supported: r, lora_alpha, lora_dropout, target_modules, exclude_modules, modules_to_save, ` +
          `use_rslora, rank_pattern, alpha_pattern, bias "none")`,
      );
    }
  }
  try {
    return SCHEMA.resolve(known).values as unknown as LoraConfig;
  } catch (e) {
    throw e instanceof LoraError ? new LoraError(`${where}: ${e.message}`) : e;
  }
}

function patternValue(patterns: Record<string, number>, module: string): number | undefined {
  for (const [k, v] of Object.entries(patterns)) {
    if (new RegExp(patternRegex(k)).test(module)) return v;
  }
  return undefined;
}

/** The rank, alpha and scaling one module gets under a config. */
export function moduleHyper(c: LoraConfig, module: string): { r: number; alpha: number; scaling: number } {
  const r = patternValue(c.rankPattern, module) ?? c.r;
  const alpha = patternValue(c.alphaPattern, module) ?? c.loraAlpha;
  return { r, alpha, scaling: c.useRslora ? alpha / Math.sqrt(r) : alpha / r };
}

/** Whether a module's full name matches a target spec (PEFT's rule: list → exact or "."-suffix; string → regex). */
export function matchesModules(spec: string[] | string, module: string): boolean {
  if (typeof spec === "string") return new RegExp(targetRegex(spec)).test(module);
  return spec.some((t) => module === t || module.endsWith(`.${t}`));
}

/** PEFT's default target modules per architecture (TRANSFORMERS_MODELS_TO_LORA_TARGET_MODULES_MAPPING). */
export function defaultTargetModules(modelType: string): string[] {
  return modelType === "gpt2" ? ["c_attn"] : ["q_proj", "v_proj"];
}

/** The adapter_config.json PEFT writes for a config (`fanInFanOut`: true for GPT-2's Conv1D layers). */
export function peftConfigJson(
  c: LoraConfig,
  opts: { targetModules: string[] | string; fanInFanOut: boolean; baseModelNameOrPath: string | null },
): Record<string, unknown> {
  return {
    alpha_pattern: { ...c.alphaPattern },
    auto_mapping: null,
    base_model_name_or_path: opts.baseModelNameOrPath,
    bias: "none",
    exclude_modules: c.excludeModules,
    fan_in_fan_out: opts.fanInFanOut,
    inference_mode: true,
    init_lora_weights: true,
    layer_replication: null,
    layers_pattern: null,
    layers_to_transform: null,
    loftq_config: {},
    lora_alpha: c.loraAlpha,
    lora_bias: false,
    lora_dropout: c.loraDropout,
    megatron_config: null,
    megatron_core: "megatron.core",
    modules_to_save: c.modulesToSave,
    peft_type: "LORA",
    r: c.r,
    rank_pattern: { ...c.rankPattern },
    revision: null,
    target_modules: opts.targetModules,
    task_type: "CAUSAL_LM",
    use_dora: false,
    use_rslora: c.useRslora,
  };
}
