/**
 * `record()` is how an op joins the graph: given its inputs, its output and its backward closure (micrograd's
 * `_backward`), it marks the output as needing a gradient when any input does and grad mode is on.
 */
import type { Tensor } from "../tensor/tensor.ts";
import { isGradEnabled } from "./grad_mode.ts";

/** Gradients for each input given the output's gradient; null where an input gets none. */
export type BackwardFn = (gradOutput: Tensor) => (Tensor | null)[];

export function record(op: string, inputs: readonly Tensor[], out: Tensor, backward: BackwardFn): Tensor {
  for (const t of inputs) t.assertAlive();
  if (isGradEnabled() && inputs.some((t) => t.requiresGrad)) {
    out.requiresGrad = true;
    out.node = { op, inputs, backward };
  }
  return out;
}

/** True when the op should build backward state (saves work in forward when no input needs a gradient). */
export function needsGrad(...inputs: Tensor[]): boolean {
  return isGradEnabled() && inputs.some((t) => t.requiresGrad);
}
