/**
 * What a trainer built on the loop takes and hands it: the options every trainer shares (TRL's Trainer
 * arguments besides the model, config, data and tokenizer), a micro-batch's output, and a trainer's own part of a
 * checkpoint.
 */
import { Dataset, type Row } from "../data/dataset.ts";
import type { CausalLM } from "../models/causal_lm.ts";
import type { AdamW } from "../optim/adamw.ts";
import type { LRScheduler } from "../optim/schedule.ts";
import type { Tensor } from "../tensor/tensor.ts";
import type { TrainingArgs } from "./args.ts";
import type { ProgressStream } from "./progress.ts";
import type { TrainerCallback, TrainerState } from "./state.ts";

/** The options every trainer takes besides its model, config, data and tokenizer. */
export interface TrainerOptions<S extends TrainerState = TrainerState> {
  callbacks?: TrainerCallback<S>[];
  /** [optimizer, scheduler]: replace the AdamW and schedule built from `args`. */
  optimizers?: [AdamW | null, LRScheduler | null];
  /** Extra evaluation metrics from the averaged eval metrics (returned keys get the eval_ prefix). */
  computeMetrics?: (metrics: Record<string, number>) => Record<string, number>;
  /** Where log lines go when no progress bar is drawn (tests pass a sink); default the platform's sink (the console). */
  log?: (line: string) => void;
  /** The terminal the progress bar is drawn on (default the host's: stderr under Deno; a bar only when it is a terminal). */
  progressStream?: ProgressStream;
  /** Stops training like Ctrl-C once aborted: after the current step, with a checkpoint. */
  stopSignal?: AbortSignal;
  /** Listen for SIGINT (Ctrl-C) during `train()`. */
  handleSignals?: boolean;
}

/** What a subclass hands the loop. */
export interface TrainerSetup<S extends TrainerState> extends TrainerOptions<S> {
  model: CausalLM;
  /** Any tokenizer; one with `save(dir)` writes its files next to the weights. */
  tokenizer: object;
  trainingArgs: TrainingArgs;
  trainDataset: Dataset | Row[];
  evalDataset?: Dataset | Row[] | null;
  state: S;
}

/** The loss and metrics of one micro-batch: `loss` for backward, `packed` ([metricSlots], kept) for the logs. */
export interface MicroBatchOutput {
  loss: Tensor;
  packed: Tensor;
}

/** The own files of a trainer in a checkpoint, gathered before the checkpoint folder is written. */
export interface CheckpointExtras {
  /** Fields added to webdpo_state.json. */
  fields: Record<string, unknown>;
  /** Writes the trainer's own files into the folder being made. */
  write(dir: string): Promise<void>;
}

/** Rows as a Dataset (a Dataset as it is). */
export function asDataset(d: Dataset | Row[]): Dataset {
  return Array.isArray(d) ? Dataset.fromRows(d) : d;
}
