/**
 * Fused log-prob gathering vs materialised logits (issue 3): time and peak memory of
 *   fused:        fusedLogProbs(h, W, labels) — vocabulary chunks, the [N, V] logits never exist;
 *   materialised: logSoftmaxGather(lmHeadLogits(h, W), labels) — the [N, V] logits (and, in backward, their
 *                 gradient) in memory,
 * each forward only and forward + backward, at N=2048, V=49152, C=576 (SmolLM2-135M's head, 2048 tokens).
 *
 * `peak_bytes` is the peak of live GPU memory during the run minus what was live before it (h, W and labels are
 * allocated beforehand and reported as `input_bytes`); `peak_ratio` on the fused rows is fused / materialised for
 * the same pass. `gflops` counts the model's matmul work (2·N·V·C forward, 6·N·V·C forward + backward) for both
 * paths, although the fused backward recomputes the logits (8·N·V·C done). `max_abs_diff` compares the two paths'
 * log-probs (and, for forward + backward, dW).
 *
 * On a CPU adapter (lavapipe/llvmpipe) the forward rows keep the full size (about 30 s each on 2 cores) but the
 * forward + backward rows use N=1024 rows (the largest power of two that runs in under a minute there; the full
 * size took 90–115 s), and say so in their `note`. Environment variables LOGPROBS_N, LOGPROBS_V, LOGPROBS_C set
 * the size, LOGPROBS_BWD_N the rows of the forward + backward rows.
 */
import { gpu, memoryStats, noGrad, resetPeakMemory, scope, sync, type Tensor, tensor } from "../../mod.ts";
import { fusedLogProbs } from "../../src/autograd/ops/fused_logprobs.ts";
import { lmHeadLogits } from "../../src/autograd/ops/lm_head_logits.ts";
import { logSoftmaxGather } from "../../src/autograd/ops/log_softmax_gather.ts";
import type { BenchFamily } from "../harness.ts";
import { isCpuAdapter } from "../../src/gpu/device.ts";

function random(n: number, seed: number, amp: number): Float32Array {
  let a = seed >>> 0;
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    a = (Math.imul(a, 1664525) + 1013904223) >>> 0;
    out[i] = ((a >>> 8) / 16777216 - 0.5) * 2 * amp;
  }
  return out;
}

interface Measured {
  ms: number;
  peak: number;
  logps: Float32Array;
  dW?: Float32Array;
}

async function measure(
  h: Tensor,
  W: Tensor,
  labels: Tensor,
  path: "fused" | "materialised",
  backward: boolean,
  readGrads: boolean,
): Promise<Measured> {
  const N = h.shape[0];
  await sync();
  const before = memoryStats().liveBytes;
  resetPeakMemory();
  const t0 = performance.now();
  const r = await scope(async () => {
    const run = () =>
      path === "fused" ? fusedLogProbs(h, W, labels) : logSoftmaxGather(lmHeadLogits(h, W), labels);
    if (!backward) {
      const lp = noGrad(run);
      await sync();
      return { lp, ms: performance.now() - t0 };
    }
    const lp = run();
    lp.backward(tensor(new Float32Array(N).fill(1), [N]));
    await sync();
    return { lp, ms: performance.now() - t0 };
  });
  const peak = memoryStats().peakBytes - before;
  const logps = await r.lp.toArray();
  r.lp.dispose();
  let dW: Float32Array | undefined;
  if (backward) {
    if (readGrads) dW = await W.grad!.toArray();
    for (const t of [h, W]) {
      t.grad?.dispose();
      t.grad = null;
    }
  }
  return { ms: r.ms, peak, logps, dW };
}

function inputs(N: number, V: number, C: number): [Tensor, Tensor, Tensor] {
  return [
    tensor(random(N * C, 1, 1), [N, C], { requiresGrad: true }),
    tensor(random(V * C, 2, 0.05), [V, C], { requiresGrad: true }),
    tensor(Int32Array.from({ length: N }, (_, i) => (i * 7919) % V), [N], { dtype: "i32" }),
  ];
}

function maxAbsDiff(a: Float32Array, b: Float32Array): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

export const family: BenchFamily = {
  name: "logprobs",
  async run(ctx) {
    const env = (k: string, d: number) => Number(Deno.env.get(k) ?? d);
    const cpu = isCpuAdapter(gpu().info);
    const N = ctx.quick ? 128 : env("LOGPROBS_N", 2048);
    const V = ctx.quick ? 4096 : env("LOGPROBS_V", 49152);
    const C = ctx.quick ? 64 : env("LOGPROBS_C", 576);
    const NB = ctx.quick ? 128 : env("LOGPROBS_BWD_N", cpu ? Math.min(N, 1024) : N);
    // compile every pipeline on a tiny problem first, so that no timing below includes shader compilation
    {
      const [h, W, labels] = inputs(64, 80, C);
      for (const p of ["fused", "materialised"] as const) await measure(h, W, labels, p, true, false);
      for (const t of [h, W, labels]) t.dispose();
    }
    for (const backward of [false, true]) {
      const n = backward ? NB : N;
      const [h, W, labels] = inputs(n, V, C);
      const input_bytes = h.bytes + W.bytes + labels.bytes;
      const pass = backward ? "forward+backward" : "forward";
      const f = await measure(h, W, labels, "fused", backward, true);
      const m = await measure(h, W, labels, "materialised", backward, true);
      // runs under 2 s (real GPUs): the best of three, peak memory from the first
      for (const [r, path] of [[f, "fused"], [m, "materialised"]] as const) {
        for (let i = 0; i < 2 && r.ms < 2000; i++) {
          r.ms = Math.min(r.ms, (await measure(h, W, labels, path, backward, false)).ms);
        }
      }
      let diff = maxAbsDiff(f.logps, m.logps);
      if (f.dW && m.dW) diff = Math.max(diff, maxAbsDiff(f.dW, m.dW));
      const flops = (backward ? 6 : 2) * n * V * C;
      const base = { bench: "logprobs", n, v: V, c: C, input_bytes };
      const note = n < N ? `CPU adapter: N=${n}, the largest that runs in under a minute` : undefined;
      ctx.emit({
        ...base,
        variant: `fused ${pass}`,
        ms: f.ms,
        gflops: flops / f.ms / 1e6,
        peak_bytes: f.peak,
        peak_ratio: f.peak / m.peak,
        max_abs_diff: diff,
        note,
      });
      ctx.emit({
        ...base,
        variant: `materialised ${pass}`,
        ms: m.ms,
        gflops: flops / m.ms / 1e6,
        peak_bytes: m.peak,
        note,
      });
      for (const t of [h, W, labels]) t.dispose();
    }
  },
};
