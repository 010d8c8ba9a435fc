/**
 * Gradient checkpointing: `checkpoint(fn, x, params)` runs `fn(x)` without recording its graph (its activations are
 * released at once) and recomputes it during backward: the recomputed graph is run backward immediately, adding the
 * parameters' gradients into their `.grad` and returning the input's. Memory for a stack of layers becomes one
 * layer's activations plus each layer's input, at the cost of a second forward per layer.
 */
import { backward } from "./backward.ts";
import { enableGrad, isGradEnabled, noGrad } from "./grad_mode.ts";
import { record } from "./record.ts";
import { scope } from "./scope.ts";
import { type Tensor, view } from "../tensor/tensor.ts";

export function checkpoint(fn: (x: Tensor) => Tensor, x: Tensor, params: readonly Tensor[]): Tensor {
  if (!isGradEnabled() || !(x.requiresGrad || params.some((p) => p.requiresGrad))) return fn(x);
  const out = noGrad(() => scope(() => fn(x)));
  return record("checkpoint", [x, ...params], out, (dy) => {
    const gx = enableGrad(() =>
      scope(() => {
        const xd = view(x, x.shape);
        xd.requiresGrad = x.requiresGrad;
        const y = fn(xd);
        backward(y, dy, { releaseGraph: true });
        const g = xd.grad;
        xd.grad = null;
        return g;
      })
    );
    return [gx, ...params.map(() => null)];
  });
}
