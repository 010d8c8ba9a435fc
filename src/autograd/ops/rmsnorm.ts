/**
 * rmsNorm(x [..., C], weight [C], eps) = weight · (x · rsqrt(mean(x²) + eps)) over the last dimension, in f32
 * (Hugging Face LlamaRMSNorm). The forward saves rstd per row; backward gives dx and dweight, the latter reduced
 * over rows in a fixed order (per-chunk partials, then a column sum: deterministic, no atomics).
 * Kernels: kernels/rmsnorm.wgsl, kernels/norm_colsum.wgsl.
 */
import { kernel } from "../../gpu/kernel.ts";
import { dispatch } from "../../gpu/queue.ts";
import { zeros } from "../../tensor/create.ts";
import { empty, type Tensor } from "../../tensor/tensor.ts";
import { needsGrad, record } from "../record.ts";
import { columnSums, rowChunks, rowDispatch } from "./norm_colsum.ts";

const K = kernel("rmsnorm.wgsl");

function checkArgs(op: string, x: Tensor, weight: Tensor, eps: number): { N: number; C: number } {
  if (x.dtype !== "f32" || weight.dtype !== "f32") {
    throw new TypeError(`${op}: x and weight must be f32 tensors (got ${x.dtype} and ${weight.dtype})`);
  }
  if (x.ndim < 1) {
    throw new RangeError(`${op}: x must have at least one dimension (channels last), got a scalar`);
  }
  const C = x.shape[x.ndim - 1];
  if (weight.ndim !== 1 || weight.shape[0] !== C) {
    throw new RangeError(`${op}: weight must have shape [${C}] (x's last dimension), got [${weight.shape}]`);
  }
  if (!(eps >= 0) || !Number.isFinite(eps)) {
    throw new RangeError(`${op}: eps must be a finite number ≥ 0, got ${eps}`);
  }
  return { N: C === 0 ? 0 : x.size / C, C };
}

/** The raw forward (no graph): y [..., C] and rstd [N] (N = rows = x.size / C). */
export function rmsNormForward(x: Tensor, weight: Tensor, eps = 1e-6): { y: Tensor; rstd: Tensor } {
  const { N, C } = checkArgs("rmsNorm", x, weight, eps);
  const y = empty(x.shape);
  const rstd = empty([N]);
  if (N > 0 && C > 0) {
    dispatch({
      kernel: K,
      ...rowDispatch("forward", N, C),
      params: { N, C, eps },
      buffers: [x.binding, weight.binding, rstd.binding, y.binding],
    });
  }
  return { y, rstd };
}

/**
 * The raw backward (no graph) from the saved rstd: dx [..., C] (when `want.dx`) and dweight [C] (when
 * `want.dweight`).
 */
export function rmsNormBackward(
  dy: Tensor,
  x: Tensor,
  weight: Tensor,
  rstd: Tensor,
  want: { dx?: boolean; dweight?: boolean } = { dx: true, dweight: true },
): { dx: Tensor | null; dweight: Tensor | null } {
  const { N, C } = checkArgs("rmsNormBackward", x, weight, 0);
  if (dy.size !== x.size) throw new RangeError(`rmsNormBackward: dy [${dy.shape}] must match x [${x.shape}]`);
  if (rstd.size !== N) {
    throw new RangeError(`rmsNormBackward: rstd must hold ${N} values, got [${rstd.shape}]`);
  }
  let dx: Tensor | null = null;
  let dweight: Tensor | null = null;
  if (want.dx) {
    dx = empty(x.shape);
    if (N > 0 && C > 0) {
      dispatch({
        kernel: K,
        ...rowDispatch("backward_dx", N, C),
        params: { N, C },
        buffers: [x.binding, weight.binding, rstd.binding, dx.binding, dy.binding],
      });
    }
  }
  if (want.dweight) {
    if (N === 0 || C === 0) dweight = zeros([C]);
    else {
      const { rowsPerChunk, nChunks } = rowChunks(N);
      const partial = empty([nChunks, C]);
      dispatch({
        kernel: K,
        entry: "backward_dw_partial",
        params: { N, C, rowsPerChunk },
        buffers: [x.binding, weight.binding, rstd.binding, partial.binding, dy.binding],
        workgroups: [Math.ceil(C / 64), nChunks],
      });
      dweight = columnSums(partial, nChunks, C);
      partial.dispose();
    }
  }
  return { dx, dweight };
}

/** RMSNorm over the last dimension (Llama): weight · x · rsqrt(mean(x²) + eps), f32. */
export function rmsNorm(x: Tensor, weight: Tensor, eps = 1e-6): Tensor {
  const { y, rstd } = rmsNormForward(x, weight, eps);
  if (!needsGrad(x, weight)) {
    rstd.dispose();
    return y;
  }
  return record("rmsNorm", [x, weight], y, (dy) => {
    const { dx, dweight } = rmsNormBackward(dy, x, weight, rstd, {
      dx: x.requiresGrad,
      dweight: weight.requiresGrad,
    });
    rstd.dispose(); // the graph is consumed once: free the saved state as soon as it has been used
    return [dx, dweight];
  });
}
