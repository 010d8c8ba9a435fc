/**
 * Weight norms on the GPU, one readback for a whole list: checkpoints refuse weights that hold NaN or Inf, and
 * record the reference model's norm so that a resume with a different reference is noticed.
 */
import { concat } from "../autograd/ops/concat.ts";
import { scope } from "../autograd/scope.ts";
import { gradNorm } from "../optim/grad_norm.ts";
import type { Tensor } from "../tensor/tensor.ts";

/**
 * A tensor, or a function that makes one (a weight stored in 16 bits, unpacked): made when its norm is taken and
 * released right after, so a list of them never holds more than one such copy.
 */
export type TensorSource = Tensor | (() => Tensor);

/** The L2 norm of each tensor (NaN or Inf when it holds a non-finite value); empty tensors are left out. */
export async function tensorNorms(tensors: TensorSource[]): Promise<Float32Array> {
  const list = tensors.filter((t) => typeof t === "function" || t.size > 0);
  if (list.length === 0) return new Float32Array(0);
  // gradNorm reduces `.grad`: hand it each tensor as the gradient of a stand-in parameter
  const norm = (s: TensorSource) => {
    const t = typeof s === "function" ? s() : s;
    const n = gradNorm([{ grad: t, size: t.size } as unknown as Tensor]);
    if (typeof s === "function") t.dispose(); // recorded work still reads it, in order
    return n;
  };
  return await scope(() => concat(list.map(norm)).toArray());
}

/** The L2 norm of a list of tensors taken together. */
export async function weightNorm(tensors: TensorSource[]): Promise<number> {
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
