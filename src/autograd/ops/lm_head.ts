/**
 * What the LM-head ops share (fused_logprobs.ts, lm_head_logits.ts): the shape checks of h [N, C] and W [V, C],
 * padding C to a multiple of 4 for the vec4 kernels (kernels/logprob_pad.wgsl), the logits and backward-product
 * kernels, and the splitting of long loops and large bindings. No op lives here.
 */
import { bindingLimit, exactRange } from "../../gpu/binding.ts";
import { GpuLimitError } from "../../gpu/errors.ts";
import { kernel } from "../../gpu/kernel.ts";
import { checkLoopBudget } from "../../gpu/loop_budget.ts";
import { type BufferBinding, dispatch, grid1d } from "../../gpu/queue.ts";
import { empty, type Tensor, view } from "../../tensor/tensor.ts";

/** logits = h·Wᵀ (entry `logits`) and dLogits from the saved logsumexp (entry `dlogits`). */
export const LOGITS = kernel("logprob_logits.wgsl");
/** dH = dZ·W (entry `dh`) and dW = dZᵀ·h (entry `dw`). */
export const BACKWARD = kernel("logprob_backward.wgsl");
const PAD = kernel("logprob_pad.wgsl");

/** Rows / vocabulary entries covered by one 8×8 workgroup of the tiled kernels (8 × 8 per invocation). */
export const TILE = 64;
/**
 * Longest loop one invocation may run: lavapipe (llvmpipe) stops an invocation after 65535 loop iterations in all,
 * silently. Chunks are capped at this, and the K dimension of the backward products is split into pieces of it
 * (accumulated in order). A multiple of 64, so row pieces keep 256-byte-aligned binding offsets.
 */
export const LOOP_CAP = 16384;

/** [start, count] pieces of [0, K), each at most LOOP_CAP long. */
export function pieces(K: number): [number, number][] {
  const out: [number, number][] = [];
  for (let k0 = 0; k0 < K; k0 += LOOP_CAP) out.push([k0, Math.min(LOOP_CAP, K - k0)]);
  return out;
}

/** The byte range of `count` f32/i32 elements of `t` starting at element `start` (planned to be aligned). */
export function range(t: Tensor, start: number, count: number): BufferBinding {
  return exactRange(t.binding.buffer, start * 4, count * 4);
}

/** h [..., C] and W [V, C]: returns N (rows), C, V and the output shape (h's leading dimensions). */
export function lmHeadShapes(
  what: string,
  h: Tensor,
  W: Tensor,
): { N: number; C: number; V: number; out: number[] } {
  if (h.dtype !== "f32" || W.dtype !== "f32") throw new TypeError(`${what}: h and W must be f32 tensors`);
  if (h.ndim < 2) throw new RangeError(`${what}: h must be [N, C] (or [B, T, C]), got shape [${h.shape}]`);
  if (W.ndim !== 2) throw new RangeError(`${what}: W must be [V, C], got shape [${W.shape}]`);
  const C = h.shape[h.ndim - 1];
  if (W.shape[1] !== C) {
    throw new RangeError(`${what}: h has ${C} channels but W is [${W.shape}]; expected W of shape [V, ${C}]`);
  }
  const V = W.shape[0];
  if (V < 1 || C < 1) throw new RangeError(`${what}: V and C must be at least 1 (W is [${W.shape}])`);
  // the logits kernels walk C in vec4 steps, then store 8 rows of at most 8 entries each (loops of ≤ 9)
  checkLoopBudget(
    `${what} with ${C} channels`,
    Math.ceil(C / 4) + 1 + 8 * 9,
    "hidden sizes this large need a GPU adapter",
  );
  const out = h.shape.slice(0, -1);
  return { N: out.reduce((a, b) => a * b, 1), C, V, out };
}

/** x [R, C] as [R, CP] with CP = C rounded up to 4 (x itself when C is already a multiple of 4). */
export function padCols(x: Tensor, R: number, C: number): Tensor {
  const CP = Math.ceil(C / 4) * 4;
  if (CP === C) return x;
  const out = empty([R, CP]);
  dispatch({
    kernel: PAD,
    entry: "pad",
    params: { R, C, CP },
    buffers: [x.binding, out.binding],
    workgroups: grid1d(R * CP, 256),
  });
  return out;
}

/** x [R, CP] back to [R, C] (x itself when CP = C; otherwise x is disposed). */
export function unpadCols(x: Tensor, R: number, C: number, shape: readonly number[]): Tensor {
  const CP = Math.ceil(C / 4) * 4;
  if (CP === C) return x;
  const out = empty(shape);
  dispatch({
    kernel: PAD,
    entry: "unpad",
    params: { R, C, CP },
    buffers: [x.binding, out.binding],
    workgroups: grid1d(R * C, 256),
  });
  x.dispose();
  return out;
}

/** Rows per block so that a [rows, width] f32 block fits one binding (a multiple of 64 when blocks are needed). */
export function rowBlock(what: string, N: number, width: number): number {
  const maxB = bindingLimit();
  if (N * width * 4 <= maxB) return N;
  const rb = Math.floor(maxB / (width * 4) / 64) * 64;
  if (rb < 64) {
    throw new GpuLimitError(`${what}: rows of ${width} values are too wide for 64-row blocks of one binding`);
  }
  return rb;
}

/** The same storage under another shape, releasing the original handle (no copy, no graph). */
export function reshapeRaw(t: Tensor, shape: readonly number[]): Tensor {
  if (t.shape.join() === shape.join()) return t;
  const v = view(t, shape);
  t.dispose();
  return v;
}
