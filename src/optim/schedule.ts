/**
 * Learning-rate schedules with Hugging Face transformers' formulas (transformers.optimization), as multipliers
 * of the initial learning rate for optimizer step `step` (0-based: torch's LambdaLR gives the first update the
 * multiplier of step 0, and each `scheduler.step()` after an update moves on by one).
 *
 * With W warmup steps and N training steps, for step s < W every schedule except `constant` gives s / max(1, W);
 * after warmup, with progress q = (s − W) / max(1, N − W):
 *   linear:                max(0, (N − s) / max(1, N − W))
 *   cosine:                max(0, ½·(1 + cos(π · numCycles · 2 · q)))             (numCycles 0.5 by default)
 *   cosine_with_min_lr:    max(0, ½·(1 + cos(π · numCycles · 2 · q))·(1 − r) + r)   (r = minLrRate, or minLr / lr)
 *   constant_with_warmup:  1
 *   constant:              1 at every step (no warmup, as transformers' get_constant_schedule)
 * Warmup steps are `warmupSteps` when it is > 0, else ⌈warmupRatio · N⌉ (TrainingArguments.get_warmup_steps).
 */
import { editDistance } from "../util/nearest.ts";

/** The schedule names of transformers' SchedulerType that webdpo implements. */
export const SCHEDULER_TYPES = [
  "linear",
  "cosine",
  "constant",
  "constant_with_warmup",
  "cosine_with_min_lr",
] as const;
export type SchedulerType = typeof SCHEDULER_TYPES[number];

export interface ScheduleOptions {
  /** The schedule (TrainingArguments.lr_scheduler_type), default "linear" as in transformers. */
  type?: SchedulerType;
  /** Total optimizer steps of the run (needed by every schedule but the constant ones). */
  numTrainingSteps?: number;
  /** Warmup steps; when > 0 it wins over `warmupRatio`. */
  warmupSteps?: number;
  /** Warmup as a fraction of `numTrainingSteps`, rounded up. */
  warmupRatio?: number;
  /** Cosine cycles (default 0.5: one half-wave from the peak to the floor). */
  numCycles?: number;
  /** cosine_with_min_lr: the floor as an absolute learning rate (needs `lr`). */
  minLr?: number;
  /** cosine_with_min_lr: the floor as a fraction of the initial learning rate. */
  minLrRate?: number;
}

export interface LrAtOptions extends ScheduleOptions {
  /** The initial (peak) learning rate. */
  lr: number;
}

function nonNegInt(what: string, v: number): void {
  if (!Number.isInteger(v) || v < 0) throw new RangeError(`${what} must be an integer ≥ 0, got ${v}`);
}

function closest(name: string): string {
  let best: string = SCHEDULER_TYPES[0];
  let bestD = Infinity;
  for (const c of SCHEDULER_TYPES) {
    const d = editDistance(name, c);
    if (d < bestD) [best, bestD] = [c, d];
  }
  return best;
}

/** The warmup steps of a run: `warmupSteps` if > 0, else ⌈warmupRatio · numTrainingSteps⌉. */
export function warmupStepsFor(
  numTrainingSteps: number,
  opts: Pick<ScheduleOptions, "warmupSteps" | "warmupRatio">,
): number {
  const steps = opts.warmupSteps ?? 0;
  nonNegInt("warmupSteps", steps);
  if (steps > 0) return steps;
  const ratio = opts.warmupRatio ?? 0;
  if (!(ratio >= 0 && ratio <= 1)) throw new RangeError(`warmupRatio must be in [0, 1], got ${ratio}`);
  return Math.ceil(numTrainingSteps * ratio);
}

/** A schedule resolved to the numbers its formula needs. */
interface Resolved {
  type: SchedulerType;
  total: number;
  warmup: number;
  cycles: number;
  minRate: number;
}

function resolve(opts: ScheduleOptions, lr: number | undefined): Resolved {
  const type = opts.type ?? "linear";
  if (!(SCHEDULER_TYPES as readonly string[]).includes(type)) {
    throw new RangeError(
      `unknown lr scheduler type "${type}"; did you mean "${closest(type)}"? (supported: ${
        SCHEDULER_TYPES.join(", ")
      })`,
    );
  }
  const needsTotal = type !== "constant" && type !== "constant_with_warmup";
  if (needsTotal && opts.numTrainingSteps === undefined) {
    throw new RangeError(`the "${type}" schedule needs numTrainingSteps`);
  }
  const total = opts.numTrainingSteps ?? 0;
  nonNegInt("numTrainingSteps", total);
  const warmup = type === "constant" ? 0 : warmupStepsFor(total, opts);
  const cycles = opts.numCycles ?? 0.5;
  if (!Number.isFinite(cycles)) throw new RangeError(`numCycles must be finite, got ${cycles}`);
  let minRate = 0;
  if (type === "cosine_with_min_lr") {
    const hasLr = opts.minLr !== undefined;
    const hasRate = opts.minLrRate !== undefined;
    if (hasLr && hasRate) throw new RangeError("cosine_with_min_lr: set only one of minLr and minLrRate");
    if (!hasLr && !hasRate) throw new RangeError("cosine_with_min_lr: set one of minLr and minLrRate");
    if (hasLr) {
      if (lr === undefined || !(lr > 0)) {
        throw new RangeError(`cosine_with_min_lr: minLr needs the initial learning rate (> 0), got ${lr}`);
      }
      minRate = opts.minLr! / lr;
    } else minRate = opts.minLrRate!;
    if (!Number.isFinite(minRate)) throw new RangeError(`cosine_with_min_lr: invalid floor ${minRate}`);
  }
  return { type, total, warmup, cycles, minRate };
}

function factor(r: Resolved, step: number): number {
  if (r.type === "constant") return 1;
  if (step < r.warmup) return step / Math.max(1, r.warmup);
  switch (r.type) {
    case "constant_with_warmup":
      return 1;
    case "linear":
      return Math.max(0, (r.total - step) / Math.max(1, r.total - r.warmup));
    case "cosine":
    case "cosine_with_min_lr": {
      const progress = (step - r.warmup) / Math.max(1, r.total - r.warmup);
      let f = 0.5 * (1 + Math.cos(Math.PI * r.cycles * 2 * progress));
      if (r.type === "cosine_with_min_lr") f = f * (1 - r.minRate) + r.minRate;
      return Math.max(0, f);
    }
  }
}

/** The schedule's multiplier of the initial learning rate at optimizer step `step` (0-based). */
export function lrLambda(step: number, opts: ScheduleOptions & { lr?: number }): number {
  nonNegInt("step", step);
  return factor(resolve(opts, opts.lr), step);
}

/** The learning rate at optimizer step `step` (0-based): `lr · lrLambda(step)`. */
export function lrAt(step: number, opts: LrAtOptions): number {
  return opts.lr * lrLambda(step, opts);
}

/** What a scheduler drives: groups with a current and an initial learning rate (an `AdamW`). */
export interface ScheduledOptimizer {
  groups: { lr: number; initialLr: number }[];
}

/**
 * torch's LambdaLR over transformers' schedule: on construction every group's lr becomes
 * initialLr · lambda(0); each `step()` (called after each optimizer step) moves to the next step's multiplier.
 * `minLr` is turned into a rate against the first group's initial learning rate, as transformers does with
 * the optimizer's default lr.
 */
export class LRScheduler {
  private readonly r: Resolved;
  /** The optimizer steps taken so far (torch's `last_epoch`). */
  stepCount = 0;

  constructor(readonly optimizer: ScheduledOptimizer, opts: ScheduleOptions = {}) {
    if (optimizer.groups.length === 0) {
      throw new RangeError("LRScheduler: the optimizer has no parameter groups");
    }
    this.r = resolve(opts, optimizer.groups[0].initialLr);
    this.apply();
  }

  /** Advances one optimizer step and sets every group's learning rate. */
  step(): void {
    this.stepCount++;
    this.apply();
  }

  /** The learning rate of every group now (torch's get_last_lr(); `learning_rate` in the logs is the first). */
  lastLr(): number[] {
    return this.optimizer.groups.map((g) => g.lr);
  }

  /** Checkpoint state: the number of steps taken. */
  state(): { stepCount: number } {
    return { stepCount: this.stepCount };
  }

  /** Restores a checkpoint's step count and sets the learning rates to match. */
  loadState(s: { stepCount: number }): void {
    nonNegInt("stepCount", s.stepCount);
    this.stepCount = s.stepCount;
    this.apply();
  }

  /** The multiplier at the current step. */
  get factor(): number {
    return factor(this.r, this.stepCount);
  }

  private apply(): void {
    const f = this.factor;
    for (const g of this.optimizer.groups) g.lr = g.initialLr * f;
  }
}
