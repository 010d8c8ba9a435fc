/**
 * permute(x, dims): reorders the axes of x (up to 6) into a new contiguous tensor; output axis j is input axis
 * dims[j]. Backward: the inverse permutation applied to dy. Used to split and merge attention heads
 * ([B, T, H, D] ↔ [B, H, T, D]) and to separate GPT-2's fused q/k/v. A permutation that moves only axes of
 * size 1 is a view (no copy, no dispatch). On CPU adapters each invocation copies a
 * run along the last output axis (one index decomposition per run instead of per element).
 */
import { cpuKernels } from "../../gpu/device.ts";
import { kernel } from "../../gpu/kernel.ts";
import { dispatch, grid1d } from "../../gpu/queue.ts";
import { empty, type Tensor, view } from "../../tensor/tensor.ts";
import { record } from "../record.ts";

const K = kernel("permute.wgsl");
/** Longest run one invocation copies in the CPU variant (lavapipe stops an invocation after 65535 iterations). */
const RUN = 16384;

function check(shape: readonly number[], dims: readonly number[]): void {
  const n = shape.length;
  if (n > 6) throw new RangeError(`permute supports at most 6 axes, got [${shape}]`);
  const sorted = [...dims].sort((a, b) => a - b);
  if (dims.length !== n || sorted.some((d, i) => d !== i)) {
    throw new RangeError(`permute: [${dims}] is not a permutation of the ${n} axes of [${shape}]`);
  }
}

const S = ["s0", "s1", "s2", "s3", "s4", "s5"], T = ["t0", "t1", "t2", "t3", "t4", "t5"];

/** The Params fields s0, s1, … (output shape) and t0, t1, … (input strides) from their arrays. */
function axisFields(s: readonly number[], t: readonly number[]): Record<string, number> {
  const f: Record<string, number> = {};
  s.forEach((v, j) => (f[S[j]] = v));
  t.forEach((v, j) => (f[T[j]] = v));
  return f;
}

function permuteRaw(x: Tensor, dims: readonly number[]): Tensor {
  const n = x.ndim;
  const outShape = dims.map((d) => x.shape[d]);
  // only axes of size 1 move (the identity, or [B, 1, H, D] ↔ [B, H, 1, D] while decoding): the same layout
  const kept = dims.filter((d) => x.shape[d] !== 1);
  if (kept.every((d, i) => i === 0 || d > kept[i - 1])) return view(x, outShape);
  const strides = new Array(n).fill(1);
  for (let i = n - 2; i >= 0; i--) strides[i] = strides[i + 1] * x.shape[i + 1];
  const out = empty(outShape);
  if (out.size === 0) return out;
  const inStrides = dims.map((d) => strides[d]);
  if (cpuKernels()) {
    // a run along the last output axis per invocation: the shape left-padded to 6 axes
    const s = [...new Array(6 - n).fill(1), ...outShape];
    const t = [...new Array(6 - n).fill(0), ...inStrides];
    const inner = s[5], rows = out.size / inner;
    const run = Math.min(inner, RUN), chunks = Math.ceil(inner / run);
    dispatch({
      kernel: K,
      entry: "runs",
      params: { rows, chunks, run, inner, ...axisFields(s.slice(0, 5), t) },
      buffers: [x.binding, out.binding],
      workgroups: grid1d(rows * chunks, 64),
    });
    return out;
  }
  const s = [...outShape, 1, 1, 1, 1, 1, 1].slice(0, 6);
  const t = [...inStrides, 0, 0, 0, 0, 0, 0].slice(0, 6);
  dispatch({
    kernel: K,
    params: { n: x.size, ndim: n, ...axisFields(s, t) },
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
