/**
 * `TrainingArgs`: the options the training loop reads, under Hugging Face's `TrainingArguments` names (camelCase).
 * `DPOConfig` has every one of them; a trainer with a smaller config (SFT) fills the rest with what turns the
 * feature off (no scheduled evaluation or checkpoints, no metrics file).
 */

export interface TrainingArgs {
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
  readonly lrSchedulerType: string;
  /** num_cycles, min_lr, min_lr_rate. */
  readonly lrSchedulerKwargs: Readonly<Record<string, unknown>> | null;
  readonly warmupRatio: number;
  readonly warmupSteps: number;
  /** An interval in steps (≥ 1) or a fraction of max_steps (< 1); so are evalSteps and saveSteps. */
  readonly loggingSteps: number;
  readonly loggingFirstStep: boolean;
  /** null: as false. */
  readonly disableTqdm: boolean | null;
  /** "jsonl" or "all" (or null) write output_dir/metrics.jsonl; "none" writes nothing. */
  readonly reportTo: string | readonly string[] | null;
  /** "no", "steps" or "epoch". */
  readonly evalStrategy: string;
  /** null: loggingSteps. */
  readonly evalSteps: number | null;
  /** "no", "steps" or "epoch" (a stop request saves in any case). */
  readonly saveStrategy: string;
  readonly saveSteps: number;
  readonly saveTotalLimit: number | null;
  /** A checkpoint folder, true for the latest in outputDir, or null / false. */
  readonly resumeFromCheckpoint: boolean | string | null;
}

/** Whether the run writes output_dir/metrics.jsonl (report_to unset, "jsonl" or "all"). */
export function writesJsonl(args: TrainingArgs): boolean {
  const r = args.reportTo;
  return r === null || r.includes("jsonl") || r.includes("all");
}
