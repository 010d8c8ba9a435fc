/**
 * permute(x, dims): reorders the axes of x (up to 6) into a new contiguous tensor; output axis j is input axis
 * dims[j]. Backward: the inverse permutation applied to dy. Used to split and merge attention heads
 * ([B, T, H, D] ↔ [B, H, T, D]) and to separate GPT-2's fused q/k/v.
 */
import { kernel } from "../../gpu/kernel.ts";
import { Params } from "../../gpu/params.ts";
import { dispatch, grid1d } from "../../gpu/queue.ts";
import { empty, type Tensor, view } from "../../tensor/tensor.ts";
import { record } from "../record.ts";

const K = kernel("permute.wgsl");

function check(shape: readonly number[], dims: readonly number[]): void {
  const n = shape.length;
  if (n > 6) throw new RangeError(`permute supports at most 6 axes, got [${shape}]`);
  const sorted = [...dims].sort((a, b) => a - b);
  if (dims.length !== n || sorted.some((d, i) => d !== i)) {
    throw new RangeError(`permute: [${dims}] is not a permutation of the ${n} axes of [${shape}]`);
  }
}

function permuteRaw(x: Tensor, dims: readonly number[]): Tensor {
  const n = x.ndim;
  const outShape = dims.map((d) => x.shape[d]);
  if (dims.every((d, i) => d === i)) {
    const v = view(x, outShape);
    return v;
  }
  const strides = new Array(n).fill(1);
  for (let i = n - 2; i >= 0; i--) strides[i] = strides[i + 1] * x.shape[i + 1];
  const out = empty(outShape);
  if (out.size === 0) return out;
  const s = [...outShape, 1, 1, 1, 1, 1, 1].slice(0, 6);
  const t = [...dims.map((d) => strides[d]), 0, 0, 0, 0, 0, 0].slice(0, 6);
  dispatch({
    kernel: K,
    params: new Params().u32(x.size, n).u32(...s).u32(...t),
    buffers: [x.binding, out.binding],
    workgroups: grid1d(x.size, 256),
  });
  return out;
}

export function permute(x: Tensor, dims: readonly number[]): Tensor {
  check(x.shape, dims);
  const inverse = new Array<number>(dims.length);
  dims.forEach((d, j) => (inverse[d] = j));
  return record("permute", [x], permuteRaw(x, dims), (dy) => [permuteRaw(dy, inverse)]);
}
