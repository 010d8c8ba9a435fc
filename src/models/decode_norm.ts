/**
 * RMSNorm for no-grad decoding on CPU adapters (kernels/rmsnorm_decode.wgsl): rmsNorm's values for rows of up to
 * 16384 channels, where rmsNorm runs its one-row-per-invocation kernel, with a workgroup per row instead (a
 * decoding step has one row per sequence, which that kernel runs on one SIMD lane). Elsewhere `rmsNorm` itself.
 * No autograd, no rstd: decoding only.
 */
import { rmsNorm } from "../autograd/ops/rmsnorm.ts";
import { cpuKernels } from "../gpu/device.ts";
import { kernel } from "../gpu/kernel.ts";
import { dispatch } from "../gpu/queue.ts";
import { empty, type Tensor } from "../tensor/tensor.ts";

const K = kernel("rmsnorm_decode.wgsl");
const MAX_WORKGROUPS = 65535;

/** RMSNorm of x [..., C] with weight [C] (the same values as `rmsNorm`). */
export function decodeRmsNorm(x: Tensor, weight: Tensor, eps: number): Tensor {
  const C = x.shape[x.ndim - 1];
  const N = C === 0 ? 0 : x.size / C;
  if (!cpuKernels() || C > 16384 || N === 0 || weight.size !== C || x.dtype !== "f32") {
    return rmsNorm(x, weight, eps);
  }
  const y = empty(x.shape);
  dispatch({
    kernel: K,
    params: { N, C, eps },
    buffers: [x.binding, weight.binding, y.binding],
    workgroups: [Math.min(N, MAX_WORKGROUPS), Math.ceil(N / MAX_WORKGROUPS), 1],
  });
  return y;
}
