/**
 * `linearCat(x, [w0, w1, w2?])` = [x·w0ᵀ | x·w1ᵀ | x·w2ᵀ]: two or three nn.Linear projections of the same input
 * (Llama's q_proj/k_proj/v_proj, gate_proj/up_proj) as one product, with the weights kept as the separate
 * parameters they are (state-dict names, checkpoints, optimizer state unchanged). x is [..., C], each w_i
 * [N_i, C]; the result is [..., N0 + N1 + N2], row r holding the three projections of x's row r side by side.
 *
 * Forward: the weights are joined into one [ΣN_i, C] temporary (kernels/rows_cat.wgsl, one dispatch), then one
 * matmul; each output element is the same dot product, in the same order, as the per-weight product's, so the
 * values are bit-identical to three `linear` calls.
 * Backward, for dY [rows, ΣN_i]: dX = dY·W_cat, ONE product over K = ΣN_i (the weights joined again), instead of
 * three products and two adds (the sum's order differs: values agree to rounding, not bit for bit);
 * dW_cat = dYᵀ·X, one product (bit-identical to the per-weight ones), cut into the weights' gradients
 * (kernels/rows_split.wgsl, one dispatch).
 * Dispatches: forward 2 (3 projections: 3 before), backward 4 (3 projections: 8 before, with the adds).
 */
import { gpu } from "../../gpu/device.ts";
import { kernel } from "../../gpu/kernel.ts";
import { dispatch, grid1d } from "../../gpu/queue.ts";
import { empty, type Tensor } from "../../tensor/tensor.ts";
import { record } from "../record.ts";
import { matmulRaw } from "./matmul.ts";
import { reshape } from "./reshape.ts";

const CAT = kernel("rows_cat.wgsl");
const SPLIT = kernel("rows_split.wgsl");

function counts(parts: readonly Tensor[]): { n0: number; n1: number; n2: number } {
  return { n0: parts[0].size, n1: parts[1].size, n2: parts[2]?.size ?? 0 };
}

/** The parts (2 or 3 contiguous tensors of the same row length) joined along their rows into a new tensor. */
export function catRows(parts: readonly Tensor[]): Tensor {
  checkParts(parts, "catRows");
  const cols = parts[0].shape[parts[0].ndim - 1];
  const rows = parts.reduce((s, t) => s + t.size / cols, 0);
  const out = empty([rows, cols]);
  const n = counts(parts);
  const total = n.n0 + n.n1 + n.n2;
  if (total > 0) {
    dispatch({
      kernel: CAT,
      params: n,
      buffers: [parts[0].binding, parts[1].binding, (parts[2] ?? parts[1]).binding, out.binding],
      workgroups: grid1d(total, 256),
    });
  }
  return out;
}

/** `cat` [ΣR_i, C] cut along its rows into new tensors of the given shapes (each of C columns). */
export function splitRows(cat: Tensor, shapes: readonly (readonly number[])[]): Tensor[] {
  if (shapes.length !== 2 && shapes.length !== 3) {
    throw new RangeError(`splitRows: expected 2 or 3 parts, got ${shapes.length}`);
  }
  const outs = shapes.map((s) => empty(s));
  const n = counts(outs);
  if (n.n0 + n.n1 + n.n2 !== cat.size) {
    throw new RangeError(`splitRows: parts of ${n.n0 + n.n1 + n.n2} elements for a tensor of ${cat.size}`);
  }
  const dummy = outs.length === 2 ? empty([1]) : null;
  if (cat.size > 0) {
    dispatch({
      kernel: SPLIT,
      params: n,
      buffers: [cat.binding, outs[0].binding, outs[1].binding, (outs[2] ?? dummy!).binding],
      workgroups: grid1d(cat.size, 256),
    });
  }
  dummy?.dispose();
  return outs;
}

function checkParts(parts: readonly Tensor[], who: string): void {
  if (parts.length !== 2 && parts.length !== 3) {
    throw new RangeError(`${who}: expected 2 or 3 tensors, got ${parts.length}`);
  }
  const cols = parts[0].shape[parts[0].ndim - 1];
  for (const [i, t] of parts.entries()) {
    t.assertAlive();
    if (t.dtype !== "f32") throw new TypeError(`${who}: tensor ${i} is ${t.dtype}, expected f32`);
    if (t.ndim !== 2 || t.shape[1] !== cols) {
      throw new RangeError(`${who}: tensor ${i} has shape [${t.shape}]; expected [*, ${cols}] like tensor 0`);
    }
  }
}

/** Whether `linearCat` can bind what it would make (the joined weight, the output) on this device. */
export function linearCatFits(rows: number, weights: readonly Tensor[]): boolean {
  const C = weights[0].shape[1];
  const N = weights.reduce((s, w) => s + w.shape[0], 0);
  const limit = gpu().info.limits.maxStorageBufferBindingSize;
  return 4 * N * C <= limit && 4 * rows * N <= limit && 4 * rows * C <= limit;
}

/** [x·w0ᵀ | x·w1ᵀ | x·w2ᵀ] for x [..., C] and weights [N_i, C] (see the header); recorded for backward. */
export function linearCat(x: Tensor, weights: readonly Tensor[]): Tensor {
  checkParts(weights, "linearCat");
  const C = weights[0].shape[1];
  if (x.shape[x.ndim - 1] !== C) {
    throw new RangeError(`linearCat: input [${x.shape}] does not match weights of ${C} columns`);
  }
  const rows = x.size / C;
  const N = weights.reduce((s, w) => s + w.shape[0], 0);
  const x2 = reshape(x, [rows, C]);
  const joined = catRows(weights);
  const y = matmulRaw(x2, joined, { transB: true });
  joined.dispose();
  const out = record("linearCat", [x2, ...weights], y, (dy) => {
    let dx: Tensor | null = null;
    if (x2.requiresGrad) {
      const w = catRows(weights);
      dx = matmulRaw(dy, w);
      w.dispose();
    }
    let dws: (Tensor | null)[] = weights.map(() => null);
    if (weights.some((w) => w.requiresGrad)) {
      const dw = matmulRaw(dy, x2, { transA: true });
      const parts = splitRows(dw, weights.map((w) => w.shape));
      dw.dispose();
      dws = parts.map((g, i) => {
        if (weights[i].requiresGrad) return g;
        g.dispose();
        return null;
      });
    }
    return [dx, ...dws];
  });
  const shaped = reshape(out, [...x.shape.slice(0, -1), N]);
  return shaped;
}
