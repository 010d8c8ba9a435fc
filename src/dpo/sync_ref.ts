/**
 * TR-DPO's reference update (`sync_ref_model`): after optimizer steps N, 2N, … (N = ref_model_sync_steps) every
 * reference parameter becomes (1 − α)·ref + α·policy, α = ref_model_mixup_alpha. In place, on the GPU.
 */
import { kernel } from "../gpu/kernel.ts";
import { dispatch, grid1d } from "../gpu/queue.ts";
import type { Tensor } from "../tensor/tensor.ts";

const K = kernel("lerp_inplace.wgsl");

/** ref ← (1 − alpha)·ref + alpha·policy for each pair of tensors (same shapes). */
export function mixInto(ref: readonly Tensor[], policy: readonly Tensor[], alpha: number): void {
  if (ref.length !== policy.length) {
    throw new RangeError(
      `sync_ref_model: ${ref.length} reference tensors but ${policy.length} policy tensors`,
    );
  }
  ref.forEach((r, i) => {
    const p = policy[i];
    if (r.size !== p.size) {
      throw new RangeError(`sync_ref_model: shapes [${r.shape}] and [${p.shape}] differ`);
    }
    if (r.size === 0) return;
    dispatch({
      kernel: K,
      params: { n: r.size, alpha },
      buffers: [r.binding, p.binding],
      workgroups: grid1d(r.size, 256),
    });
  });
}

/** Whether optimizer step `step` (numbered from 1) is followed by a synchronisation. */
export function isSyncStep(step: number, every: number): boolean {
  return every > 0 && step > 0 && step % every === 0;
}
