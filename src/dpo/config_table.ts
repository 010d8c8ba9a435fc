/**
 * The table of every key of a webdpo training run: DPOConfig's fields (the DPO options and the training
 * arguments) and the script keys of `webdpo train`. It is the single source of truth for defaults, types, ranges,
 * the camelCase ↔ snake_case names, `webdpo train --help` and the keys shared with TRL's `trl dpo --config`.
 *
 * Defaults are TRL's: the `DPOConfig` of the v0.9 documentation (with its inherited `TrainingArguments`), and, for
 * the options TRL added later, the values of SPEC.md. Two of them are chosen deliberately and documented in the
 * field's line: `padding_value` is unset (null: the tokenizer's pad, as TRL ≥ 0.9.6 does; the v0.9.4 signature
 * shows 0) and `f_alpha_divergence_coef` is 0.5 (SPEC.md and TRL 1.x; TRL 0.9–0.2x used 1.0).
 *
 * @module
 */

import { DPO_LOSS_TYPES, type DpoLossType, F_DIVERGENCE_TYPES } from "./loss.ts";

export type { DpoLossType };

/** Accepted spellings that name another loss type. */
export const LOSS_TYPE_ALIASES: Readonly<Record<string, DpoLossType>> = { aot_unpaired: "aot_pair" };
/** Every accepted `loss_type` value: SPEC.md's loss types (`DPO_LOSS_TYPES`) and their aliases. */
export const LOSS_TYPE_NAMES = [...DPO_LOSS_TYPES, "aot_unpaired"] as const;
/** A `loss_type` value as a user writes it (an alias allowed). */
export type LossTypeName = typeof LOSS_TYPE_NAMES[number];

/** The loss types that read `label_smoothing` (a warning when it is set for any other). */
export const LABEL_SMOOTHING_LOSS_TYPES: readonly DpoLossType[] = [
  "sigmoid",
  "robust",
  "exo_pair",
  "aot",
  "aot_pair",
];

/** Learning-rate schedules (transformers' names) that webdpo implements. */
export const LR_SCHEDULER_TYPES = [
  "linear",
  "cosine",
  "constant",
  "constant_with_warmup",
  "cosine_with_min_lr",
] as const;
/** The keys `lr_scheduler_kwargs` accepts, per schedule (transformers' keyword names). */
export const LR_SCHEDULER_KWARGS: Readonly<Record<typeof LR_SCHEDULER_TYPES[number], readonly string[]>> = {
  linear: [],
  cosine: ["num_cycles"],
  constant: [],
  constant_with_warmup: [],
  cosine_with_min_lr: ["num_cycles", "min_lr", "min_lr_rate"],
};
/** Evaluation / checkpoint strategies. */
export const INTERVAL_STRATEGIES = ["no", "steps", "epoch"] as const;
/**
 * `report_to` values: `jsonl` writes `output_dir/metrics.jsonl`, `all` is every integration webdpo has (today
 * jsonl only), `none` writes none (console and trainer_state.json only). Unset (TRL's default) means `all`.
 */
export const REPORT_TO_VALUES = ["none", "all", "jsonl"] as const;

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
  | { readonly kind: "enum"; readonly values: readonly string[] }
  /** A list of finite numbers ≥ `min` (when given). */
  | { readonly kind: "numberList"; readonly min?: number }
  /** One value of `values`, or a list of them (kept as given). */
  | { readonly kind: "enumOrList"; readonly values: readonly string[] }
  /** A list of `values` (a single value is read as a list of one). */
  | { readonly kind: "enumList"; readonly values: readonly string[] }
  /**
   * Names: a list of non-empty strings, or one string kept as it is (LoRA's target_modules: one string is a regex
   * or "all-linear", as PEFT reads it).
   */
  | { readonly kind: "stringList" }
  /** A JSON object whose keys are passed through unchanged (snake_case). */
  | { readonly kind: "map" }
  /** An interval in optimizer steps: an integer ≥ 1, or a number in (0, 1) meaning that fraction of the run's steps. */
  | { readonly kind: "steps" }
  /** `true` (the latest checkpoint in output_dir), `false`, or a checkpoint folder. */
  | { readonly kind: "boolOrPath" };

/** Which part of a run a key belongs to (the sections of `webdpo train --help`). */
export type FieldGroup = "script" | "dpo" | "training";

/**
 * The TRL releases whose `trl dpo --config` accepts the key: from `since` on, and before `until` when TRL removed it.
 * null: webdpo-only (remove it from a YAML before running it under TRL).
 */
export type TrlAvailability = { readonly since: string; readonly until?: string } | null;

/** One row of the table as written below (the camelCase name is derived from `name`). */
export interface RawField {
  /** The snake_case (TRL, YAML, CLI) name. */
  readonly name: string;
  /** What the value looks like. */
  readonly type: FieldType;
  /** Whether null (unset) is allowed. */
  readonly nullable: boolean;
  /** TRL's default (a snake_case YAML value); `undefined` only for required keys. */
  readonly default: unknown;
  /** The section of `--help`. */
  readonly group: FieldGroup;
  /** The TRL releases that accept the key (null: webdpo-only). */
  readonly trl: TrlAvailability;
  /** One line of documentation. */
  readonly doc: string;
  /** The key must be given (it has no default). */
  readonly required?: boolean;
}

/** One key of the table. */
export interface FieldSpec extends RawField {
  /** The camelCase name of the TypeScript API (`snakeToCamel(name)`). */
  readonly camel: string;
}

const TRL = { since: "0.9" } as const;

// The table. Order within a group is the order of `--help`.
const RAW = [
  // ---- script keys of `webdpo train` (not DPOConfig fields) ----
  {
    name: "model_name_or_path",
    type: { kind: "string" },
    nullable: false,
    default: undefined,
    required: true,
    group: "script",
    trl: TRL,
    doc:
      "the policy: a local Hugging Face model folder (config.json, *.safetensors, tokenizer files) or a hub id",
  },
  {
    name: "model_revision",
    type: { kind: "string" },
    nullable: false,
    default: "main",
    group: "script",
    trl: TRL,
    doc: "hub revision (branch, tag or commit) when model_name_or_path is a hub id",
  },
  {
    name: "ref_model_name_or_path",
    type: { kind: "string" },
    nullable: true,
    default: null,
    group: "script",
    trl: null,
    doc:
      "a separate reference model; unset: a frozen copy of the initial policy (TRL's `trl dpo` has no such key)",
  },
  {
    name: "dataset_name",
    type: { kind: "string" },
    nullable: false,
    default: undefined,
    required: true,
    group: "script",
    trl: TRL,
    doc: "preference data: a JSON, JSONL or Parquet file, or a folder of Hugging Face Parquet shards",
  },
  {
    name: "dataset_train_split",
    type: { kind: "string" },
    nullable: false,
    default: "train",
    group: "script",
    trl: TRL,
    doc: "the split to train on",
  },
  {
    name: "dataset_test_split",
    type: { kind: "string" },
    nullable: false,
    default: "test",
    group: "script",
    trl: TRL,
    doc: "the split to evaluate on (used when eval_strategy is not 'no')",
  },

  // ---- LoRA (TRL's ModelConfig keys; `trl dpo` builds its peft_config from them) ----
  {
    name: "use_peft",
    type: { kind: "bool" },
    nullable: false,
    default: false,
    group: "script",
    trl: TRL,
    doc: "train a LoRA adapter (the lora_* keys) on a frozen base instead of every weight; see docs/LORA.md",
  },
  {
    name: "lora_r",
    type: { kind: "int", min: 1 },
    nullable: false,
    default: 16,
    group: "script",
    trl: TRL,
    doc: "LoRA rank r (TRL's default 16; PEFT's own default is 8)",
  },
  {
    name: "lora_alpha",
    type: { kind: "int", min: 1 },
    nullable: false,
    default: 32,
    group: "script",
    trl: TRL,
    doc: "LoRA alpha: the adapter's output is scaled by lora_alpha / lora_r (TRL's default 32)",
  },
  {
    name: "lora_dropout",
    type: { kind: "number", min: 0, max: 1, maxOpen: true },
    nullable: false,
    default: 0.05,
    group: "script",
    trl: TRL,
    doc: "dropout on the adapter's input in training, in [0, 1); disable_dropout (default true) turns it off",
  },
  {
    name: "lora_target_modules",
    type: { kind: "stringList" },
    nullable: true,
    default: null,
    group: "script",
    trl: TRL,
    doc: "projections to adapt (q_proj,v_proj,... or all-linear); unset: PEFT's default for the architecture",
  },
  {
    name: "lora_modules_to_save",
    type: { kind: "stringList" },
    nullable: true,
    default: null,
    group: "script",
    trl: TRL,
    doc: "modules trained in full and saved with the adapter (e.g. lm_head, embed_tokens)",
  },
  {
    name: "use_rslora",
    type: { kind: "bool" },
    nullable: false,
    default: false,
    group: "script",
    trl: { since: "0.10" },
    doc: "rank-stabilised LoRA: scale by lora_alpha / sqrt(lora_r) instead of lora_alpha / lora_r",
  },
  {
    name: "int8_base",
    type: { kind: "bool" },
    nullable: false,
    default: false,
    group: "script",
    trl: null,
    doc:
      "with use_peft: keep the frozen base's projections in int8 with per-channel scales (TRL's load_in_8bit is " +
      "bitsandbytes' LLM.int8 instead)",
  },

  // ---- DPO options ----
  {
    name: "beta",
    type: { kind: "number", min: 0, minOpen: true },
    nullable: false,
    default: 0.1,
    group: "dpo",
    trl: TRL,
    doc: "β > 0: strength of the pull towards the reference; larger keeps the policy closer (τ of IPO)",
  },
  {
    name: "label_smoothing",
    type: { kind: "number", min: 0, max: 0.5, maxOpen: true },
    nullable: false,
    default: 0,
    group: "dpo",
    trl: TRL,
    doc: "ε in [0, 0.5): assumed rate of flipped preference labels (cDPO, robust, exo_pair, aot, aot_pair)",
  },
  {
    name: "loss_type",
    type: { kind: "enumOrList", values: LOSS_TYPE_NAMES },
    nullable: false,
    default: "sigmoid",
    group: "dpo",
    trl: TRL,
    doc: "the loss, or a list of losses summed with loss_weights (aot_unpaired is another name for aot_pair)",
  },
  {
    name: "label_pad_token_id",
    type: { kind: "int" },
    nullable: false,
    default: -100,
    group: "dpo",
    trl: { since: "0.9", until: "0.29" },
    doc: "label id of positions that are not scored (prompt tokens and padding)",
  },
  {
    name: "padding_value",
    type: { kind: "int", min: 0 },
    nullable: true,
    default: null,
    group: "dpo",
    trl: { since: "0.9", until: "0.26" },
    doc:
      "token id to right-pad input_ids with; unset: the tokenizer's pad token, else EOS (TRL ≥ 0.9.6's default)",
  },
  {
    name: "truncation_mode",
    type: { kind: "enum", values: ["keep_end", "keep_start"] },
    nullable: false,
    default: "keep_end",
    group: "dpo",
    trl: TRL,
    doc: "which end of a too-long prompt survives truncation",
  },
  {
    name: "max_length",
    type: { kind: "int", min: 1 },
    nullable: true,
    default: null,
    group: "dpo",
    trl: TRL,
    doc: "longest prompt + completion in tokens; unset: 512 with a warning",
  },
  {
    name: "max_prompt_length",
    type: { kind: "int", min: 1 },
    nullable: true,
    default: null,
    group: "dpo",
    trl: { since: "0.9", until: "0.29" },
    doc: "prompt tokens kept when a row exceeds max_length; unset: 128 with a warning",
  },
  {
    name: "max_target_length",
    type: { kind: "int", min: 1 },
    nullable: true,
    default: null,
    group: "dpo",
    trl: { since: "0.9", until: "0.14" },
    doc: "completion length for encoder-decoder models, which webdpo does not support yet: leave it unset",
  },
  {
    name: "is_encoder_decoder",
    type: { kind: "bool" },
    nullable: true,
    default: null,
    group: "dpo",
    trl: { since: "0.9", until: "0.15" },
    doc: "webdpo trains decoder-only models; only unset or false is accepted",
  },
  {
    name: "disable_dropout",
    type: { kind: "bool" },
    nullable: false,
    default: true,
    group: "dpo",
    trl: TRL,
    doc: "set every dropout probability of the policy and reference to 0",
  },
  {
    name: "generate_during_eval",
    type: { kind: "bool" },
    nullable: false,
    default: false,
    group: "dpo",
    trl: { since: "0.9", until: "0.29" },
    doc:
      "at each evaluation, sample completions from policy and reference for a few eval prompts and log them",
  },
  {
    name: "precompute_ref_log_probs",
    type: { kind: "bool" },
    nullable: false,
    default: false,
    group: "dpo",
    trl: TRL,
    doc: "compute the reference log-probs once before training and release the reference model",
  },
  {
    name: "dataset_num_proc",
    type: { kind: "int", min: 1 },
    nullable: true,
    default: null,
    group: "dpo",
    trl: TRL,
    doc: "workers that tokenize the dataset in parallel; unset: one",
  },
  {
    name: "model_init_kwargs",
    type: { kind: "map" },
    nullable: true,
    default: null,
    group: "dpo",
    trl: TRL,
    doc: "options for loading the policy from model_name_or_path (a mapping)",
  },
  {
    name: "ref_model_init_kwargs",
    type: { kind: "map" },
    nullable: true,
    default: null,
    group: "dpo",
    trl: { since: "0.9", until: "0.29" },
    doc: "options for loading the reference model (a mapping)",
  },
  {
    name: "model_adapter_name",
    type: { kind: "string" },
    nullable: true,
    default: null,
    group: "dpo",
    trl: { since: "0.9", until: "0.29" },
    doc: "LoRA: name of the adapter being trained, when the model holds several",
  },
  {
    name: "ref_adapter_name",
    type: { kind: "string" },
    nullable: true,
    default: null,
    group: "dpo",
    trl: { since: "0.9", until: "0.29" },
    doc: "LoRA: name of the adapter that acts as the reference",
  },
  {
    name: "reference_free",
    type: { kind: "bool" },
    nullable: false,
    default: false,
    group: "dpo",
    trl: { since: "0.9", until: "0.29" },
    doc: "use no reference model: every reference log-prob is 0",
  },
  {
    name: "force_use_ref_model",
    type: { kind: "bool" },
    nullable: false,
    default: false,
    group: "dpo",
    trl: { since: "0.9", until: "0.29" },
    doc: "LoRA: use the given reference model instead of the policy with its adapter disabled",
  },
  {
    name: "sync_ref_model",
    type: { kind: "bool" },
    nullable: false,
    default: false,
    group: "dpo",
    trl: TRL,
    doc: "TR-DPO: every ref_model_sync_steps steps, mix the policy into the reference",
  },
  {
    name: "ref_model_mixup_alpha",
    type: { kind: "number", min: 0, max: 1 },
    nullable: false,
    default: 0.9,
    group: "dpo",
    trl: TRL,
    doc: "TR-DPO α in [0, 1]: ref ← (1 − α)·ref + α·policy at each sync",
  },
  {
    name: "ref_model_sync_steps",
    type: { kind: "int", min: 1 },
    nullable: false,
    default: 64,
    group: "dpo",
    trl: TRL,
    doc: "TR-DPO: optimizer steps between reference syncs",
  },
  {
    name: "rpo_alpha",
    type: { kind: "number", min: 0 },
    nullable: true,
    default: null,
    group: "dpo",
    trl: { since: "0.9", until: "0.29" },
    doc: "RPO: add rpo_alpha × the chosen completions' NLL to the loss; unset: off",
  },
  {
    name: "loss_weights",
    type: { kind: "numberList", min: 0 },
    nullable: true,
    default: null,
    group: "dpo",
    trl: { since: "0.20" },
    doc: "one weight ≥ 0 per entry of loss_type; unset: 1 each",
  },
  {
    name: "f_divergence_type",
    type: { kind: "enum", values: F_DIVERGENCE_TYPES },
    nullable: false,
    default: "reverse_kl",
    group: "dpo",
    trl: { since: "0.9.6" },
    doc: "divergence whose score replaces each log-ratio in the loss",
  },
  {
    name: "f_alpha_divergence_coef",
    type: { kind: "number" },
    nullable: false,
    default: 0.5,
    group: "dpo",
    trl: { since: "0.9.6" },
    doc: "a of alpha_divergence (0.5 as in SPEC.md and TRL 1.x; TRL 0.9–0.2x defaulted to 1.0)",
  },
  {
    name: "use_weighting",
    type: { kind: "bool" },
    nullable: false,
    default: false,
    group: "dpo",
    trl: { since: "0.12" },
    doc: "WPO: weight each pair's loss by the policy's own probability of its completions",
  },
  {
    name: "ld_alpha",
    type: { kind: "number", min: 0, max: 1 },
    nullable: true,
    default: null,
    group: "dpo",
    trl: { since: "0.18" },
    doc:
      "LD-DPO, in [0, 1]: weight of the longer completion's tokens past the shorter one's length; unset: off",
  },
  {
    name: "discopop_tau",
    type: { kind: "number", min: 0, minOpen: true },
    nullable: false,
    default: 0.05,
    group: "dpo",
    trl: { since: "0.13" },
    doc: "τ > 0 of the discopop loss",
  },
  {
    name: "precompute_ref_batch_size",
    type: { kind: "int", min: 1 },
    nullable: true,
    default: null,
    group: "dpo",
    trl: { since: "0.13" },
    doc: "batch size of the reference pass of precompute_ref_log_probs; unset: the per-device batch size",
  },

  // ---- training arguments (transformers' TrainingArguments, as TRL's DPOConfig inherits them) ----
  {
    name: "output_dir",
    type: { kind: "string" },
    nullable: false,
    default: undefined,
    required: true,
    group: "training",
    trl: TRL,
    doc: "folder for checkpoints, metrics.jsonl, trainer_state.json and the final model",
  },
  {
    name: "seed",
    type: { kind: "int", min: 0 },
    nullable: false,
    default: 42,
    group: "training",
    trl: TRL,
    doc: "random seed of the run (initialisation, dropout, sampling)",
  },
  {
    name: "data_seed",
    type: { kind: "int", min: 0 },
    nullable: true,
    default: null,
    group: "training",
    trl: TRL,
    doc: "seed of the data order; unset: seed",
  },
  {
    name: "per_device_train_batch_size",
    type: { kind: "int", min: 1 },
    nullable: false,
    default: 8,
    group: "training",
    trl: TRL,
    doc: "preference pairs per training micro-batch",
  },
  {
    name: "per_device_eval_batch_size",
    type: { kind: "int", min: 1 },
    nullable: false,
    default: 8,
    group: "training",
    trl: TRL,
    doc: "preference pairs per evaluation batch",
  },
  {
    name: "gradient_accumulation_steps",
    type: { kind: "int", min: 1 },
    nullable: false,
    default: 1,
    group: "training",
    trl: TRL,
    doc: "micro-batches whose gradients are summed before each optimizer step",
  },
  {
    name: "learning_rate",
    type: { kind: "number", min: 0 },
    nullable: false,
    default: 5e-5,
    group: "training",
    trl: TRL,
    doc: "peak AdamW learning rate (TRL ≥ 0.12 changed its DPO default to 1e-6)",
  },
  {
    name: "weight_decay",
    type: { kind: "number", min: 0 },
    nullable: false,
    default: 0,
    group: "training",
    trl: TRL,
    doc: "AdamW decoupled weight decay",
  },
  {
    name: "adam_beta1",
    type: { kind: "number", min: 0, max: 1, maxOpen: true },
    nullable: false,
    default: 0.9,
    group: "training",
    trl: TRL,
    doc: "AdamW β1 in [0, 1)",
  },
  {
    name: "adam_beta2",
    type: { kind: "number", min: 0, max: 1, maxOpen: true },
    nullable: false,
    default: 0.999,
    group: "training",
    trl: TRL,
    doc: "AdamW β2 in [0, 1)",
  },
  {
    name: "adam_epsilon",
    type: { kind: "number", min: 0, minOpen: true },
    nullable: false,
    default: 1e-8,
    group: "training",
    trl: TRL,
    doc: "AdamW ε > 0",
  },
  {
    name: "max_grad_norm",
    type: { kind: "number", min: 0 },
    nullable: false,
    default: 1,
    group: "training",
    trl: TRL,
    doc: "clip the global gradient norm to this; 0 turns clipping off",
  },
  {
    name: "num_train_epochs",
    type: { kind: "number", min: 0, minOpen: true },
    nullable: false,
    default: 3,
    group: "training",
    trl: TRL,
    doc: "passes over the training set (a fraction allowed); ignored when max_steps > 0",
  },
  {
    name: "max_steps",
    type: { kind: "int", min: -1 },
    nullable: false,
    default: -1,
    group: "training",
    trl: TRL,
    doc: "optimizer steps of the run; -1: derived from num_train_epochs",
  },
  {
    name: "lr_scheduler_type",
    type: { kind: "enum", values: LR_SCHEDULER_TYPES },
    nullable: false,
    default: "linear",
    group: "training",
    trl: TRL,
    doc: "learning-rate schedule (transformers' formulas)",
  },
  {
    name: "lr_scheduler_kwargs",
    type: { kind: "map" },
    nullable: false,
    default: {},
    group: "training",
    trl: TRL,
    doc:
      "schedule options: num_cycles (cosine, cosine_with_min_lr); min_lr or min_lr_rate (cosine_with_min_lr)",
  },
  {
    name: "warmup_ratio",
    type: { kind: "number", min: 0, max: 1 },
    nullable: false,
    default: 0,
    group: "training",
    trl: TRL,
    doc: "warmup as a fraction in [0, 1] of the run's steps, rounded up",
  },
  {
    name: "warmup_steps",
    type: { kind: "int", min: 0 },
    nullable: false,
    default: 0,
    group: "training",
    trl: TRL,
    doc: "warmup steps; when > 0 it overrides warmup_ratio",
  },
  {
    name: "logging_steps",
    type: { kind: "steps" },
    nullable: false,
    default: 500,
    group: "training",
    trl: TRL,
    doc: "log metrics every this many optimizer steps (a number < 1: that fraction of the run, rounded up)",
  },
  {
    name: "logging_first_step",
    type: { kind: "bool" },
    nullable: false,
    default: false,
    group: "training",
    trl: TRL,
    doc: "also log after the first optimizer step",
  },
  {
    name: "eval_strategy",
    type: { kind: "enum", values: INTERVAL_STRATEGIES },
    nullable: false,
    default: "no",
    group: "training",
    trl: TRL,
    doc: "when to evaluate on dataset_test_split: never, every eval_steps, or after each epoch",
  },
  {
    name: "eval_steps",
    type: { kind: "steps" },
    nullable: true,
    default: null,
    group: "training",
    trl: TRL,
    doc: "evaluation interval for eval_strategy 'steps' (< 1: a fraction of the run); unset: logging_steps",
  },
  {
    name: "save_strategy",
    type: { kind: "enum", values: INTERVAL_STRATEGIES },
    nullable: false,
    default: "steps",
    group: "training",
    trl: TRL,
    doc: "when to write output_dir/checkpoint-<step>: never, every save_steps, or after each epoch",
  },
  {
    name: "save_steps",
    type: { kind: "steps" },
    nullable: false,
    default: 500,
    group: "training",
    trl: TRL,
    doc: "checkpoint interval for save_strategy 'steps' (< 1: a fraction of the run)",
  },
  {
    name: "save_total_limit",
    type: { kind: "int", min: 1 },
    nullable: true,
    default: null,
    group: "training",
    trl: TRL,
    doc: "keep at most this many checkpoints, deleting the oldest; unset: keep all",
  },
  {
    name: "resume_from_checkpoint",
    type: { kind: "boolOrPath" },
    nullable: true,
    default: null,
    group: "training",
    trl: TRL,
    doc: "true: continue from the latest complete checkpoint in output_dir; a path: from that checkpoint",
  },
  {
    name: "report_to",
    type: { kind: "enumList", values: REPORT_TO_VALUES },
    nullable: true,
    default: null,
    group: "training",
    trl: TRL,
    doc: "metric sinks: jsonl (output_dir/metrics.jsonl), all (= jsonl), none; unset: all. TRL lacks jsonl",
  },
  {
    name: "disable_tqdm",
    type: { kind: "bool" },
    nullable: true,
    default: null,
    group: "training",
    trl: TRL,
    doc: "no progress bar (plain log lines instead); unset: a bar when stderr is a terminal",
  },
  {
    name: "gradient_checkpointing",
    type: { kind: "bool" },
    nullable: false,
    default: false,
    group: "training",
    trl: TRL,
    doc: "recompute activations layer by layer in the backward pass: less memory, about 1/3 more compute",
  },
] as const satisfies readonly RawField[];

/**
 * Keys that TRL or transformers accept but webdpo does not, with the reason: an unknown-key error quotes it
 * instead of suggesting a near name.
 */
export const UNSUPPORTED_TRL_KEYS: Readonly<Record<string, string>> = (() => {
  const precision =
    "webdpo computes in float32 on WebGPU (f16/bf16 weights are converted on load); remove it";
  const out: Record<string, string> = {
    bf16: precision,
    fp16: precision,
    tf32: precision,
    torch_dtype: precision,
    dtype: precision,
    optim: "webdpo's optimizer is always AdamW (TRL's default adamw_torch); remove it",
    attn_implementation: "webdpo uses its own attention kernels; remove it",
    trust_remote_code:
      "webdpo runs no Python model code (it implements Llama, Mistral, Qwen2 and GPT-2); remove it",
    push_to_hub: "webdpo does not upload models; remove it",
    hub_model_id: "webdpo does not upload models; remove it",
    logging_dir: "metrics are written to output_dir; remove it",
    logging_strategy: "webdpo logs every logging_steps steps (TRL's default 'steps'); remove it",
    evaluation_strategy: "transformers 4.41 renamed it: use eval_strategy",
    max_completion_length: "webdpo follows TRL v0.9's truncation: use max_length and max_prompt_length",
    dataset_config: "hub dataset configurations are not supported; point dataset_name at a file or folder",
  };
  out.load_in_8bit =
    "webdpo has no bitsandbytes; its int8 frozen base (per-channel scales, weight-only) is the webdpo-only key " +
    "int8_base: use that, with use_peft";
  out.load_in_4bit =
    "4-bit bases are not supported; webdpo's int8_base (with use_peft) keeps the base in int8";
  out.lora_task_type = "webdpo trains causal LMs only (TRL's default CAUSAL_LM); remove it";
  out.use_dora = "DoRA is not supported (webdpo implements LoRA and rsLoRA); remove it";
  out.lora_target_parameters = "LoRA on raw parameters is not supported; use lora_target_modules";
  return out;
})();

/** camelCase of a snake_case name: `per_device_train_batch_size` → `perDeviceTrainBatchSize`. */
export function snakeToCamel(name: string): string {
  return name.replace(/_([a-z0-9])/g, (_, c: string) => c.toUpperCase());
}

/** snake_case of a camelCase name: `perDeviceTrainBatchSize` → `per_device_train_batch_size`. */
export function camelToSnake(name: string): string {
  return name.replace(/[A-Z]/g, (c) => "_" + c.toLowerCase());
}

/** Every key of the table, in `--help` order. */
export const FIELDS: readonly FieldSpec[] = RAW.map((f: RawField) => ({ ...f, camel: snakeToCamel(f.name) }));

/** The table's rows by snake_case name and by camelCase name. */
export const FIELD_BY_NAME: ReadonlyMap<string, FieldSpec> = new Map(
  FIELDS.flatMap((f) => [[f.name, f], [f.camel, f]] as const),
);

/** The fields of DPOConfig (every key but the script keys). */
export const CONFIG_FIELDS: readonly FieldSpec[] = FIELDS.filter((f) => f.group !== "script");
/** The script keys of `webdpo train`. */
export const SCRIPT_FIELDS: readonly FieldSpec[] = FIELDS.filter((f) => f.group === "script");

// ---- TypeScript types derived from the table ----

type SnakeToCamel<S extends string> = S extends `${infer H}_${infer T}` ? `${H}${SnakeToCamel<Capitalize<T>>}`
  : S;
type Row = typeof RAW[number];

type ValueOf<T> = T extends { kind: "number" | "int" | "steps" } ? number
  : T extends { kind: "bool" } ? boolean
  : T extends { kind: "string" } ? string
  : T extends { kind: "enum"; values: readonly (infer V)[] } ? V
  : T extends { kind: "numberList" } ? readonly number[]
  : T extends { kind: "enumOrList"; values: readonly (infer V)[] } ? V | readonly V[]
  : T extends { kind: "enumList"; values: readonly (infer V)[] } ? readonly V[]
  : T extends { kind: "stringList" } ? string | readonly string[]
  : T extends { kind: "map" } ? Readonly<Record<string, unknown>>
  : T extends { kind: "boolOrPath" } ? boolean | string
  : never;
type RowValue<R extends Row> = R extends { nullable: true } ? ValueOf<R["type"]> | null : ValueOf<R["type"]>;

/** The values of every DPOConfig field after construction (camelCase). */
export type DPOConfigValues = {
  readonly [R in Row as R["group"] extends "script" ? never : SnakeToCamel<R["name"]>]: RowValue<R>;
};

/** What `new DPOConfig(...)` takes: `outputDir` and any other fields (camelCase); the rest get TRL's defaults. */
export type DPOConfigInit =
  & { outputDir: string }
  & { -readonly [K in keyof DPOConfigValues]?: DPOConfigValues[K] };

/** The script keys of `webdpo train` after parsing (camelCase). */
export type TrainScriptArgs = {
  readonly [R in Row as R["group"] extends "script" ? SnakeToCamel<R["name"]> : never]: RowValue<R>;
};
