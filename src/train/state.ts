/**
 * What the training loop shares with its callers: Hugging Face's `TrainerState` (camelCase), the callback hooks,
 * `train()`'s result, and the error that stops a run. Every trainer (DPO, SFT) uses these types; a trainer whose
 * state carries more (SFT's token count) extends `TrainerState`.
 */
import { WebDPOError } from "../gpu/errors.ts";

/** An error that stops training (a NaN loss, an unusable dataset, ...). */
export class TrainingError extends WebDPOError {}

/** What callbacks see; the layout of Hugging Face's TrainerState (camelCase). */
export interface TrainerState {
  globalStep: number;
  /** Fractional epoch (steps done / steps per epoch). */
  epoch: number;
  maxSteps: number;
  numTrainEpochs: number;
  stepsPerEpoch: number;
  loggingSteps: number;
  evalSteps: number;
  saveSteps: number;
  trainBatchSize: number;
  /** Every log and evaluation, as Hugging Face's `log_history`. */
  logHistory: Record<string, number>[];
  bestMetric: number | null;
  bestModelCheckpoint: string | null;
}

/** A fresh state: step 0, nothing planned or logged yet. */
export function initialTrainerState(trainBatchSize: number): TrainerState {
  return {
    globalStep: 0,
    epoch: 0,
    maxSteps: 0,
    numTrainEpochs: 0,
    stepsPerEpoch: 0,
    loggingSteps: 0,
    evalSteps: 0,
    saveSteps: 0,
    trainBatchSize,
    logHistory: [],
    bestMetric: null,
    bestModelCheckpoint: null,
  };
}

/** Hooks into the training loop (any subset). Each may be async. */
export interface TrainerCallback<S extends TrainerState = TrainerState> {
  onTrainBegin?(state: S): void | Promise<void>;
  onStepEnd?(state: S): void | Promise<void>;
  onLog?(state: S, logs: Record<string, number>): void | Promise<void>;
  onEvaluate?(state: S, metrics: Record<string, number>): void | Promise<void>;
  onSave?(state: S, checkpointDir: string): void | Promise<void>;
  onTrainEnd?(state: S): void | Promise<void>;
}

/** The result of `train()`. */
export interface TrainOutput {
  globalStep: number;
  /** The mean training loss over the whole run (a resumed run included). */
  trainingLoss: number;
  /** train_loss, train_runtime, train_samples_per_second, train_steps_per_second, epoch. */
  metrics: Record<string, number>;
  /** True when Ctrl-C, `requestStop()` or `stopSignal` stopped the run before max_steps. */
  interrupted: boolean;
  /** The last checkpoint written by this `train()` call, or null. */
  checkpoint: string | null;
}
