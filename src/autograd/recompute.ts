/**
 * Activations recomputed instead of kept: `recomputeOnUse(t, recompute)` gives `t`'s buffer back to the pool at
 * once and, when a backward (or anything else) next reads `t` or a view of it, runs `recompute()` (without
 * recording a graph) to make the values again. For an op output that later ops save for their backward but that
 * is cheap to make again from tensors kept anyway: in a Llama layer, the RMSNorm outputs (kept by the
 * projections' backward; RMSNorm's own backward keeps its input) and the SwiGLU output (kept by down_proj's
 * backward; SwiGLU's keeps gate and up). Memory at the peak (the start of backward) then drops by those tensors,
 * at the cost of one elementwise or row kernel each during backward; the values are bit-identical (the same
 * kernel on the same inputs).
 *
 * Only tensors of a recorded graph are evicted (under no_grad nothing saves them). Call it after every op that
 * reads `t` in the forward has been recorded; `recompute` must only read tensors that stay alive until `t`'s
 * readers have run their backward. `setRecomputeActivations(false)` keeps every activation (tests compare).
 */
import { isGradEnabled, noGrad } from "./grad_mode.ts";
import type { Tensor } from "../tensor/tensor.ts";
import { untrack } from "../tensor/track.ts";

let enabled = true;

/** Turns recomputation on (the default) or off; returns the previous setting. */
export function setRecomputeActivations(on: boolean): boolean {
  const prev = enabled;
  enabled = on;
  return prev;
}

/** Evicts `t`'s values now and recomputes them with `recompute()` when they are next read (see the header). */
export function recomputeOnUse(t: Tensor, recompute: () => Tensor): void {
  if (!enabled || !isGradEnabled() || !t.node || !t.storage.resident) return;
  const shape = t.shape.join();
  t.storage.evict(() => {
    const r = noGrad(recompute);
    if (r.shape.join() !== shape) {
      throw new Error(`recomputeOnUse: recomputed [${r.shape}] for a tensor of shape [${shape}]`);
    }
    untrack(r); // its buffer is handed to the evicted storage; nothing else may release it
    return r.storage;
  });
}
