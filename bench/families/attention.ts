/**
 * Attention: causal flash attention forward and forward+backward for B=4, H=9, KV heads 3, D=64 and T=256, 512
 * (T=64 only with --quick), for both kernel variants ("rows": one invocation per pair of rows, for CPU adapters;
 * "tiled": workgroup tiles sharing K/V in workgroup memory, for GPUs; the default follows isFallbackAdapter).
 *
 * FLOP convention (useful work, not what the kernels execute): the causal forward counts the two matrix products
 * S = Q·Kᵀ and O = P·V over the lower triangle, 2 · 2·B·H·T²·D / 2 = 4·B·H·T²·D/2; the backward counts 2.5× the
 * forward (five products: S recomputed, dV, dP, dQ, dK); forward+backward = 3.5× the forward. The kernels
 * actually recompute S and dP in both backward passes, so they execute more than this count.
 *
 * The comparison with the naive materialised attention (S = Q·Kᵀ → causal mask → softmax → P·V from the
 * foundation ops, [B, H, T, T] in memory) plugs in at `naiveAttentionStep` below.
 */
import { adapterName, type BenchContext, type BenchFamily, timeGpu } from "../harness.ts";
import { gpu } from "../../src/gpu/device.ts";
import {
  attentionBackwardRaw,
  attentionForwardRaw,
  type AttentionVariant,
} from "../../src/autograd/ops/attention.ts";
import { scope } from "../../src/autograd/scope.ts";
import { randn } from "../../src/tensor/create.ts";
import { Generator } from "../../src/tensor/random.ts";
import type { Tensor } from "../../src/tensor/tensor.ts";

const B = 4;
const H = 9;
const HKV = 3;
const D = 64;

/** Useful FLOPs of the causal forward (see the header). */
export function causalForwardFlops(b: number, h: number, t: number, d: number): number {
  return (4 * b * h * t * t * d) / 2;
}

/**
 * The naive materialised attention, forward and backward through autograd, for the comparison rows: returns a
 * function recording one step, or null when the ops it needs are not available. It needs a batched matmul op
 * (for Q·Kᵀ and P·V), which the foundation does not provide yet; `softmax` exists. When matmul lands: repeat K/V
 * over the query heads of each group, S = matmul(q, transpose(k)) · scale, maskedFill of the upper triangle with
 * -inf, softmax, matmul with v, backward with `dout`.
 */
function naiveAttentionStep(_q: Tensor, _k: Tensor, _v: Tensor, _dout: Tensor): (() => void) | null {
  return null;
}

async function runShape(ctx: BenchContext, T: number): Promise<void> {
  const g = new Generator(1234 + T);
  const q = randn([B, H, T, D], { generator: g });
  const k = randn([B, HKV, T, D], { generator: g });
  const v = randn([B, HKV, T, D], { generator: g });
  const dout = randn([B, H, T, D], { generator: g });
  const fwdFlops = causalForwardFlops(B, H, T, D);
  const shape = `B${B} H${H} KV${HKV} T${T} D${D}`;
  const cpu = gpu().info.isFallbackAdapter;
  // lavapipe: a few seconds per fwd+bwd at T=512 with the slower variant, so fewer repetitions there
  const timing = ctx.quick || cpu
    ? { warmup: 1, iters: 1, repeats: 3 }
    : { warmup: 2, iters: 10, repeats: 3 };
  const variants: AttentionVariant[] = cpu ? ["rows", "tiled"] : ["tiled", "rows"];
  for (const variant of variants) {
    const fwd = await timeGpu(() =>
      scope(() => {
        attentionForwardRaw(q, k, v, { variant });
      }), timing);
    ctx.emit({
      bench: "attention",
      variant: `${variant} fwd`,
      shape,
      ms: fwd,
      gflops: fwdFlops / (fwd * 1e6),
      adapter: adapterName(),
    });
    const both = await timeGpu(() =>
      scope(() => {
        const { out, lse } = attentionForwardRaw(q, k, v, { variant });
        attentionBackwardRaw(q, k, v, out, lse, dout, { variant });
      }), timing);
    ctx.emit({
      bench: "attention",
      variant: `${variant} fwd+bwd`,
      shape,
      ms: both,
      gflops: (3.5 * fwdFlops) / (both * 1e6),
      adapter: adapterName(),
    });
  }
  const naive = naiveAttentionStep(q, k, v, dout);
  if (naive) {
    const ms = await timeGpu(() => scope(naive), timing);
    ctx.emit({
      bench: "attention",
      variant: "naive fwd+bwd",
      shape,
      ms,
      gflops: (3.5 * fwdFlops) / (ms * 1e6),
      adapter: adapterName(),
    });
  }
  for (const t of [q, k, v, dout]) t.dispose();
}

export const family: BenchFamily = {
  name: "attention",
  async run(ctx) {
    for (const T of ctx.quick ? [64] : [256, 512]) await runShape(ctx, T);
  },
};
