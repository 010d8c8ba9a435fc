/**
 * `SFTConfig`: the options of a supervised fine-tuning run (the subset of TRL's `SFTConfig` and the training
 * arguments it inherits that `SFTTrainer` implements), camelCase in TypeScript, validated at construction.
 *
 * One deliberate difference from TRL: `assistantOnlyLoss` defaults to true (TRL: false), because webdpo's
 * SFT stage exists to train chat models whose loss belongs on the assistant turns only.
 *
 * @module
 */
import { nearestKey } from "../dpo/config.ts";
import { WebDPOError } from "../gpu/errors.ts";
import { SCHEDULER_TYPES, type SchedulerType } from "../optim/schedule.ts";

/** An invalid SFT option: an unknown key, a value of the wrong type or out of range. */
export class SFTConfigError extends WebDPOError {}

/** Every option with its TRL / transformers default (TRL's `SFTConfig` values where they differ). */
export interface SFTConfigValues {
  /** Where `save()` writes by default (TRL: output_dir). */
  outputDir: string;
  seed: number;
  /** Seed of the data order (default: `seed`). */
  dataSeed: number | null;
  perDeviceTrainBatchSize: number;
  perDeviceEvalBatchSize: number;
  gradientAccumulationSteps: number;
  /** TRL's SFTConfig default 2e-5. */
  learningRate: number;
  weightDecay: number;
  adamBeta1: number;
  adamBeta2: number;
  adamEpsilon: number;
  /** ≤ 0 disables clipping. */
  maxGradNorm: number;
  numTrainEpochs: number;
  /** > 0 overrides numTrainEpochs; -1 = use epochs. */
  maxSteps: number;
  lrSchedulerType: SchedulerType;
  warmupRatio: number;
  warmupSteps: number;
  /** Log every this many optimizer steps (TRL's SFTConfig: 10). */
  loggingSteps: number;
  loggingFirstStep: boolean;
  /** Turn the redrawn progress bar off (log lines remain). */
  disableTqdm: boolean;
  gradientCheckpointing: boolean;
  /** Sequences are truncated to this many tokens (keeping the start), TRL's default 1024. */
  maxLength: number;
  /** Conversational rows: score only the assistant turns (TRL default false; here true, see the module doc). */
  assistantOnlyLoss: boolean;
  /** Prompt/completion rows: score only the completion (null = true, as TRL's None). */
  completionOnlyLoss: boolean | null;
  /** The column of plain language-modelling rows. */
  datasetTextField: string;
  /** The label value that is not scored. */
  labelPadTokenId: number;
}

export type SFTConfigInit = Partial<SFTConfigValues>;

const DEFAULTS: SFTConfigValues = {
  outputDir: "outputs/sft",
  seed: 42,
  dataSeed: null,
  perDeviceTrainBatchSize: 8,
  perDeviceEvalBatchSize: 8,
  gradientAccumulationSteps: 1,
  learningRate: 2e-5,
  weightDecay: 0,
  adamBeta1: 0.9,
  adamBeta2: 0.999,
  adamEpsilon: 1e-8,
  maxGradNorm: 1,
  numTrainEpochs: 3,
  maxSteps: -1,
  lrSchedulerType: "linear",
  warmupRatio: 0,
  warmupSteps: 0,
  loggingSteps: 10,
  loggingFirstStep: false,
  disableTqdm: false,
  gradientCheckpointing: false,
  maxLength: 1024,
  assistantOnlyLoss: true,
  completionOnlyLoss: null,
  datasetTextField: "text",
  labelPadTokenId: -100,
};

const KEYS = Object.keys(DEFAULTS) as (keyof SFTConfigValues)[];

function fail(msg: string): never {
  throw new SFTConfigError(`SFTConfig: ${msg}`);
}

function posInt(v: SFTConfigValues, k: keyof SFTConfigValues): void {
  const x = v[k];
  if (typeof x !== "number" || !Number.isInteger(x) || x < 1) fail(`${k} must be an integer ≥ 1, got ${x}`);
}

function nonNeg(v: SFTConfigValues, k: keyof SFTConfigValues): void {
  const x = v[k];
  if (typeof x !== "number" || !(x >= 0) || !Number.isFinite(x)) fail(`${k} must be a number ≥ 0, got ${x}`);
}

/** The options of an SFT run; `new SFTConfig({ learningRate: 1e-3, maxSteps: 200 })`. */
export class SFTConfig implements SFTConfigValues {
  outputDir!: string;
  seed!: number;
  dataSeed!: number | null;
  perDeviceTrainBatchSize!: number;
  perDeviceEvalBatchSize!: number;
  gradientAccumulationSteps!: number;
  learningRate!: number;
  weightDecay!: number;
  adamBeta1!: number;
  adamBeta2!: number;
  adamEpsilon!: number;
  maxGradNorm!: number;
  numTrainEpochs!: number;
  maxSteps!: number;
  lrSchedulerType!: SchedulerType;
  warmupRatio!: number;
  warmupSteps!: number;
  loggingSteps!: number;
  loggingFirstStep!: boolean;
  disableTqdm!: boolean;
  gradientCheckpointing!: boolean;
  maxLength!: number;
  assistantOnlyLoss!: boolean;
  completionOnlyLoss!: boolean | null;
  datasetTextField!: string;
  labelPadTokenId!: number;

  constructor(init: SFTConfigInit = {}) {
    if (!init || typeof init !== "object") fail("expected an object of options");
    for (const [k, val] of Object.entries(init)) {
      if (!(KEYS as string[]).includes(k)) {
        const near = nearestKey(k, KEYS);
        fail(`unknown option "${k}"${near ? ` (did you mean "${near}"?)` : ""}`);
      }
      if (val === undefined) continue;
      const want = typeof DEFAULTS[k as keyof SFTConfigValues];
      const nullable = k === "dataSeed" || k === "completionOnlyLoss";
      if (!(nullable && val === null) && typeof val !== want && !(nullable && want === "object")) {
        fail(
          `${k} must be a ${nullable ? `${k === "dataSeed" ? "number" : "boolean"} or null` : want}, got ${
            JSON.stringify(val)
          }`,
        );
      }
    }
    const v = { ...DEFAULTS, ...Object.fromEntries(Object.entries(init).filter(([, x]) => x !== undefined)) };
    for (
      const k of ["perDeviceTrainBatchSize", "perDeviceEvalBatchSize", "gradientAccumulationSteps"] as const
    ) {
      posInt(v, k);
    }
    for (
      const k of ["learningRate", "weightDecay", "adamEpsilon", "warmupRatio", "numTrainEpochs"] as const
    ) {
      nonNeg(v, k);
    }
    for (const k of ["adamBeta1", "adamBeta2"] as const) {
      if (!(v[k] >= 0 && v[k] < 1)) fail(`${k} must be in [0, 1), got ${v[k]}`);
    }
    if (!Number.isFinite(v.maxGradNorm)) fail(`maxGradNorm must be finite, got ${v.maxGradNorm}`);
    if (!Number.isInteger(v.maxSteps) || v.maxSteps === 0 || v.maxSteps < -1) {
      fail(`maxSteps must be -1 (use numTrainEpochs) or an integer ≥ 1, got ${v.maxSteps}`);
    }
    if (v.maxSteps === -1 && !(v.numTrainEpochs > 0)) fail("numTrainEpochs must be > 0 when maxSteps is -1");
    if (!Number.isInteger(v.warmupSteps) || v.warmupSteps < 0) {
      fail(`warmupSteps must be an integer ≥ 0, got ${v.warmupSteps}`);
    }
    if (v.warmupRatio > 1) fail(`warmupRatio must be in [0, 1], got ${v.warmupRatio}`);
    if (!(v.loggingSteps > 0)) fail(`loggingSteps must be > 0, got ${v.loggingSteps}`);
    if (!Number.isInteger(v.maxLength) || v.maxLength < 2) {
      fail(`maxLength must be an integer ≥ 2, got ${v.maxLength}`);
    }
    if (!(SCHEDULER_TYPES as readonly string[]).includes(v.lrSchedulerType)) {
      fail(`lrSchedulerType must be one of ${SCHEDULER_TYPES.join(", ")}, got "${v.lrSchedulerType}"`);
    }
    if (!Number.isInteger(v.seed)) fail(`seed must be an integer, got ${v.seed}`);
    if (v.dataSeed !== null && !Number.isInteger(v.dataSeed)) {
      fail(`dataSeed must be an integer, got ${v.dataSeed}`);
    }
    if (!Number.isInteger(v.labelPadTokenId)) {
      fail(`labelPadTokenId must be an integer, got ${v.labelPadTokenId}`);
    }
    Object.assign(this, v);
  }
}
