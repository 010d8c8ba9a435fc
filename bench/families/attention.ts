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
 * The comparison row "naive fwd+bwd" runs the materialised attention built from the foundation ops (S = Q·Kᵀ →
 * causal mask → softmax → P·V, [B, H, T, T] in memory; `naiveAttentionStep` below), with its peak memory.
 */
import { adapterName, type BenchContext, type BenchFamily, timeGpu } from "../harness.ts";
import { gpu } from "../../src/gpu/device.ts";
import { memoryStats, resetPeakMemory } from "../../src/gpu/pool.ts";
import { sync } from "../../src/gpu/queue.ts";
import {
  attentionBackwardRaw,
  attentionForwardRaw,
  type AttentionVariant,
} from "../../src/autograd/ops/attention.ts";
import { scope } from "../../src/autograd/scope.ts";
import { randn, tensor } from "../../src/tensor/create.ts";
import { gatherRows } from "../../src/autograd/ops/gather_rows.ts";
import { matmul } from "../../src/autograd/ops/matmul.ts";
import { reshape } from "../../src/autograd/ops/reshape.ts";
import { scale } from "../../src/autograd/ops/scale.ts";
import { softmax } from "../../src/autograd/ops/softmax.ts";
import { where } from "../../src/autograd/ops/where.ts";
import { Generator } from "../../src/tensor/random.ts";
import { type Tensor, view } from "../../src/tensor/tensor.ts";

const B = 4;
const H = 9;
const HKV = 3;
const D = 64;

/** Useful FLOPs of the causal forward (see the header). */
export function causalForwardFlops(b: number, h: number, t: number, d: number): number {
  return (4 * b * h * t * t * d) / 2;
}

/**
 * The naive materialised attention, forward and backward through autograd, built from the foundation ops: K and V
 * repeated over the query heads of each group (gatherRows), S = Q·Kᵀ·scale (batched matmul), the causal mask
 * (where with a [T, T] mask), softmax, P·V, then backward with `dout`. It holds [B·H, T, T] scores and
 * probabilities in memory. Returns a function recording one step and a cleanup.
 */
function naiveAttentionStep(
  q: Tensor,
  k: Tensor,
  v: Tensor,
  dout: Tensor,
): { step: () => void; dispose: () => void } {
  const [b, h, t, d] = q.shape;
  const hkv = k.shape[1];
  const group = h / hkv;
  const rows = Int32Array.from(
    { length: b * h },
    (_, i) => Math.floor(i / h) * hkv + Math.floor((i % h) / group),
  );
  const causal = new Float32Array(t * t);
  for (let i = 0; i < t; i++) for (let j = 0; j <= i; j++) causal[i * t + j] = 1;
  const mask = tensor(causal, [t, t]);
  const step = () => {
    const leaf = (x: Tensor, shape: number[]) => {
      const l = view(x, shape);
      l.requiresGrad = true;
      return l;
    };
    const ql = leaf(q, [b * h, t, d]);
    const kl = leaf(k, [b * hkv, t * d]);
    const vl = leaf(v, [b * hkv, t * d]);
    const kr = reshape(gatherRows(kl, rows), [b * h, t, d]);
    const vr = reshape(gatherRows(vl, rows), [b * h, t, d]);
    const scores = scale(matmul(ql, kr, { transB: true }), 1 / Math.sqrt(d));
    const p = softmax(where(mask, scores, -Infinity));
    matmul(p, vr).backward(reshape(dout, [b * h, t, d]));
    for (const l of [ql, kl, vl]) {
      l.grad?.dispose();
      l.grad = null;
    }
  };
  return { step, dispose: () => mask.dispose() };
}

/** GPU bytes allocated at the peak of one run of `fn`, above what was live before it. */
async function peakOf(fn: () => void): Promise<number> {
  await sync();
  resetPeakMemory();
  const before = memoryStats().liveBytes;
  fn();
  await sync();
  return memoryStats().peakBytes - before;
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
    const fwdBwd = () =>
      scope(() => {
        const { out, lse } = attentionForwardRaw(q, k, v, { variant });
        attentionBackwardRaw(q, k, v, out, lse, dout, { variant });
      });
    const both = await timeGpu(fwdBwd, timing);
    ctx.emit({
      bench: "attention",
      variant: `${variant} fwd+bwd`,
      shape,
      ms: both,
      gflops: (3.5 * fwdFlops) / (both * 1e6),
      peak_bytes: await peakOf(fwdBwd),
      adapter: adapterName(),
    });
  }
  {
    const naive = naiveAttentionStep(q, k, v, dout);
    const ms = await timeGpu(() => scope(naive.step), timing);
    const peak = await peakOf(() => scope(naive.step));
    naive.dispose();
    ctx.emit({
      bench: "attention",
      variant: "naive fwd+bwd",
      shape,
      ms,
      gflops: (3.5 * fwdFlops) / (ms * 1e6),
      peak_bytes: peak,
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
