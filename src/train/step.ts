/**
 * One optimizer step: each micro-batch's loss (recorded for backward) goes backward scaled by 1 / micro-batches,
 * releasing the graph as it goes, so the gradients accumulate as their mean; then the global gradient norm,
 * clipping and the fused AdamW update in one pass (no readback), the gradients dropped, the pool trimmed, and the
 * schedule advanced.
 */
import "../autograd/backward.ts";
import { scale } from "../autograd/ops/scale.ts";
import { scope } from "../autograd/scope.ts";
import { trimPool } from "../gpu/queue.ts";
import type { AdamW } from "../optim/adamw.ts";
import type { LRScheduler } from "../optim/schedule.ts";
import type { Tensor } from "../tensor/tensor.ts";
import type { MetricWindow } from "./metric_window.ts";
import type { MicroBatchOutput } from "./options.ts";

/** What one step needs: its micro-batches' losses, where their metric packs go, the optimizer and schedule. */
export interface StepInput<E> {
  micro: E[][];
  /** Called before each micro-batch with its index. */
  before: (micro: number) => void;
  computeLoss: (examples: E[]) => MicroBatchOutput;
  window: MetricWindow;
  optimizer: AdamW;
  scheduler: LRScheduler;
  maxGradNorm: number;
}

/** Runs the step; returns the gradient norm before clipping (a kept GPU scalar) and the learning rate used. */
export function optimizerStep<E>(x: StepInput<E>): { norm: Tensor; lr: number } {
  for (const [m, examples] of x.micro.entries()) {
    x.before(m);
    x.window.push(scope(() => {
      const { loss, packed } = x.computeLoss(examples);
      scale(loss, 1 / x.micro.length).backward(undefined, { releaseGraph: true });
      return packed;
    }));
  }
  const norm = scope(() => x.optimizer.clipAndStep(x.maxGradNorm).keep());
  x.optimizer.zeroGrad();
  // free buffers this step did not take back are given back: what the pool holds does not grow with the steps
  trimPool();
  const lr = x.scheduler.lastLr()[0];
  x.scheduler.step();
  return { norm, lr };
}
