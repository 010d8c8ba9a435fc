/**
 * LoraConfig: PEFT's LoRA options with PEFT's defaults, given in camelCase (the TypeScript API), in PEFT's
 * snake_case (`adapter_config.json`, YAML) or with TRL's `lora_` prefixes (`lora_r`, `lora_target_modules`,
 * `lora_modules_to_save`). `loraConfig()` is strict (an unknown key is an error naming the closest valid key);
 * `loraConfigFromPeft()` reads a PEFT `adapter_config.json`, where keys of options webdpo does not implement are
 * accepted only at their neutral value (null, false, {}, []), and anything else is an error naming the key.
 *
 * Scaling: `lora_alpha / r`, or `lora_alpha / sqrt(r)` with `use_rslora` (rank-stabilised LoRA).
 * Per-module rank and alpha: `rank_pattern` / `alpha_pattern` map a regex to a value; a module whose full name
 * matches `(.*\.)?(pattern)$` uses it (the first matching pattern wins), as PEFT does.
 */
import { WebDPOError } from "../gpu/errors.ts";
import { jsonExcerpt } from "../util/json_excerpt.ts";

/** A malformed or unsupported LoRA configuration or adapter folder. */
export class LoraError extends WebDPOError {}

/** A normalised LoRA configuration (PEFT's LoraConfig fields, camelCase). */
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

/** PEFT's defaults. */
export const LORA_DEFAULTS: Readonly<LoraConfig> = Object.freeze({
  r: 8,
  loraAlpha: 8,
  loraDropout: 0,
  targetModules: null,
  excludeModules: null,
  modulesToSave: null,
  useRslora: false,
  bias: "none" as const,
  rankPattern: {},
  alphaPattern: {},
  initLoraWeights: true as const,
  baseModelNameOrPath: null,
});

/** Every accepted spelling → the LoraConfig field. */
const ALIASES: Record<string, keyof LoraConfig> = {
  r: "r",
  loraR: "r",
  lora_r: "r",
  loraAlpha: "loraAlpha",
  lora_alpha: "loraAlpha",
  loraDropout: "loraDropout",
  lora_dropout: "loraDropout",
  targetModules: "targetModules",
  target_modules: "targetModules",
  loraTargetModules: "targetModules",
  lora_target_modules: "targetModules",
  excludeModules: "excludeModules",
  exclude_modules: "excludeModules",
  modulesToSave: "modulesToSave",
  modules_to_save: "modulesToSave",
  loraModulesToSave: "modulesToSave",
  lora_modules_to_save: "modulesToSave",
  useRslora: "useRslora",
  use_rslora: "useRslora",
  bias: "bias",
  rankPattern: "rankPattern",
  rank_pattern: "rankPattern",
  alphaPattern: "alphaPattern",
  alpha_pattern: "alphaPattern",
  initLoraWeights: "initLoraWeights",
  init_lora_weights: "initLoraWeights",
  baseModelNameOrPath: "baseModelNameOrPath",
  base_model_name_or_path: "baseModelNameOrPath",
};

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

function editDistance(a: string, b: string): number {
  const d: number[][] = Array.from({ length: a.length + 1 }, (_, i) => [i, ...new Array(b.length).fill(0)]);
  for (let j = 1; j <= b.length; j++) d[0][j] = j;
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      d[i][j] = Math.min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
  }
  return d[a.length][b.length];
}

function closest(name: string, options: readonly string[]): string {
  return options.reduce((best, o) => (editDistance(name, o) < editDistance(name, best) ? o : best));
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

function isNeutral(v: unknown): boolean {
  if (v === null || v === undefined || v === false) return true;
  if (Array.isArray(v)) return v.length === 0;
  if (typeof v === "object") return Object.keys(v as object).length === 0;
  return false;
}

function positiveInt(key: string, v: unknown): number {
  if (typeof v !== "number" || !Number.isSafeInteger(v) || v < 1) {
    throw new LoraError(`LoRA config: ${key} must be an integer ≥ 1, got ${jsonExcerpt(v)}`);
  }
  return v;
}

function finite(key: string, v: unknown): number {
  if (typeof v !== "number" || !Number.isFinite(v)) {
    throw new LoraError(`LoRA config: ${key} must be a finite number, got ${jsonExcerpt(v)}`);
  }
  return v;
}

function moduleList(key: string, v: unknown, allowString: boolean): string[] | string | null {
  if (v === null || v === undefined) return null;
  if (typeof v === "string") {
    if (!allowString) return [v];
    if (v.length === 0) throw new LoraError(`LoRA config: ${key} is an empty string`);
    if (!compiles(targetRegex(v))) {
      throw new LoraError(`LoRA config: ${key} ${jsonExcerpt(v)} is not a valid regex`);
    }
    return v;
  }
  if (Array.isArray(v) && v.every((s) => typeof s === "string" && s.length > 0)) return [...v] as string[];
  throw new LoraError(
    `LoRA config: ${key} must be a list of module names${allowString ? ", a regex string" : ""} or null, ` +
      `got ${jsonExcerpt(v)}`,
  );
}

function pattern(key: string, v: unknown, check: (k: string, x: unknown) => number): Record<string, number> {
  if (v === null || v === undefined) return {};
  if (typeof v !== "object" || Array.isArray(v)) {
    throw new LoraError(
      `LoRA config: ${key} must be an object mapping regexes to numbers, got ${jsonExcerpt(v)}`,
    );
  }
  const out: Record<string, number> = {};
  for (const [k, x] of Object.entries(v as Record<string, unknown>)) {
    if (!compiles(patternRegex(k))) {
      throw new LoraError(`LoRA config: ${key} key ${jsonExcerpt(k)} is not a valid regex`);
    }
    out[k] = check(`${key}[${JSON.stringify(k)}]`, x);
  }
  return out;
}

/** Validates one field's value. */
function field(out: LoraConfig, f: keyof LoraConfig, key: string, v: unknown): void {
  switch (f) {
    case "r":
      out.r = positiveInt(key, v);
      break;
    case "loraAlpha":
      out.loraAlpha = finite(key, v);
      break;
    case "loraDropout": {
      const p = finite(key, v);
      if (p < 0 || p >= 1) throw new LoraError(`LoRA config: ${key} must be in [0, 1), got ${p}`);
      out.loraDropout = p;
      break;
    }
    case "targetModules":
      out.targetModules = moduleList(key, v, true);
      break;
    case "excludeModules":
      out.excludeModules = moduleList(key, v, true);
      break;
    case "modulesToSave":
      out.modulesToSave = moduleList(key, v, false) as string[] | null;
      break;
    case "useRslora":
      if (typeof v !== "boolean") {
        throw new LoraError(`LoRA config: ${key} must be true or false, got ${jsonExcerpt(v)}`);
      }
      out.useRslora = v;
      break;
    case "bias":
      if (v !== "none") {
        throw new LoraError(
          `LoRA config: ${key} ${jsonExcerpt(v)} is not supported; webdpo implements bias "none" only ` +
            `(biases stay frozen)`,
        );
      }
      break;
    case "rankPattern":
      out.rankPattern = pattern(key, v, positiveInt);
      break;
    case "alphaPattern":
      out.alphaPattern = pattern(key, v, finite);
      break;
    case "initLoraWeights":
      if (v !== true) {
        throw new LoraError(
          `LoRA config: ${key} ${jsonExcerpt(v)} is not supported; webdpo initialises as PEFT's default ` +
            `(true: A Kaiming-uniform, B zero)`,
        );
      }
      break;
    case "baseModelNameOrPath":
      if (v !== null && typeof v !== "string") {
        throw new LoraError(`LoRA config: ${key} must be a string or null, got ${jsonExcerpt(v)}`);
      }
      out.baseModelNameOrPath = v as string | null;
      break;
  }
}

function withDefaults(): LoraConfig {
  return { ...LORA_DEFAULTS, rankPattern: {}, alphaPattern: {} };
}

/**
 * A LoraConfig from options in camelCase, snake_case or TRL's prefixed names, with PEFT's defaults for what is
 * not given. Unknown keys and invalid values throw a LoraError naming the key (and the closest valid key).
 * `lora_dropout` > 0 is applied in train mode (see lora_dropout.ts).
 */
export function loraConfig(opts: LoraConfigInput = {}): LoraConfig {
  if (opts === null || typeof opts !== "object" || Array.isArray(opts)) {
    throw new LoraError(`LoRA config: expected an object of options, got ${jsonExcerpt(opts)}`);
  }
  const out = withDefaults();
  const seen = new Map<keyof LoraConfig, string>();
  for (const [key, v] of Object.entries(opts)) {
    if (v === undefined) continue;
    const f = ALIASES[key];
    if (!f) {
      throw new LoraError(
        `LoRA config: unknown key "${key}" (did you mean "${closest(key, Object.keys(ALIASES))}"?)`,
      );
    }
    const prev = seen.get(f);
    if (prev !== undefined) throw new LoraError(`LoRA config: "${key}" and "${prev}" set the same option`);
    seen.set(f, key);
    field(out, f, key, v);
  }
  return out;
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
  const out = withDefaults();
  for (const [key, v] of Object.entries(json)) {
    const f = ALIASES[key];
    if (f) {
      try {
        field(out, f, key, v);
      } catch (e) {
        throw new LoraError(`${where}: ${(e as Error).message}`);
      }
    } else if (
      !DESCRIPTIVE.has(key) && !isNeutral(v) && !(key === "megatron_core" && v === "megatron.core")
    ) {
      throw new LoraError(
        `${where}: "${key}" is set to ${jsonExcerpt(v)}, a PEFT option webdpo does not implement ` +
          `(supported: r, lora_alpha, lora_dropout, target_modules, exclude_modules, modules_to_save, ` +
          `use_rslora, rank_pattern, alpha_pattern, bias "none")`,
      );
    }
  }
  return out;
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
