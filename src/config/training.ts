/**
 * The training arguments: the rows of Hugging Face's `TrainingArguments` that the loop of src/train reads (the
 * `TrainingArgs` of src/train/args.ts), with transformers' defaults, and the rules between them. Every trainer's
 * config starts from these rows: DPOConfig takes them as they are (with its own wording for four of them),
 * SFTConfig with TRL's SFTConfig defaults where they differ.
 *
 * @module
 */
import { SCHEDULER_TYPES } from "../optim/schedule.ts";
import { nearestKey } from "../util/nearest.ts";
import {
  bool,
  boolOrPath,
  type ConfigValues,
  float,
  int,
  listOf,
  map,
  oneOf,
  REQUIRED,
  type SameType,
  steps,
  str,
} from "./field.ts";
import type { RuleContext } from "./schema.ts";
import { showValue } from "./voice.ts";

/** Learning-rate schedules (transformers' names) that webdpo implements. */
export const LR_SCHEDULER_TYPES = SCHEDULER_TYPES;
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

/** The training arguments, in `--help` order. */
export const TRAINING_ROWS = [
  str("output_dir", REQUIRED).doc(
    "folder for checkpoints, metrics.jsonl, trainer_state.json and the final model",
  ),
  int("seed", 42, { min: 0 }).doc("random seed of the run (initialisation, dropout, sampling)"),
  int("data_seed", null, { min: 0 }).doc("seed of the data order; unset: seed"),
  int("per_device_train_batch_size", 8, { min: 1 }).doc("examples per training micro-batch"),
  int("per_device_eval_batch_size", 8, { min: 1 }).doc("examples per evaluation batch"),
  int("gradient_accumulation_steps", 1, { min: 1 }).doc(
    "micro-batches whose gradients are summed before each optimizer step",
  ),
  float("learning_rate", 5e-5, { min: 0 }).doc("peak AdamW learning rate"),
  float("weight_decay", 0, { min: 0 }).doc("AdamW decoupled weight decay"),
  float("adam_beta1", 0.9, { min: 0, lt: 1 }).doc("AdamW β1 in [0, 1)"),
  float("adam_beta2", 0.999, { min: 0, lt: 1 }).doc("AdamW β2 in [0, 1)"),
  float("adam_epsilon", 1e-8, { gt: 0 }).doc("AdamW ε > 0"),
  float("max_grad_norm", 1, { min: 0 }).doc("clip the global gradient norm to this; 0 turns clipping off"),
  float("num_train_epochs", 3, { gt: 0 }).doc(
    "passes over the training set (a fraction allowed); ignored when max_steps > 0",
  ),
  int("max_steps", -1, { min: -1 }).doc("optimizer steps of the run; -1: derived from num_train_epochs"),
  oneOf("lr_scheduler_type", LR_SCHEDULER_TYPES, "linear").doc(
    "learning-rate schedule (transformers' formulas)",
  ),
  map("lr_scheduler_kwargs", {}).doc(
    "schedule options: num_cycles (cosine, cosine_with_min_lr); min_lr or min_lr_rate (cosine_with_min_lr)",
  ),
  float("warmup_ratio", 0, { min: 0, max: 1 }).doc(
    "warmup as a fraction in [0, 1] of the run's steps, rounded up",
  ),
  int("warmup_steps", 0, { min: 0 }).doc("warmup steps; when > 0 it overrides warmup_ratio"),
  steps("logging_steps", 500).doc(
    "log metrics every this many optimizer steps (a number < 1: that fraction of the run, rounded up)",
  ),
  bool("logging_first_step", false).doc("also log after the first optimizer step"),
  oneOf("eval_strategy", INTERVAL_STRATEGIES, "no").doc(
    "when to evaluate on the eval dataset: never, every eval_steps, or after each epoch",
  ),
  steps("eval_steps", null).doc(
    "evaluation interval for eval_strategy 'steps' (< 1: a fraction of the run); unset: logging_steps",
  ),
  oneOf("save_strategy", INTERVAL_STRATEGIES, "steps").doc(
    "when to write output_dir/checkpoint-<step>: never, every save_steps, or after each epoch",
  ),
  steps("save_steps", 500).doc("checkpoint interval for save_strategy 'steps' (< 1: a fraction of the run)"),
  int("save_total_limit", null, { min: 1 }).doc(
    "keep at most this many checkpoints, deleting the oldest; unset: keep all",
  ),
  boolOrPath("resume_from_checkpoint", null).doc(
    "true: continue from the latest complete checkpoint in output_dir; a path: from that checkpoint",
  ),
  listOf("report_to", REPORT_TO_VALUES, null).doc(
    "metric sinks: jsonl (output_dir/metrics.jsonl), all (= jsonl), none; unset: all. TRL lacks jsonl",
  ),
  bool("disable_tqdm", null).doc(
    "no progress bar (plain log lines instead); unset: a bar when stderr is a terminal",
  ),
  bool("gradient_checkpointing", false).doc(
    "recompute activations layer by layer in the backward pass: less memory, about 1/3 more compute",
  ),
];

/**
 * The values of the training arguments (camelCase), as the rows above type them; less gradientCheckpointing, what
 * the loop of src/train reads (`TrainingArgs`).
 */
export interface TrainingValues {
  /** Checkpoints and metrics.jsonl go here. */
  readonly outputDir: string;
  readonly seed: number;
  /** The seed of the data order (null: `seed`). */
  readonly dataSeed: number | null;
  readonly perDeviceTrainBatchSize: number;
  readonly perDeviceEvalBatchSize: number;
  readonly gradientAccumulationSteps: number;
  readonly learningRate: number;
  readonly weightDecay: number;
  readonly adamBeta1: number;
  readonly adamBeta2: number;
  readonly adamEpsilon: number;
  /** ≤ 0: no clipping (the norm is still computed and logged). */
  readonly maxGradNorm: number;
  readonly numTrainEpochs: number;
  /** > 0 overrides numTrainEpochs. */
  readonly maxSteps: number;
  readonly lrSchedulerType: typeof LR_SCHEDULER_TYPES[number];
  /** num_cycles, min_lr, min_lr_rate. */
  readonly lrSchedulerKwargs: Readonly<Record<string, unknown>>;
  readonly warmupRatio: number;
  readonly warmupSteps: number;
  /** An interval in steps (≥ 1) or a fraction of max_steps (< 1); so are evalSteps and saveSteps. */
  readonly loggingSteps: number;
  readonly loggingFirstStep: boolean;
  readonly evalStrategy: typeof INTERVAL_STRATEGIES[number];
  /** null: loggingSteps. */
  readonly evalSteps: number | null;
  /** A stop request saves whatever the strategy. */
  readonly saveStrategy: typeof INTERVAL_STRATEGIES[number];
  readonly saveSteps: number;
  readonly saveTotalLimit: number | null;
  /** A checkpoint folder, true for the latest in outputDir, or null / false. */
  readonly resumeFromCheckpoint: boolean | string | null;
  /** null, "jsonl" or "all" write output_dir/metrics.jsonl; "none" writes nothing. */
  readonly reportTo: readonly (typeof REPORT_TO_VALUES[number])[] | null;
  /** null: as false. */
  readonly disableTqdm: boolean | null;
  readonly gradientCheckpointing: boolean;
}

const _rowsMatch: SameType<ConfigValues<typeof TRAINING_ROWS[number]>, TrainingValues> = true;

/**
 * The checks between training arguments: the run length, the schedule's options, report_to, and eval_steps'
 * fallback to logging_steps (transformers' rule).
 */
export function checkTrainingArgs(r: RuleContext): void {
  const { v, n, fail } = r;
  if (v.maxSteps === 0) fail(`${n("max_steps")} must be -1 (use ${n("num_train_epochs")}) or ≥ 1; got 0`);
  const sched = v.lrSchedulerType as keyof typeof LR_SCHEDULER_KWARGS;
  const kwargs = v.lrSchedulerKwargs as Record<string, unknown>;
  const allowed = LR_SCHEDULER_KWARGS[sched];
  const kw = n("lr_scheduler_kwargs");
  for (const [k, x] of Object.entries(kwargs)) {
    if (!allowed.includes(k)) {
      const near = allowed.length ? nearestKey(k, allowed) : null;
      fail(
        `${kw}: '${k}' is not an option of the '${sched}' schedule` +
          (near ? ` (did you mean '${near}'?)` : "") +
          `; it takes ${allowed.length ? allowed.join(", ") : "none"}`,
      );
    }
    if (typeof x !== "number" || !Number.isFinite(x)) {
      fail(`${kw}.${k} must be a finite number; got ${showValue(x)}`);
    }
  }
  const { num_cycles: cycles, min_lr: minLr, min_lr_rate: rate } = kwargs as Record<
    string,
    number | undefined
  >;
  if (cycles !== undefined && !(cycles > 0)) fail(`${kw}.num_cycles must be > 0; got ${cycles}`);
  if (minLr !== undefined && !(minLr >= 0)) fail(`${kw}.min_lr must be ≥ 0; got ${minLr}`);
  if (rate !== undefined && !(rate >= 0 && rate <= 1)) {
    fail(`${kw}.min_lr_rate must be in [0, 1]; got ${rate}`);
  }
  if (sched === "cosine_with_min_lr" && (minLr !== undefined) === (rate !== undefined)) {
    fail(
      `${n("lr_scheduler_type")} 'cosine_with_min_lr' needs exactly one of min_lr and min_lr_rate in ` +
        `${kw} (for example {"min_lr_rate": 0.1}); got ${showValue(kwargs)}`,
    );
  }
  const rt = v.reportTo as string[] | null;
  if (rt !== null && rt.includes("none") && rt.length > 1) {
    fail(`${n("report_to")}: 'none' cannot be combined with other values; got ${rt.join(", ")}`);
  }
  if (v.evalStrategy === "steps" && v.evalSteps === null) v.evalSteps = v.loggingSteps;
}

/** Warnings for interval keys their strategy ignores. */
export function warnUnusedIntervals(r: RuleContext): void {
  const { v, n } = r;
  r.unusedUnless("eval_steps", v.evalStrategy === "steps", `${n("eval_strategy")} is not 'steps'`);
  r.unusedUnless("save_steps", v.saveStrategy === "steps", `${n("save_strategy")} is not 'steps'`);
  r.unusedUnless("save_total_limit", v.saveStrategy !== "no", `${n("save_strategy")} is 'no'`);
}

/** Warnings for keys another key overrides (warmup_steps over warmup_ratio, max_steps over num_train_epochs). */
export function warnOverridden(r: RuleContext): void {
  const { v, n } = r;
  if ((v.warmupSteps as number) > 0 && (v.warmupRatio as number) > 0) {
    r.warn(`${n("warmup_steps")} (${v.warmupSteps}) overrides ${n("warmup_ratio")} (${v.warmupRatio})`);
  }
  if (r.changed("num_train_epochs") && (v.maxSteps as number) > 0) {
    r.warn(`${n("num_train_epochs")} has no effect: ${n("max_steps")} (${v.maxSteps}) sets the run length`);
  }
}
