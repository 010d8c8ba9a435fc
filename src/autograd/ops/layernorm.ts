/**
 * layerNorm(x [..., C], weight [C], bias [C], eps) = (x − mean) · rstd · weight + bias over the last dimension
 * (GPT-2; PyTorch semantics: biased variance, f32). The forward saves mean and rstd per row; backward gives dx,
 * dweight and dbias, the last two reduced over rows in a fixed order (deterministic, no atomics).
 * Kernels: kernels/layernorm.wgsl, kernels/norm_colsum.wgsl.
 */
import { kernel } from "../../gpu/kernel.ts";
import { dispatch } from "../../gpu/queue.ts";
import { zeros } from "../../tensor/create.ts";
import { empty, type Tensor } from "../../tensor/tensor.ts";
import { needsGrad, record } from "../record.ts";
import { columnSumsSplit, rowChunks, rowDispatch } from "./norm_colsum.ts";

const K = kernel("layernorm.wgsl");

function checkArgs(
  op: string,
  x: Tensor,
  weight: Tensor,
  bias: Tensor,
  eps: number,
): { N: number; C: number } {
  if (x.dtype !== "f32" || weight.dtype !== "f32" || bias.dtype !== "f32") {
    throw new TypeError(`${op}: x, weight and bias must be f32 tensors`);
  }
  if (x.ndim < 1) {
    throw new RangeError(`${op}: x must have at least one dimension (channels last), got a scalar`);
  }
  const C = x.shape[x.ndim - 1];
  if (weight.ndim !== 1 || weight.shape[0] !== C) {
    throw new RangeError(`${op}: weight must have shape [${C}] (x's last dimension), got [${weight.shape}]`);
  }
  if (bias.ndim !== 1 || bias.shape[0] !== C) {
    throw new RangeError(`${op}: bias must have shape [${C}] (x's last dimension), got [${bias.shape}]`);
  }
  if (!(eps >= 0) || !Number.isFinite(eps)) {
    throw new RangeError(`${op}: eps must be a finite number ≥ 0, got ${eps}`);
  }
  return { N: C === 0 ? 0 : x.size / C, C };
}

/** The raw forward (no graph): y [..., C], mean [N] and rstd [N] (N = rows = x.size / C). */
export function layerNormForward(
  x: Tensor,
  weight: Tensor,
  bias: Tensor,
  eps = 1e-5,
): { y: Tensor; mean: Tensor; rstd: Tensor } {
  const { N, C } = checkArgs("layerNorm", x, weight, bias, eps);
  const y = empty(x.shape);
  const mean = empty([N]);
  const rstd = empty([N]);
  if (N > 0 && C > 0) {
    dispatch({
      kernel: K,
      ...rowDispatch("forward", N, C),
      params: { N, C, eps },
      buffers: [x.binding, weight.binding, bias.binding, mean.binding, rstd.binding, y.binding],
    });
  }
  return { y, mean, rstd };
}

/** The raw backward (no graph) from the saved mean and rstd: dx, dweight, dbias as asked for in `want`. */
export function layerNormBackward(
  dy: Tensor,
  x: Tensor,
  weight: Tensor,
  bias: Tensor,
  mean: Tensor,
  rstd: Tensor,
  want: { dx?: boolean; dweight?: boolean; dbias?: boolean } = { dx: true, dweight: true, dbias: true },
): { dx: Tensor | null; dweight: Tensor | null; dbias: Tensor | null } {
  const { N, C } = checkArgs("layerNormBackward", x, weight, bias, 0);
  if (dy.size !== x.size) {
    throw new RangeError(`layerNormBackward: dy [${dy.shape}] must match x [${x.shape}]`);
  }
  if (mean.size !== N || rstd.size !== N) {
    throw new RangeError(`layerNormBackward: mean and rstd must hold ${N} values each`);
  }
  let dx: Tensor | null = null;
  let dweight: Tensor | null = null;
  let dbias: Tensor | null = null;
  if (want.dx) {
    dx = empty(x.shape);
    if (N > 0 && C > 0) {
      dispatch({
        kernel: K,
        ...rowDispatch("backward_dx", N, C),
        params: { N, C },
        buffers: [
          x.binding,
          weight.binding,
          bias.binding,
          mean.binding,
          rstd.binding,
          dx.binding,
          dy.binding,
        ],
      });
    }
  }
  if (want.dweight || want.dbias) {
    let dw: Tensor;
    let db: Tensor;
    if (N === 0 || C === 0) {
      dw = zeros([C]);
      db = zeros([C]);
    } else {
      const { rowsPerChunk, nChunks } = rowChunks(N);
      const partial = empty([nChunks, 2 * C]);
      dispatch({
        kernel: K,
        entry: "backward_dwdb_partial",
        params: { N, C, rowsPerChunk },
        buffers: [
          x.binding,
          weight.binding,
          bias.binding,
          mean.binding,
          rstd.binding,
          partial.binding,
          dy.binding,
        ],
        workgroups: [Math.ceil(C / 64), nChunks],
      });
      [dw, db] = columnSumsSplit(partial, nChunks, C);
      partial.dispose();
    }
    if (want.dweight) dweight = dw;
    else dw.dispose();
    if (want.dbias) dbias = db;
    else db.dispose();
  }
  return { dx, dweight, dbias };
}

/** LayerNorm over the last dimension (GPT-2): (x − mean) / sqrt(var + eps) · weight + bias, biased variance. */
export function layerNorm(x: Tensor, weight: Tensor, bias: Tensor, eps = 1e-5): Tensor {
  const { y, mean, rstd } = layerNormForward(x, weight, bias, eps);
  if (!needsGrad(x, weight, bias)) {
    mean.dispose();
    rstd.dispose();
    return y;
  }
  return record("layerNorm", [x, weight, bias], y, (dy) => {
    const g = layerNormBackward(dy, x, weight, bias, mean, rstd, {
      dx: x.requiresGrad,
      dweight: weight.requiresGrad,
      dbias: bias.requiresGrad,
    });
    mean.dispose(); // the graph is consumed once: free the saved state as soon as it has been used
    rstd.dispose();
    return [g.dx, g.dweight, g.dbias];
  });
}
