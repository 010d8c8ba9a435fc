/**
 * Weight norms on the GPU, one readback for a whole list: checkpoints refuse weights that hold NaN or Inf, and
 * record the reference model's norm so that a resume with a different reference is noticed.
 */
import { concat } from "../autograd/ops/concat.ts";
import { scope } from "../autograd/scope.ts";
import { gradNorm } from "../optim/grad_norm.ts";
import type { Tensor } from "../tensor/tensor.ts";

/** The L2 norm of each tensor (NaN or Inf when it holds a non-finite value); empty tensors are left out. */
export async function tensorNorms(tensors: Tensor[]): Promise<Float32Array> {
  const list = tensors.filter((t) => t.size > 0);
  if (list.length === 0) return new Float32Array(0);
  // gradNorm reduces `.grad`: hand it each tensor as the gradient of a stand-in parameter
  return await scope(() =>
    concat(list.map((t) => gradNorm([{ grad: t, size: t.size } as unknown as Tensor]))).toArray()
  );
}

/** The L2 norm of a list of tensors taken together. */
export async function weightNorm(tensors: Tensor[]): Promise<number> {
  const norms = await tensorNorms(tensors);
  return Math.sqrt(norms.reduce((acc, x) => acc + x * x, 0));
}

/** The first of `named` whose values are not all finite, with its norm; null when every one is finite. */
export async function firstNonFinite(
  named: readonly (readonly [string, Tensor])[],
): Promise<{ name: string; norm: number } | null> {
  const list = named.filter(([, t]) => t.size > 0);
  const norms = await tensorNorms(list.map(([, t]) => t));
  const bad = list.findIndex((_, i) => !Number.isFinite(norms[i]));
  return bad >= 0 ? { name: list[bad][0], norm: norms[bad] } : null;
}
