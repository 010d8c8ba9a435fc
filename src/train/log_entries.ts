/**
 * The entries a run logs, in the key order TRL's logs have: a training log (loss, grad_norm, learning_rate, the
 * trainer's other metrics, epoch, step) and the run's summary (train_runtime, samples and steps per second,
 * train_loss, epoch). Epochs and rates are rounded to four decimals, as Hugging Face's Trainer rounds them.
 */

/** Four decimals. */
export function round(x: number): number {
  return Math.round(x * 1e4) / 1e4;
}

/** A training log entry: `metrics` are the window's averages (loss first when present). */
export function trainLogEntry(
  metrics: Record<string, number>,
  gradNorm: number,
  learningRate: number,
  epoch: number,
  step: number,
): Record<string, number> {
  const { loss, ...rest } = metrics;
  return {
    ...(loss !== undefined ? { loss } : {}),
    grad_norm: gradNorm,
    learning_rate: learningRate,
    ...rest,
    epoch: round(epoch),
    step,
  };
}

/** The run's summary: `steps` optimizer steps of `examplesPerStep` examples in `seconds`. */
export function runSummary(
  seconds: number,
  steps: number,
  examplesPerStep: number,
  trainingLoss: number,
  epoch: number,
): Record<string, number> {
  return {
    train_runtime: round(seconds),
    train_samples_per_second: round((steps * examplesPerStep) / seconds),
    train_steps_per_second: round(steps / seconds),
    train_loss: trainingLoss,
    epoch: round(epoch),
  };
}
