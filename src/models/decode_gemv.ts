/**
 * Fused row-kernel products for no-grad decoding on CPU adapters (one new token per sequence, where every
 * projection is a matrix-vector product and lavapipe's ~45 µs per dispatch is a large share of a token):
 *
 * - `gemvMulti(x, [w0, w1, w2])`: x·w_iᵀ for up to three weights of the same input in one dispatch
 *   (kernels/matmul_gemv_multi.wgsl; Llama's q, k and v projections);
 * - `gemvSwiglu(x, wGate, wUp)`: silu(x·wGateᵀ)·(x·wUpᵀ) in one dispatch (kernels/matmul_gemv_swiglu.wgsl).
 *
 * Both compute exactly what `linear` (on the row kernel, kernels/matmul_gemv.wgsl) and `swiglu` compute, so they
 * apply only where those products would run on the row kernel: the register matmul variant, at most
 * matmul's row-kernel rows (`setGemvMaxRows`), K a multiple of 4 (no padding copies) and within the loop budget, every operand within
 * one storage binding. Elsewhere they return null and the caller takes the unfused path. No autograd: decoding
 * only.
 */
import { isRegisterVariant, matmulVariant, setGemvMaxRows } from "../autograd/ops/gemm.ts";
import { gpu } from "../gpu/device.ts";
import { kernel } from "../gpu/kernel.ts";
import { LOOP_BUDGET } from "../gpu/loop_budget.ts";
import { dispatch } from "../gpu/queue.ts";
import { empty, type Tensor } from "../tensor/tensor.ts";

const MULTI = kernel("matmul_gemv_multi.wgsl");
const SWIGLU = kernel("matmul_gemv_swiglu.wgsl");
const MAX_WORKGROUPS = 65535;

/** The most rows matmul sends to the row kernel now (gemm.ts keeps it; `setGemvMaxRows` returns it). */
function gemvMaxRowsNow(): number {
  const rows = setGemvMaxRows(0);
  setGemvMaxRows(rows);
  return rows;
}

/** x's rows M and width K when x·wᵀ for every w would run on the row kernel, else null. */
function rowKernelShape(x: Tensor, weights: Tensor[]): { M: number; K: number } | null {
  const K = x.shape[x.ndim - 1];
  const M = x.size / K;
  if (!isRegisterVariant(matmulVariant()) || M < 1 || M > gemvMaxRowsNow() || K % 4 !== 0) return null;
  if (K / 4 + 1 > LOOP_BUDGET || M > MAX_WORKGROUPS) return null;
  const maxBytes = gpu().device.limits.maxStorageBufferBindingSize;
  if (x.dtype !== "f32" || x.bytes > maxBytes) return null;
  for (const w of weights) {
    if (w.dtype !== "f32" || w.ndim !== 2 || w.shape[1] !== K || w.shape[0] < 1 || w.bytes > maxBytes) {
      return null;
    }
    if (w.shape[0] * M * 4 > maxBytes) return null;
  }
  return { M, K };
}

/** x [..., K] times each w_i [N_i, K] transposed: [..., N_i] per weight (1 to 3 weights), or null (see above). */
export function gemvMulti(x: Tensor, weights: Tensor[]): Tensor[] | null {
  if (weights.length < 1 || weights.length > 3) throw new RangeError("gemvMulti: 1 to 3 weights");
  const s = rowKernelShape(x, weights);
  if (!s) return null;
  const N = weights.map((w) => w.shape[0]);
  const X = N.map((n) => Math.ceil(n / 64));
  if (X.reduce((a, b) => a + b, 0) > MAX_WORKGROUPS) return null;
  const lead = x.shape.slice(0, -1);
  const outs = N.map((n) => empty([...lead, n]));
  // an unused slot (X = 0: never read or written) binds the first weight again and a scratch output (two
  // writable bindings of one buffer are not allowed)
  const b = [0, 1, 2].map((i) => weights[i] ?? weights[0]);
  const spare = weights.length < 3 ? empty([1]) : null;
  const c = [0, 1, 2].map((i) => outs[i] ?? spare!);
  dispatch({
    kernel: MULTI,
    params: { M: s.M, lda4: s.K / 4, N0: N[0], N1: N[1] ?? 1, N2: N[2] ?? 1, X0: X[0], X1: X[1] ?? 0 },
    buffers: [x.binding, ...b.map((t) => t.binding), ...c.map((t) => t.binding)],
    workgroups: [X.reduce((a, b) => a + b, 0), s.M, 1],
  });
  spare?.dispose();
  return outs;
}

/** silu(x·wGateᵀ)·(x·wUpᵀ) for x [..., K] and weights [N, K]: [..., N], or null (see above). */
export function gemvSwiglu(x: Tensor, wGate: Tensor, wUp: Tensor): Tensor | null {
  if (wGate.shape.join() !== wUp.shape.join()) return null;
  const s = rowKernelShape(x, [wGate, wUp]);
  const N = wGate.shape[0];
  if (!s || Math.ceil(N / 32) > MAX_WORKGROUPS) return null;
  const out = empty([...x.shape.slice(0, -1), N]);
  dispatch({
    kernel: SWIGLU,
    params: { M: s.M, N, lda4: s.K / 4 },
    buffers: [x.binding, wGate.binding, wUp.binding, out.binding],
    workgroups: [Math.ceil(N / 32), s.M, 1],
  });
  return out;
}
