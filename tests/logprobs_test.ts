import assert from "node:assert/strict";
import {
  dispatch,
  grid1d,
  kernel,
  memoryStats,
  noGrad,
  resetPeakMemory,
  scale,
  scope,
  type Tensor,
  tensor,
  zeros,
} from "../mod.ts";
import { crossEntropy } from "../src/autograd/ops/cross_entropy.ts";
import { fusedLogProbs, fusedLogProbsWithStats } from "../src/autograd/ops/fused_logprobs.ts";
import { shiftLabels } from "../src/autograd/ops/labels.ts";
import { lmHeadLogits } from "../src/autograd/ops/lm_head_logits.ts";
import { logSoftmaxGather } from "../src/autograd/ops/log_softmax_gather.ts";
import { sequenceLogps } from "../src/autograd/ops/sequence_logps.ts";
import { reshape } from "../src/autograd/ops/reshape.ts";
import {
  type MatmulVariant,
  matmulVariant,
  setMatmulVariant,
  subgroupMatmulSupported,
} from "../src/autograd/ops/matmul.ts";
import { gpu } from "../src/gpu/device.ts";
import {
  refCausalSequenceLogps,
  refCrossEntropy,
  refFusedLogProbs,
  refLogits,
  refLogitsBackward,
  refLogSoftmaxGather,
  refLogSoftmaxGatherBackward,
  refSequenceLogps,
} from "./reference/logprobs.ts";
import { assertClose, gpuTest, gradCheck, randomArray, setup, values } from "./util.ts";

/** Labels in [0, V) from a seed, with the given positions overwritten. */
function makeLabels(N: number, V: number, seed: number, set: Record<number, number> = {}): Int32Array {
  const u = randomArray(N, seed, 0, 1);
  const out = Int32Array.from(u, (x) => Math.min(V - 1, Math.floor(x * V)));
  for (const [i, v] of Object.entries(set)) if (Number(i) < N) out[Number(i)] = v;
  return out;
}

interface Case {
  N: number;
  C: number;
  V: number;
  chunks: (number | undefined)[];
  /** h and W scale: larger values give peakier softmaxes. */
  amp: number;
}

// awkward shapes: nothing is a multiple of the 4×4 tiles, 8×8 workgroups or 64-wide reductions; chunk sizes that do
// not divide V; labels at the first and last vocabulary entries and ignored rows (first, middle, last)
const CASES: Case[] = [
  { N: 1, C: 1, V: 1, chunks: [undefined], amp: 1 },
  { N: 1, C: 4, V: 1, chunks: [undefined], amp: 1 },
  { N: 7, C: 5, V: 13, chunks: [undefined, 1, 3, 5, 13, 64], amp: 1.5 },
  { N: 33, C: 64, V: 1000, chunks: [undefined, 97, 256, 999], amp: 0.6 },
  { N: 65, C: 12, V: 129, chunks: [40], amp: 2 },
];

function caseLabels(N: number, V: number, seed: number): Int32Array {
  return makeLabels(N, V, seed, { 0: 0, 1: V - 1, 3: -100, [N - 1]: V - 1, [Math.floor(N / 2)]: -100 });
}

/** `ref` with the rows whose label is ignored set to 0 (what the stats are there with `scoredRowsOnly`). */
function scoredOnly(ref: ArrayLike<number>, labels: Int32Array, ignore = -100): number[] {
  return Array.from(ref, (v, i) => (labels[i] === ignore ? 0 : v));
}

/**
 * The LM head's products run on the matmul kernels on CPU adapters and on its own kernels on GPUs
 * (fused_logprobs.ts): runs `fn` on each path this device can take, forced through the matmul variant ("auto":
 * the adapter's own choice; "register" or "subgroup": the matmul kernels; "shared": the LM head's kernels).
 */
async function eachProductPath(
  fn: (path: string) => Promise<unknown>,
  variants: (MatmulVariant | "auto")[] = ["register", "subgroup", "shared"],
): Promise<void> {
  for (const v of variants) {
    if (v === "subgroup" && !subgroupMatmulSupported(gpu().info)) continue; // the register path covers it
    setMatmulVariant(v);
    try {
      const used = matmulVariant();
      await fn(used === "shared" || used === "tiled" ? "LM-head kernels" : `${used} matmul kernel`);
    } finally {
      setMatmulVariant("auto");
    }
  }
}

Deno.test(
  "fusedLogProbs forward and stats match the float64 reference on awkward shapes",
  gpuTest,
  async () => {
    await setup();
    await eachProductPath(async (path) => {
      for (const { N, C, V, chunks, amp } of CASES) {
        const h = randomArray(N * C, 11 + N, -amp, amp);
        const W = randomArray(V * C, 23 + V, -amp, amp);
        const labels = N === 1 ? Int32Array.from([0]) : caseLabels(N, V, 5 + C);
        const ref = refFusedLogProbs(h, W, labels, N, C, V);
        for (const chunk of chunks) {
          for (const scoredRowsOnly of [true, false]) {
            await scope(async () => {
              const r = fusedLogProbsWithStats(tensor(h, [N, C]), tensor(W, [V, C]), labels, {
                chunk,
                scoredRowsOnly,
              });
              const what = `${path} N=${N} C=${C} V=${V} chunk=${chunk} scoredRowsOnly=${scoredRowsOnly}`;
              // the stats of ignored rows are computed only when every row goes through the LM head
              const stat = (x: ArrayLike<number>) => scoredRowsOnly ? scoredOnly(x, labels) : x;
              // f32 dot products over C and f32 sums over V: tolerance scales with the logit magnitudes
              assertClose(await values(r.logps), ref.logp, { atol: 2e-5 * C, rtol: 1e-4 }, `${what} logps`);
              assertClose(
                await values(r.logitSum),
                stat(ref.logitSum),
                { atol: 2e-5 * C * V, rtol: 1e-4 },
                `${what} sum`,
              );
              assertClose(
                await values(r.logSumP2),
                stat(ref.logSumP2),
                { atol: 2e-5 * C, rtol: 1e-4 },
                `${what} logΣp²`,
              );
              // ignored rows are exactly 0
              if (N > 3) assert.equal((await values(r.logps))[3], 0);
            });
          }
        }
      }
    });
  },
);

Deno.test("fusedLogProbs backward matches the reference dH and dW on awkward shapes", gpuTest, async () => {
  await setup();
  await eachProductPath(async (path) => {
    for (const { N, C, V, chunks, amp } of CASES) {
      const h = randomArray(N * C, 31 + N, -amp, amp);
      const W = randomArray(V * C, 41 + V, -amp, amp);
      const labels = N === 1 ? Int32Array.from([0]) : caseLabels(N, V, 7 + C);
      const d = randomArray(N, 3, -2, 2);
      const ref = refFusedLogProbs(h, W, labels, N, C, V, -100, d);
      for (const chunk of chunks) {
        for (const scoredRowsOnly of [true, false]) {
          await scope(async () => {
            const ht = tensor(h, [N, C], { requiresGrad: true });
            const Wt = tensor(W, [V, C], { requiresGrad: true });
            const out = fusedLogProbs(ht, Wt, labels, { chunk, scoredRowsOnly });
            out.backward(tensor(d, [N]));
            const what = `${path} N=${N} C=${C} V=${V} chunk=${chunk} scoredRowsOnly=${scoredRowsOnly}`;
            assertClose(await values(ht.grad!), ref.dH!, { atol: 1e-5 * V, rtol: 1e-3 }, `${what} dH`);
            assertClose(await values(Wt.grad!), ref.dW!, { atol: 1e-5 * N, rtol: 1e-3 }, `${what} dW`);
            if (N > 3) {
              // an ignored row gets no gradient at all
              const gh = await values(ht.grad!);
              assert.ok(gh.slice(3 * C, 4 * C).every((x) => x === 0), "ignored row 3 has a nonzero dH");
            }
            ht.grad!.dispose();
            Wt.grad!.dispose();
          });
        }
      }
    }
  });
});

Deno.test(
  "fusedLogProbs: only the inputs that require grad get one; [B, T, C] inputs keep [B, T]",
  gpuTest,
  async () => {
    await setup();
    const [B, T, C, V] = [2, 3, 6, 11];
    const h = randomArray(B * T * C, 1);
    const W = randomArray(V * C, 2);
    const labels = makeLabels(B * T, V, 3, { 2: -100 });
    const d = randomArray(B * T, 4);
    const ref = refFusedLogProbs(h, W, labels, B * T, C, V, -100, d);
    await scope(async () => {
      const ht = tensor(h, [B, T, C]);
      const Wt = tensor(W, [V, C], { requiresGrad: true });
      const out = fusedLogProbs(ht, Wt, tensor(labels, [B, T], { dtype: "i32" }));
      assert.deepEqual(out.shape, [B, T]);
      assertClose(await values(out), ref.logp, { atol: 1e-4, rtol: 1e-4 });
      out.backward(tensor(d, [B, T]));
      assert.equal(ht.grad, null);
      assertClose(await values(Wt.grad!), ref.dW!, { atol: 1e-4, rtol: 1e-3 });
      Wt.grad!.dispose();
    });
  },
);

Deno.test(
  "fusedLogProbs gradients pass a finite-difference check (h, W, and W tied to h)",
  gpuTest,
  async () => {
    await setup();
    const [N, C, V] = [5, 7, 9];
    const labels = makeLabels(N, V, 9, { 0: 0, 1: V - 1, 2: -100 });
    const h = randomArray(N * C, 12, -1, 1);
    const W = randomArray(V * C, 13, -1, 1);
    // eps 1e-2 on O(1) inputs; tolerance 2e-2 relative + 1e-3 absolute (util defaults), f32 forward
    await gradCheck((a, b) => fusedLogProbs(a, b, labels, { chunk: 4 }), [
      { data: h, shape: [N, C] },
      { data: W, shape: [V, C] },
    ]);
    // tied: the hidden states are computed from W itself (h = 0.5·W[0..N)), so W gets both gradients
    const Wt = randomArray(V * C, 14, -1, 1);
    await gradCheck((w) => {
      const hh = scale(reshape(w, [V, C]), 0.5);
      return fusedLogProbs(hh, w, makeLabels(V, V, 15, { 1: -100 }), { chunk: 2 });
    }, [{ data: Wt, shape: [V, C] }]);
  },
);

Deno.test("fusedLogProbs validates its arguments", gpuTest, async () => {
  await setup();
  const h = tensor(randomArray(6, 1), [2, 3]);
  const W = tensor(randomArray(12, 2), [4, 3]);
  assert.throws(
    () => fusedLogProbs(h, W, [0, 4]),
    /label 4 at position 1 is outside the vocabulary \[0, 4\)/,
  );
  assert.throws(() => fusedLogProbs(h, W, [0, -1]), /label -1 at position 1/);
  assert.throws(() => fusedLogProbs(h, W, [0]), /expected 2 labels/);
  assert.throws(
    () => fusedLogProbs(h, tensor(randomArray(8, 2), [4, 2]), [0, 1]),
    /expected W of shape \[V, 3\]/,
  );
  assert.throws(() => fusedLogProbs(h, W, [0, 1], { chunk: 0 }), /chunk must be a positive integer/);
  assert.throws(() => fusedLogProbs(h, W, tensor([0, 1])), /i32 tensor/);
  // an out-of-range label inside a GPU tensor cannot be checked without a readback: that row is NaN
  const out = await values(fusedLogProbs(h, W, tensor([1, 9], [2], { dtype: "i32" })));
  assert.ok(Number.isFinite(out[0]) && Number.isNaN(out[1]));
  // a custom ignoreIndex
  const r = await values(fusedLogProbs(h, W, [7, 2], { ignoreIndex: 7 }));
  assert.equal(r[0], 0);
  assert.ok(r[1] < 0);
  // all rows ignored: zeros, not NaN
  assert.deepEqual(await values(fusedLogProbs(h, W, [-100, -100])), [0, 0]);
});

Deno.test(
  "the fused path's peak memory stays far below the N·V·4 bytes of materialised logits",
  gpuTest,
  async () => {
    await setup();
    const [N, C, V] = [1024, 32, 8192];
    const h = tensor(randomArray(N * C, 1), [N, C], { requiresGrad: true });
    const W = tensor(randomArray(V * C, 2, -0.3, 0.3), [V, C], { requiresGrad: true });
    const labels = tensor(makeLabels(N, V, 3), [N], { dtype: "i32" });
    const logitsBytes = N * V * 4; // 32 MiB
    const extra = async (fn: () => Tensor | void) => {
      await scope(async () => {
        const out = fn();
        if (out) await out.toArray();
      });
      const before = memoryStats().liveBytes;
      resetPeakMemory();
      let peak = 0;
      await scope(async () => {
        const out = fn();
        if (out) await out.toArray();
        peak = memoryStats().peakBytes - before;
      });
      return peak;
    };
    const fwd = await extra(() => noGrad(() => fusedLogProbs(h, W, labels, { chunk: 256 })));
    assert.ok(fwd < logitsBytes / 16, `fused forward used ${fwd} bytes beyond its inputs`);
    const fwdDefault = await extra(() => noGrad(() => fusedLogProbs(h, W, labels)));
    assert.ok(fwdDefault <= 9 * 1024 * 1024, `fused forward (default chunk) used ${fwdDefault} bytes`);
    // forward + backward: the scratch chunk plus dH [N, C] and dW [V, C], which any path must produce
    const grads = (N * C + V * C) * 4;
    const both = await extra(() => {
      fusedLogProbs(h, W, labels, { chunk: 256 }).backward(tensor(randomArray(N, 4), [N]));
      h.grad!.dispose();
      W.grad!.dispose();
      h.grad = null;
      W.grad = null;
    });
    assert.ok(
      both < grads * 1.3 + logitsBytes / 16,
      `fused forward+backward used ${both} bytes beyond its inputs`,
    );
    const mat = await extra(() => noGrad(() => logSoftmaxGather(lmHeadLogits(h, W), labels)));
    assert.ok(mat >= logitsBytes, `materialised forward used ${mat} bytes`);
    assert.ok(fwd * 16 < mat);
  },
);

Deno.test(
  "lmHeadLogits and logSoftmaxGather match the reference, forward and backward",
  gpuTest,
  async () => {
    await setup();
    for (const [N, C, V] of [[1, 1, 1], [7, 5, 13], [33, 64, 1000], [3, 9, 130]]) {
      const h = randomArray(N * C, 51 + N, -0.8, 0.8);
      const W = randomArray(V * C, 52 + V, -0.8, 0.8);
      const labels = N === 1 ? Int32Array.from([V - 1]) : caseLabels(N, V, 53);
      const d = randomArray(N, 54, -1.5, 1.5);
      const z = refLogits(h, W, N, C, V);
      const ref = refLogSoftmaxGather(z, labels, N, V);
      const dz = refLogSoftmaxGatherBackward(z, labels, d, N, V);
      const { dH, dW } = refLogitsBackward(dz, h, W, N, C, V);
      await scope(async () => {
        const ht = tensor(h, [N, C], { requiresGrad: true });
        const Wt = tensor(W, [V, C], { requiresGrad: true });
        const logits = lmHeadLogits(ht, Wt);
        assert.deepEqual(logits.shape, [N, V]);
        assertClose(await values(logits), z, { atol: 1e-5 * C, rtol: 1e-4 }, `logits ${N}×${C}×${V}`);
        const lp = logSoftmaxGather(logits, labels);
        assertClose(await values(lp), ref.logp, { atol: 2e-5 * C, rtol: 1e-4 }, `logSoftmaxGather ${N}×${V}`);
        lp.backward(tensor(d, [N]));
        assertClose(await values(ht.grad!), dH, { atol: 1e-5 * V, rtol: 1e-3 }, `dH ${N}×${C}×${V}`);
        assertClose(await values(Wt.grad!), dW, { atol: 1e-5 * N, rtol: 1e-3 }, `dW ${N}×${C}×${V}`);
        ht.grad!.dispose();
        Wt.grad!.dispose();
      });
      // logSoftmaxGather's own backward, on logits given directly
      await scope(async () => {
        const zt = tensor(Float32Array.from(z), [N, V], { requiresGrad: true });
        logSoftmaxGather(zt, labels).backward(tensor(d, [N]));
        assertClose(await values(zt.grad!), dz, { atol: 1e-6, rtol: 1e-4 }, `dLogits ${N}×${V}`);
        zt.grad!.dispose();
      });
    }
    // finite differences on a tiny case (eps 1e-2, rtol 2e-2, atol 1e-3)
    await gradCheck((z) => logSoftmaxGather(z, [2, -100, 0, 4]), [{
      data: randomArray(20, 5, -2, 2),
      shape: [4, 5],
    }]);
    await gradCheck((a, b) => lmHeadLogits(a, b), [
      { data: randomArray(15, 6), shape: [3, 5] },
      { data: randomArray(35, 7), shape: [7, 5] },
    ]);
  },
);

Deno.test("shiftLabels + sequenceLogps give the SPEC's causal sequence log-probs", gpuTest, async () => {
  await setup();
  const [B, T, C, V] = [3, 6, 8, 17];
  const h = randomArray(B * T * C, 61, -1, 1);
  const W = randomArray(V * C, 62, -1, 1);
  // prompt tokens (-100) then completion tokens then right padding (-100); row 2 has its only completion token last
  const labels = [
    [-100, -100, 4, 0, 16, -100],
    [-100, 3, 3, 9, 1, 2],
    [-100, -100, -100, -100, -100, 5],
  ];
  const z = refLogits(h, W, B * T, C, V);
  const expected = refCausalSequenceLogps(z, labels.flat(), B, T, V);
  const shifted = shiftLabels(labels, [B, T]);
  assert.deepEqual([...shifted.slice(0, 6)], [-100, 4, 0, 16, -100, -100]);
  await scope(async () => {
    const tok = fusedLogProbs(tensor(h, [B * T, C]), tensor(W, [V, C]), shifted);
    const seq = sequenceLogps(reshape(tok, [B, T]), shifted);
    assert.deepEqual([...seq.counts], [3, 5, 1]);
    assertClose(await values(seq.logps), expected, { atol: 1e-4, rtol: 1e-4 }, "sequence sums");
    const mean = sequenceLogps(reshape(tok, [B, T]), shifted, { average: true });
    assertClose(await values(mean.logps), expected.map((x, b) => x / [3, 5, 1][b]), {
      atol: 1e-4,
      rtol: 1e-4,
    });
  });
  // a row with no scored label is an error naming the row (here: its only label is the first, never scored)
  const bad = [[-100, 1, 2], [7, -100, -100]];
  assert.throws(
    () => sequenceLogps(tensor(new Float32Array(6), [2, 3]), shiftLabels(bad, [2, 3])),
    /sequence 1 has no scored label/,
  );
  assert.throws(() => sequenceLogps(tensor(new Float32Array(6), [2, 3]), [1, 2]), /expected 6 labels/);
});

Deno.test(
  "sequenceLogps masks ignored positions and its backward matches the reference",
  gpuTest,
  async () => {
    await setup();
    for (const [B, T] of [[1, 1], [2, 7], [5, 130]]) {
      const x = randomArray(B * T, 70 + T, -3, 0);
      const labels = makeLabels(B * T, 50, 71);
      for (let i = 1; i < B * T; i += 3) labels[i] = -100; // ignored positions hold nonzero values: must be masked
      for (const average of [false, true]) {
        const ref = refSequenceLogps(x, labels, B, T, average);
        await scope(async () => {
          const xt = tensor(x, [B, T], { requiresGrad: true });
          const r = sequenceLogps(xt, labels, { average });
          assert.deepEqual([...r.counts], ref.counts);
          assertClose(await values(r.logps), ref.logps, { atol: 1e-5, rtol: 1e-5 });
          const dy = randomArray(B, 72, -1, 1);
          r.logps.backward(tensor(dy, [B]));
          const g = await values(xt.grad!);
          const expected = Array.from(labels, (l, i) => {
            const b = Math.floor(i / T);
            return l === -100 ? 0 : dy[b] * (average ? 1 / ref.counts[b] : 1);
          });
          assertClose(g, expected, { atol: 1e-6, rtol: 1e-5 });
          xt.grad!.dispose();
        });
      }
    }
    await gradCheck((x) => sequenceLogps(x, [1, -100, 3, 4, -100, 6], { average: true }).logps, [
      { data: randomArray(6, 73), shape: [2, 3] },
    ]);
  },
);

Deno.test(
  "crossEntropy is the mean NLL over scored labels, with gradients; all-ignored throws",
  gpuTest,
  async () => {
    await setup();
    const ceCases: [number, number, number, number | undefined][] = [[1, 3, 2, undefined], [9, 5, 13, 4], [
      40,
      16,
      300,
      77,
    ]];
    for (const [N, C, V, chunk] of ceCases) {
      const h = randomArray(N * C, 81 + N, -1, 1);
      const W = randomArray(V * C, 82 + V, -1, 1);
      const labels = makeLabels(N, V, 83, { 1: -100, 5: 0, 6: V - 1 });
      const expected = refCrossEntropy(h, W, labels, N, C, V);
      await scope(async () => {
        const loss = crossEntropy(tensor(h, [N, C]), tensor(W, [V, C]), labels, { chunk });
        assert.deepEqual(loss.shape, []);
        assertClose(
          [await loss.item()],
          [expected],
          { atol: 1e-5, rtol: 1e-5 },
          `crossEntropy ${N}×${C}×${V}`,
        );
      });
    }
    const labels = [2, -100, 0, 6];
    await gradCheck((a, b) => reshape(crossEntropy(a, b, labels, { chunk: 3 }), [1]), [
      { data: randomArray(12, 84), shape: [4, 3] },
      { data: randomArray(21, 85), shape: [7, 3] },
    ]);
    assert.throws(
      () =>
        crossEntropy(tensor(new Float32Array(6), [2, 3]), tensor(new Float32Array(9), [3, 3]), [-100, -100]),
      /every one of the 2 labels is ignoreIndex -100/,
    );
  },
);

// The two tests below use tensors just over 128 MiB, the maxStorageBufferBindingSize the project designs for (and
// lavapipe's): W, dW and the logits are then bound one vocabulary chunk / row block at a time. On a device with a
// larger limit they still check the results, through the whole-binding path.
Deno.test(
  "fusedLogProbs with W larger than one storage binding (chunks bound as byte ranges)",
  gpuTest,
  async () => {
    await setup();
    const [N, C, V] = [3, 2048, 16500]; // W: 16500·2048·4 bytes = 135.2 MB > 128 MiB
    const h = randomArray(N * C, 91, -0.5, 0.5);
    const W = randomArray(V * C, 92, -0.05, 0.05);
    const labels = Int32Array.from([V - 1, 16384, -100]); // the last entry, the first of the second chunk, ignored
    const d = Float32Array.from([1, -0.5, 2]);
    const ref = refFusedLogProbs(h, W, labels, N, C, V, -100, d);
    await eachProductPath(() =>
      scope(async () => {
        const ht = tensor(h, [N, C], { requiresGrad: true });
        const Wt = tensor(W, [V, C], { requiresGrad: true });
        const r = fusedLogProbsWithStats(ht, Wt, labels);
        assertClose(await values(r.logps), ref.logp, { atol: 1e-4, rtol: 1e-4 }, "logps");
        assertClose(
          await values(r.logSumP2),
          scoredOnly(ref.logSumP2, labels),
          { atol: 1e-4, rtol: 1e-4 },
          "logΣp²",
        );
        r.logps.backward(tensor(d, [N]));
        assertClose(await values(ht.grad!), ref.dH!, { atol: 1e-5, rtol: 1e-3 }, "dH");
        assertClose(await values(Wt.grad!), ref.dW!, { atol: 1e-6, rtol: 1e-3 }, "dW");
        ht.grad!.dispose();
        Wt.grad!.dispose();
      }), ["auto", "shared"]);
  },
);

Deno.test("logSoftmaxGather on logits larger than one storage binding (row blocks)", gpuTest, async () => {
  await setup();
  const [N, V] = [515, 65536]; // 515·65536·4 bytes = 135 MB > 128 MiB: blocks of 512 rows and 3 rows
  const z = randomArray(N * V, 93, -4, 4);
  const labels = makeLabels(N, V, 94, { 0: 0, 513: V - 1, 514: -100, 100: -100 });
  const ref = refLogSoftmaxGather(z, labels, N, V);
  const d = randomArray(N, 95, -1, 1);
  await scope(async () => {
    const zt = tensor(z, [N, V], { requiresGrad: true });
    const lp = logSoftmaxGather(zt, labels);
    assertClose(await values(lp), ref.logp, { atol: 1e-4, rtol: 1e-5 }, "logps");
    lp.backward(tensor(d, [N]));
    const g = await zt.grad!.toArray();
    // spot-check rows in both blocks (the full float64 reference backward would take longer than the kernel)
    for (const n of [0, 1, 100, 511, 512, 513, 514]) {
      const expected = new Float64Array(V);
      if (labels[n] !== -100) {
        for (let v = 0; v < V; v++) {
          expected[v] = d[n] * ((v === labels[n] ? 1 : 0) - Math.exp(z[n * V + v] - ref.lse[n]));
        }
      }
      assertClose(g.subarray(n * V, (n + 1) * V), expected, { atol: 1e-7, rtol: 1e-4 }, `dLogits row ${n}`);
    }
    zt.grad!.dispose();
  });
});

// lavapipe stops an invocation after 65535 loop iterations in all, silently: long vocabularies and many rows must
// be split into bounded pieces. These shapes failed before the pieces existed (a 70000-entry row in one loop).
Deno.test(
  "long vocabularies and many rows stay within lavapipe's per-invocation loop limit",
  gpuTest,
  async () => {
    await setup();
    for (const [N, C, V] of [[3, 8, 70000], [16500, 4, 3]]) {
      const h = randomArray(N * C, 101 + N, -1, 1);
      const W = randomArray(V * C, 102 + V, -1, 1);
      const labels = makeLabels(N, V, 103, { 0: V - 1, 1: -100 });
      const d = randomArray(N, 104, -1, 1);
      const ref = refFusedLogProbs(h, W, labels, N, C, V, -100, d);
      const z = refLogits(h, W, N, C, V);
      const fromLogits = refLogitsBackward(refLogSoftmaxGatherBackward(z, labels, d, N, V), h, W, N, C, V);
      await eachProductPath(async (products) => {
        const what = `N=${N} C=${C} V=${V} ${products}`;
        for (const path of ["fused", "materialised"]) {
          await scope(async () => {
            const ht = tensor(h, [N, C], { requiresGrad: true });
            const Wt = tensor(W, [V, C], { requiresGrad: true });
            const lp = path === "fused"
              ? fusedLogProbsWithStats(ht, Wt, labels)
              : { logps: logSoftmaxGather(lmHeadLogits(ht, Wt), labels), logSumP2: null };
            assertClose(
              await values(lp.logps),
              ref.logp,
              { atol: 1e-4, rtol: 1e-4 },
              `${what} ${path} logps`,
            );
            if (lp.logSumP2) {
              assertClose(
                await values(lp.logSumP2),
                scoredOnly(ref.logSumP2, labels),
                { atol: 1e-4, rtol: 1e-4 },
                `${what} logΣp²`,
              );
            }
            lp.logps.backward(tensor(d, [N]));
            assertClose(
              await values(ht.grad!),
              fromLogits.dH,
              { atol: 1e-5, rtol: 1e-3 },
              `${what} ${path} dH`,
            );
            assertClose(
              await values(Wt.grad!),
              fromLogits.dW,
              { atol: 1e-4, rtol: 1e-3 },
              `${what} ${path} dW`,
            );
            ht.grad!.dispose();
            Wt.grad!.dispose();
          });
        }
      }, ["auto", "shared"]);
    }
  },
);

Deno.test(
  "the statistics kernel gives the same results with 1, 8 and 64 invocations per row",
  gpuTest,
  async () => {
    await setup();
    // the op picks 1 lane per row on CPU adapters and 64 on GPUs; both (and 8) are checked here, on two chunks
    const STATS = kernel("logprob_stats.wgsl");
    const [N, V, split] = [67, 301, 150]; // chunks [0, 150) and [150, 301)
    const z = randomArray(N * V, 111, -6, 6);
    const labels = makeLabels(N, V, 112, { 0: 0, 1: V - 1, 2: 149, 3: 150, 4: -100 });
    const ref = refLogSoftmaxGather(z, labels, N, V);
    for (const lanes of [1, 8, 64]) {
      await scope(async () => {
        const lab = tensor(labels, [N], { dtype: "i32" });
        const outs = [0, 1, 2, 3].map(() => zeros([N]));
        const state = zeros([N, 5]);
        for (const [v0, vc] of [[0, split], [split, V - split]]) {
          const chunk = new Float32Array(N * vc);
          for (let n = 0; n < N; n++) chunk.set(z.subarray(n * V + v0, n * V + v0 + vc), n * vc);
          dispatch({
            kernel: STATS,
            constants: { LANES: lanes },
            params: { N, VC: vc, LDZ: vc, VLAB: v0, V, FIRST: v0 === 0, LAST: v0 + vc >= V, ignore: -100 },
            buffers: [
              tensor(chunk, [N, vc]).binding,
              lab.binding,
              state.binding,
              ...outs.map((t) => t.binding),
            ],
            workgroups: grid1d(N, 64 / lanes),
          });
        }
        const [logp, lse, sum, lsp2] = await Promise.all(outs.map(values));
        const tol = { atol: 2e-5, rtol: 1e-5 };
        assertClose(logp, ref.logp, tol, `LANES=${lanes} logp`);
        assertClose(lse, ref.lse, tol, `LANES=${lanes} lse`);
        assertClose(sum, ref.logitSum, { atol: 1e-3, rtol: 1e-5 }, `LANES=${lanes} Σz`);
        assertClose(lsp2, ref.logSumP2, tol, `LANES=${lanes} logΣp²`);
      });
    }
  },
);
