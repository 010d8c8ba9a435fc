/**
 * The table of every key of a webdpo training run: DPOConfig's fields (the DPO options and the training
 * arguments) and the script keys of `webdpo train`, as rows of src/config (one per key: name, type, default, TRL
 * releases, one line of documentation). It is the single source of truth for defaults, types, ranges, the
 * camelCase ↔ snake_case names, `webdpo train --help` and the keys shared with TRL's `trl dpo --config`.
 *
 * Defaults are TRL's: the `DPOConfig` of the v0.9 documentation (with its inherited `TrainingArguments`, the shared
 * rows of src/config/training.ts), and, for the options TRL added later, the values of SPEC.md. Two of them are
 * chosen deliberately and documented in the field's line: `padding_value` is unset (null: the tokenizer's pad, as
 * TRL ≥ 0.9.6 does; the v0.9.4 signature shows 0) and `f_alpha_divergence_coef` is 0.5 (SPEC.md and TRL 1.x; TRL
 * 0.9–0.2x used 1.0). A third, `padding_free`, is on by default: TRL leaves it off because only FlashAttention
 * handles flattened batches there, while webdpo's attention separates packed sequences itself and gives the same
 * values. A row's TRL releases default to every release from 0.9 on.
 *
 * @module
 */
import {
  bool,
  camelToSnake,
  type ConfigValues,
  type Field,
  type FieldType,
  float,
  floats,
  int,
  map,
  mapList,
  names,
  oneOf,
  oneOrList,
  REQUIRED,
  type SameType,
  snakeToCamel,
  str,
  type TrlAvailability,
  withDocs,
} from "../config/field.ts";
import {
  INTERVAL_STRATEGIES,
  LR_SCHEDULER_KWARGS,
  LR_SCHEDULER_TYPES,
  REPORT_TO_VALUES,
  TRAINING_ROWS,
  type TrainingValues,
} from "../config/training.ts";
import { DPO_LOSS_TYPES, type DpoLossType, F_DIVERGENCE_TYPES } from "./loss.ts";
import { type DatasetMixtureEntry, mixtureProblem } from "../data/mixture_entries.ts";
import { parseSplitSpec } from "../data/split_spec.ts";
import type { Voice } from "../config/voice.ts";

export type { DpoLossType, FieldType, TrlAvailability };
export {
  camelToSnake,
  INTERVAL_STRATEGIES,
  LR_SCHEDULER_KWARGS,
  LR_SCHEDULER_TYPES,
  REPORT_TO_VALUES,
  snakeToCamel,
};

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

/** Which part of a run a key belongs to (the sections of `webdpo train --help`). */
export type FieldGroup = "script" | "dpo" | "training";

/** One key of the table: a row of its section, with the TRL releases that accept it. */
export interface FieldSpec extends Field {
  /** The section of `--help`. */
  readonly group: FieldGroup;
  /** The TRL releases that accept the key (null: webdpo-only). */
  readonly trl: TrlAvailability;
}

// The table. Order within a group is the order of `--help`.

/** A `datasets` value: a list of TRL's DatasetConfig entries (null: unset). */
function checkMixture(v: unknown, name: string, voice: Voice): unknown {
  if (v === null) return null;
  const problem = mixtureProblem(v);
  if (problem !== null) voice.fail(`${name}${problem.startsWith("[") ? "" : " "}${problem}`);
  return structuredClone(v);
}

/** A split key's value: a non-empty string that is a split spec (`train`, `train[:10%]`, `train+test`). */
function checkSplitSpec(v: unknown, name: string, voice: Voice): unknown {
  if (typeof v !== "string" || v === "") voice.must(name, "a non-empty string", voice.show(v));
  try {
    parseSplitSpec(v);
  } catch (e) {
    voice.fail(`${name}: ${e instanceof Error ? e.message : e}`);
  }
  return v;
}

/** A `test_split_size` value: a share in (0, 1), or a whole number of rows (null: unset). */
function checkTestSplitSize(v: unknown, name: string, voice: Voice): unknown {
  if (v === null) return null;
  if (typeof v !== "number" || !(v > 0) || !Number.isFinite(v) || (v >= 1 && !Number.isInteger(v))) {
    voice.must(name, "a share in (0, 1) or a whole number of rows ≥ 1", voice.show(v));
  }
  return v;
}

/** The script keys of `webdpo train` (not DPOConfig fields), with TRL's ModelConfig keys for LoRA. */
const SCRIPT_ROWS = [
  str("model_name_or_path", REQUIRED).doc(
    "the policy: a local Hugging Face model folder (config.json, *.safetensors, tokenizer files) or a hub id",
  ),
  str("model_revision", "main").doc(
    "hub revision (branch, tag or commit) when model_name_or_path is a hub id",
  ),
  str("ref_model_name_or_path", null, { trl: null }).doc(
    "a separate reference model; unset: a frozen copy of the initial policy (TRL's `trl dpo` has no such key)",
  ),
  str("dataset_name", null).doc(
    "preference data: a JSON, JSONL (.gz) or Parquet file, a datasets or save_to_disk folder, or a hub id " +
      "(org/name) in the Hugging Face cache; required unless `datasets` is given",
  ),
  str("dataset_config", null, { trl: "0.13" }).doc(
    "the subset of dataset_name (load_dataset's name): a config of its README.md, or else a folder of it",
  ),
  str("dataset_train_split", "train", { check: checkSplitSpec }).doc(
    "the split to train on; webdpo also takes load_dataset's split specs: train[:1000], train[:90%], train+test",
  ),
  str("dataset_test_split", "test", { check: checkSplitSpec }).doc(
    "the split to evaluate on (used when eval_strategy is not 'no'); a split spec too, e.g. train[90%:]",
  ),
  mapList<"datasets", DatasetMixtureEntry, null>("datasets", null, { trl: "0.22", check: checkMixture }).doc(
    "instead of dataset_name: a list of {path, name, data_dir, data_files, split, columns, fraction} read one " +
      "after the other as the train split, e.g. [{path: Anthropic/hh-rlhf, data_dir: harmless-base}]",
  ),
  float("test_split_size", null, { gt: 0, trl: "0.22", check: checkTestSplitSize }).doc(
    "with datasets: the share in (0, 1) or number of rows held out as the test split, drawn with seed",
  ),

  // ---- LoRA (TRL's ModelConfig keys; `trl dpo` builds its peft_config from them) ----
  bool("use_peft", false).doc(
    "train a LoRA adapter (the lora_* keys) on a frozen base instead of every weight; see docs/LORA.md",
  ),
  int("lora_r", 16, { min: 1 }).doc("LoRA rank r (TRL's default 16; PEFT's own default is 8)"),
  int("lora_alpha", 32, { min: 1 }).doc(
    "LoRA alpha: the adapter's output is scaled by lora_alpha / lora_r (TRL's default 32)",
  ),
  float("lora_dropout", 0.05, { min: 0, lt: 1 }).doc(
    "dropout on the adapter's input in training, in [0, 1); disable_dropout (default true) turns it off",
  ),
  names("lora_target_modules", null).doc(
    "projections to adapt (q_proj,v_proj,... or all-linear); unset: PEFT's default for the architecture",
  ),
  names("lora_modules_to_save", null).doc(
    "modules trained in full and saved with the adapter (e.g. lm_head, embed_tokens)",
  ),
  bool("use_rslora", false, { trl: "0.10" }).doc(
    "rank-stabilised LoRA: scale by lora_alpha / sqrt(lora_r) instead of lora_alpha / lora_r",
  ),
  bool("int8_base", false, { trl: null }).doc(
    "with use_peft: keep the frozen base's projections in int8 with per-channel scales (TRL's load_in_8bit is " +
      "bitsandbytes' LLM.int8 instead)",
  ),
];

/** The DPO options. */
const DPO_ROWS = [
  float("beta", 0.1, { gt: 0 }).doc(
    "β > 0: strength of the pull towards the reference; larger keeps the policy closer (τ of IPO)",
  ),
  float("label_smoothing", 0, { min: 0, lt: 0.5, byRules: true }).doc(
    "ε in [0, 0.5): assumed rate of flipped preference labels (cDPO, robust, exo_pair, aot, aot_pair)",
  ),
  oneOrList("loss_type", LOSS_TYPE_NAMES, "sigmoid", { valueAliases: LOSS_TYPE_ALIASES }).doc(
    "the loss, or a list of losses summed with loss_weights (aot_unpaired is another name for aot_pair)",
  ),
  int("label_pad_token_id", -100, { trl: ["0.9", "0.29"] }).doc(
    "label id of positions that are not scored (prompt tokens and padding)",
  ),
  int("padding_value", null, { min: 0, trl: ["0.9", "0.26"] }).doc(
    "token id to right-pad input_ids with; unset: the tokenizer's pad token, else EOS (TRL ≥ 0.9.6's default)",
  ),
  bool("padding_free", true, { trl: "0.17" }).doc(
    "run each batch's real tokens as one packed sequence, no compute on padding (on by default, unlike TRL)",
  ),
  bool("prefix_sharing", true, { trl: null }).doc(
    "with padding_free, run the prompt a pair's chosen and rejected share once (same values, less compute)",
  ),
  oneOf("truncation_mode", ["keep_end", "keep_start"], "keep_end").doc(
    "which end of a too-long prompt survives truncation",
  ),
  int("max_length", null, { min: 1 }).doc("longest prompt + completion in tokens; unset: 512 with a warning"),
  int("max_prompt_length", null, { min: 1, trl: ["0.9", "0.29"] }).doc(
    "prompt tokens kept when a row exceeds max_length; unset: 128 with a warning",
  ),
  int("max_target_length", null, { min: 1, trl: ["0.9", "0.14"] }).doc(
    "completion length for encoder-decoder models, which webdpo does not support yet: leave it unset",
  ),
  bool("is_encoder_decoder", null, { trl: ["0.9", "0.15"] }).doc(
    "webdpo trains decoder-only models; only unset or false is accepted",
  ),
  bool("disable_dropout", true).doc("set every dropout probability of the policy and reference to 0"),
  bool("generate_during_eval", false, { trl: ["0.9", "0.29"] }).doc(
    "at each evaluation, sample completions from policy and reference for a few eval prompts and log them",
  ),
  bool("precompute_ref_log_probs", false).doc(
    "compute the reference log-probs once before training and release the reference model",
  ),
  int("dataset_num_proc", null, { min: 1 }).doc("workers that tokenize the dataset in parallel; unset: one"),
  map("model_init_kwargs", null).doc("options for loading the policy from model_name_or_path (a mapping)"),
  map("ref_model_init_kwargs", null, { trl: ["0.9", "0.29"] }).doc(
    "options for loading the reference model (a mapping)",
  ),
  str("model_adapter_name", null, { trl: ["0.9", "0.29"] }).doc(
    "LoRA: name of the adapter being trained, when the model holds several",
  ),
  str("ref_adapter_name", null, { trl: ["0.9", "0.29"] }).doc(
    "LoRA: name of the adapter that acts as the reference",
  ),
  bool("reference_free", false, { trl: ["0.9", "0.29"] }).doc(
    "use no reference model: every reference log-prob is 0",
  ),
  bool("force_use_ref_model", false, { trl: ["0.9", "0.29"] }).doc(
    "LoRA: use the given reference model instead of the policy with its adapter disabled",
  ),
  bool("sync_ref_model", false).doc(
    "TR-DPO: every ref_model_sync_steps steps, mix the policy into the reference",
  ),
  float("ref_model_mixup_alpha", 0.9, { min: 0, max: 1 }).doc(
    "TR-DPO α in [0, 1]: ref ← (1 − α)·ref + α·policy at each sync",
  ),
  int("ref_model_sync_steps", 64, { min: 1 }).doc("TR-DPO: optimizer steps between reference syncs"),
  float("rpo_alpha", null, { min: 0, trl: ["0.9", "0.29"] }).doc(
    "RPO: add rpo_alpha × the chosen completions' NLL to the loss; unset: off",
  ),
  floats("loss_weights", null, { min: 0, trl: "0.20" }).doc(
    "one weight ≥ 0 per entry of loss_type; unset: 1 each",
  ),
  oneOf("f_divergence_type", F_DIVERGENCE_TYPES, "reverse_kl", { trl: "0.9.6" }).doc(
    "divergence whose score replaces each log-ratio in the loss",
  ),
  float("f_alpha_divergence_coef", 0.5, { trl: "0.9.6" }).doc(
    "a of alpha_divergence (0.5 as in SPEC.md and TRL 1.x; TRL 0.9–0.2x defaulted to 1.0)",
  ),
  bool("use_weighting", false, { trl: "0.12" }).doc(
    "WPO: weight each pair's loss by the policy's own probability of its completions",
  ),
  float("ld_alpha", null, { min: 0, max: 1, trl: "0.18" }).doc(
    "LD-DPO, in [0, 1]: weight of the longer completion's tokens past the shorter one's length; unset: off",
  ),
  float("discopop_tau", 0.05, { gt: 0, trl: "0.13" }).doc("τ > 0 of the discopop loss"),
  int("precompute_ref_batch_size", null, { min: 1, trl: "0.13" }).doc(
    "batch size of the reference pass of precompute_ref_log_probs; unset: the per-device batch size",
  ),
];

/** The training arguments, in DPO's words (transformers' TrainingArguments, as TRL's DPOConfig inherits them). */
const DPO_TRAINING_ROWS = withDocs(TRAINING_ROWS, {
  per_device_train_batch_size: "preference pairs per training micro-batch",
  per_device_eval_batch_size: "preference pairs per evaluation batch",
  learning_rate: "peak AdamW learning rate (TRL ≥ 0.12 changed its DPO default to 1e-6)",
  eval_strategy: "when to evaluate on dataset_test_split: never, every eval_steps, or after each epoch",
});

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
    dataset_streaming:
      "webdpo reads dataset files row by row and tokenizes them once before training; remove it",
    streaming: "webdpo reads dataset files row by row and tokenizes them once before training; remove it",
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

const TRL_09: TrlAvailability = { since: "0.9" };
const section = (group: FieldGroup, rows: readonly Field[]): FieldSpec[] =>
  rows.map((f) => Object.freeze({ ...f, group, trl: f.trl === undefined ? TRL_09 : f.trl }));

/** Every key of the table, in `--help` order. */
export const FIELDS: readonly FieldSpec[] = [
  ...section("script", SCRIPT_ROWS),
  ...section("dpo", DPO_ROWS),
  ...section("training", DPO_TRAINING_ROWS),
];

/** The table's rows by snake_case name and by camelCase name. */
export const FIELD_BY_NAME: ReadonlyMap<string, FieldSpec> = new Map(
  FIELDS.flatMap((f) => [[f.name, f], [f.camel, f]] as const),
);

/** The fields of DPOConfig (every key but the script keys). */
export const CONFIG_FIELDS: readonly FieldSpec[] = FIELDS.filter((f) => f.group !== "script");
/** The script keys of `webdpo train`. */
export const SCRIPT_FIELDS: readonly FieldSpec[] = FIELDS.filter((f) => f.group === "script");

// ---- TypeScript types of the table ----

/** The values of the DPO options (camelCase), as the DPO rows type them. */
export interface DPOOptionValues {
  readonly beta: number;
  readonly labelSmoothing: number;
  readonly lossType: LossTypeName | readonly LossTypeName[];
  readonly labelPadTokenId: number;
  readonly paddingValue: number | null;
  readonly paddingFree: boolean;
  readonly prefixSharing: boolean;
  readonly truncationMode: "keep_end" | "keep_start";
  readonly maxLength: number | null;
  readonly maxPromptLength: number | null;
  readonly maxTargetLength: number | null;
  readonly isEncoderDecoder: boolean | null;
  readonly disableDropout: boolean;
  readonly generateDuringEval: boolean;
  readonly precomputeRefLogProbs: boolean;
  readonly datasetNumProc: number | null;
  readonly modelInitKwargs: Readonly<Record<string, unknown>> | null;
  readonly refModelInitKwargs: Readonly<Record<string, unknown>> | null;
  readonly modelAdapterName: string | null;
  readonly refAdapterName: string | null;
  readonly referenceFree: boolean;
  readonly forceUseRefModel: boolean;
  readonly syncRefModel: boolean;
  readonly refModelMixupAlpha: number;
  readonly refModelSyncSteps: number;
  readonly rpoAlpha: number | null;
  readonly lossWeights: readonly number[] | null;
  readonly fDivergenceType: typeof F_DIVERGENCE_TYPES[number];
  readonly fAlphaDivergenceCoef: number;
  readonly useWeighting: boolean;
  readonly ldAlpha: number | null;
  readonly discopopTau: number;
  readonly precomputeRefBatchSize: number | null;
}

const _rowsMatch: SameType<ConfigValues<typeof DPO_ROWS[number]>, DPOOptionValues> = true;

/** The values of every DPOConfig field after construction (camelCase). */
export interface DPOConfigValues extends DPOOptionValues, TrainingValues {}

/** What `new DPOConfig(...)` takes: `outputDir` and any other fields (camelCase); the rest get TRL's defaults. */
export type DPOConfigInit =
  & { outputDir: string }
  & { -readonly [K in keyof DPOConfigValues]?: DPOConfigValues[K] };

/** The script keys of `webdpo train` after parsing (camelCase). */
export type TrainScriptArgs = ConfigValues<typeof SCRIPT_ROWS[number]>;
