/**
 * The optimizer and learning-rate schedule a run builds from its options when the caller passes none, as
 * Hugging Face's `Trainer.create_optimizer_and_scheduler`: AdamW over the trainable parameters (a LoRA model's
 * adapter only) with no weight decay for biases and norm weights, and transformers' schedule with
 * `lr_scheduler_kwargs` (num_cycles, min_lr, min_lr_rate).
 */
import type { CausalLM } from "../models/causal_lm.ts";
import { namedTrainableParametersOf } from "../nn/lora.ts";
import { AdamW, weightDecayGroups } from "../optim/adamw.ts";
import { LRScheduler, type SchedulerType } from "../optim/schedule.ts";
import type { TrainingArgs } from "./args.ts";

/** AdamW over `model`'s trainable parameters; null when it has none. */
export function buildOptimizer(model: CausalLM, a: TrainingArgs): AdamW | null {
  const named = namedTrainableParametersOf(model);
  if (named.length === 0) return null;
  const groups = weightDecayGroups(named, a.weightDecay).filter((g) => g.params.length > 0);
  return new AdamW(groups, {
    lr: a.learningRate,
    betas: [a.adamBeta1, a.adamBeta2],
    eps: a.adamEpsilon,
    weightDecay: a.weightDecay,
  });
}

/** The schedule of `a.lrSchedulerType` over `maxSteps` steps. */
export function buildScheduler(opt: AdamW, a: TrainingArgs, maxSteps: number): LRScheduler {
  const kw = (a.lrSchedulerKwargs ?? {}) as { num_cycles?: number; min_lr?: number; min_lr_rate?: number };
  return new LRScheduler(opt, {
    type: a.lrSchedulerType as SchedulerType,
    numTrainingSteps: maxSteps,
    warmupSteps: a.warmupSteps,
    warmupRatio: a.warmupRatio,
    numCycles: kw.num_cycles,
    minLr: kw.min_lr,
    minLrRate: kw.min_lr_rate,
  });
}
