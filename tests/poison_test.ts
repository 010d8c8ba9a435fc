/**
 * Reads of GPU memory nothing wrote: with buffer poisoning on (src/gpu/pool.ts, `setBufferPoisoning`) every
 * buffer the pool hands out starts as a poison pattern instead of zeros (new) or an earlier tensor's values
 * (reused), so a kernel that reads padding, a tail past the logical size or a window its dispatch did not cover
 * gives other values. Each path here runs with poisoning off and under several patterns (NaN, ±1e30 where a NaN
 * would vanish in a max, the integer 3 where a huge index or segment bound would be clamped or masked) and must
 * give the same bits every time.
 */
import assert from "node:assert/strict";
import {
  emptyCache,
  fusedLogProbsWithStats,
  matmulInto,
  type MatmulVariant,
  mul,
  scope,
  setMatmulVariant,
  sum,
  tensor,
} from "../mod.ts";
import {
  attentionBackwardRaw,
  attentionForwardRaw,
  type AttentionVariant,
  attentionWindow,
} from "../src/autograd/ops/attention.ts";
import { bufferPoisoning, POISON_NAN, setBufferPoisoning } from "../src/gpu/pool.ts";
import { generate } from "../src/models/generate.ts";
import { hostBatch } from "../src/models/causal_lm.ts";
import { initModel } from "../src/models/init.ts";
import { packPairs } from "../src/models/pack_pairs.ts";
import { empty } from "../src/tensor/tensor.ts";
import type { Tokenizer } from "../src/tokenizer/tokenizer.ts";
import { TINY_GPT2, TINY_LLAMA, twoStepDpoRun } from "./trainer_helpers.ts";
import { gpuTest, hiddenAndGrads, randomArray, setup } from "./util.ts";

function f32Bits(x: number): number {
  return new Uint32Array(new Float32Array([x]).buffer)[0];
}

const POISONS: [string, number][] = [
  ["NaN", POISON_NAN],
  ["1e30", f32Bits(1e30)],
  ["-1e30", f32Bits(-1e30)],
  ["the integer 3", 3],
];

const MISTRAL = { ...TINY_LLAMA, model_type: "mistral", sliding_window: 5 };

/** Named results of one run, compared bit for bit. */
type Results = Record<string, ArrayLike<number>>;

function bitsOf(a: ArrayLike<number>): ArrayLike<number> {
  return a instanceof Float32Array ? new Uint32Array(a.buffer, a.byteOffset, a.length) : a;
}

function assertSameBits(got: Results, want: Results, what: string): void {
  assert.deepEqual(Object.keys(got), Object.keys(want), `${what}: result names`);
  for (const [name, w] of Object.entries(want)) {
    const g = got[name];
    assert.equal(g.length, w.length, `${what}: ${name}: length`);
    // f32 values by their bits (a NaN's payload included), host numbers by Object.is (−0 and NaN distinguished)
    const gb = bitsOf(g), wb = bitsOf(w);
    for (let i = 0; i < w.length; i++) {
      if (!Object.is(gb[i], wb[i])) {
        assert.fail(`${what}: ${name}[${i}] is ${g[i]}, ${w[i]} without poisoning`);
      }
    }
  }
}

/** Runs `run` with poisoning off, then under each pattern (all by default): every result must keep its bits. */
async function samePoisonedOrNot(
  what: string,
  run: () => Promise<Results>,
  poisons: [string, number][] = POISONS,
): Promise<void> {
  const before = bufferPoisoning();
  try {
    setBufferPoisoning(false);
    const want = await run();
    for (const [name, bits] of poisons) {
      setBufferPoisoning(true, bits);
      assertSameBits(await run(), want, `${what}, buffers poisoned with ${name}`);
    }
  } finally {
    setBufferPoisoning(before !== null, before ?? POISON_NAN);
  }
}

Deno.test(
  "buffer poisoning: acquired buffers, new or reused, read back the pattern; work recorded before still sees the old values",
  gpuTest,
  async () => {
    await setup();
    const before = bufferPoisoning();
    try {
      setBufferPoisoning(false);
      emptyCache();
      assert.deepEqual(await empty([70]).toArray(), new Float32Array(70), "off: a new buffer is zero");
      setBufferPoisoning(true);
      const fresh = await empty([70]).toArray();
      assert.ok(fresh.every(Number.isNaN), "on: a new buffer holds NaN");
      setBufferPoisoning(true, 3);
      assert.deepEqual([...await empty([5], "i32").toArray()], [3, 3, 3, 3, 3]);
      // a reused buffer: x's buffer goes to `again` while the product reading x is recorded and not yet submitted
      setBufferPoisoning(true);
      const x = tensor([1, 2, 3, 4, 5]);
      const y = mul(x, tensor([2, 2, 2, 2, 2]));
      const buf = x.storage.buffer;
      x.dispose();
      const again = empty([5]);
      assert.equal(again.storage.buffer, buf, "the released buffer is handed out again");
      assert.deepEqual([...await y.toArray()], [2, 4, 6, 8, 10], "the recorded product read x's values");
      assert.ok((await again.toArray()).every(Number.isNaN), "the reused buffer was poisoned");
    } finally {
      setBufferPoisoning(before !== null, before ?? POISON_NAN);
    }
  },
);

/**
 * Three pairs, T = 12, rows [chosen 0..2, rejected 0..2]: right padding, no common token, left padding (a batch of
 * tests/pack_pairs_test.ts's kind).
 */
function pairBatch() {
  const B = 6, T = 12;
  const ids = new Int32Array(B * T), mask = new Int32Array(B * T);
  const put = (b: number, toks: number[], left = 0) =>
    toks.forEach((x, i) => {
      ids[b * T + left + i] = x;
      mask[b * T + left + i] = 1;
    });
  put(0, [3, 4, 5, 6, 7, 9, 10, 11, 12]);
  put(3, [3, 4, 5, 6, 7, 9, 14]);
  put(1, [8, 3, 3, 3, 4]);
  put(4, [5, 6, 7]);
  put(2, [3, 5, 7, 9, 11, 13, 4, 4, 4], 3);
  put(5, [3, 5, 7, 9, 11, 13, 6, 6, 6, 6, 6, 6]);
  return { B, T, ids, mask };
}

for (
  const [name, cfg] of [["llama", TINY_LLAMA], ["gpt2", TINY_GPT2], ["mistral (window 5)", MISTRAL]] as const
) {
  Deno.test(
    `${name}: hidden states and gradients, padded, padding-free and prefix-shared, are the same poisoned or not`,
    gpuTest,
    async () => {
      await setup();
      const model = await initModel(cfg, { seed: 7, std: 0.2 });
      const { B, T, ids, mask } = pairBatch();
      const idBatch = { data: ids, shape: [B, T] as [number, number] };
      const maskBatch = { data: mask, shape: [B, T] as [number, number] };
      // the windowed model cannot share a prefix (windows count packed positions): it packs plainly
      const modes = [false, true, ...(name.startsWith("mistral") ? [] : ["pairs" as const])];
      const N = packPairs(hostBatch(idBatch, cfg.vocab_size, { attentionMask: maskBatch })).T;
      for (const packed of modes) {
        for (const checkpointing of packed === false ? [false] : [false, true]) {
          model.gradientCheckpointing = checkpointing;
          await samePoisonedOrNot(`${name}, packed ${packed}, checkpointing ${checkpointing}`, async () => {
            const r = await hiddenAndGrads(
              model,
              () => model.hiddenStates(idBatch, { attentionMask: maskBatch, packed }),
              (size) => randomArray(size, 9),
              (h) => h,
            );
            if (packed === "pairs") assert.deepEqual(r.shape, [1, N, model.config.hiddenSize]);
            return { hidden: r.real, ...Object.fromEntries(r.grads) };
          });
        }
      }
      model.dispose();
    },
  );
}

for (
  const [name, cfg, options] of [
    ["mistral (window 5), padding-free", MISTRAL, { paddingFree: true }],
    ["mistral (window 5), padded", MISTRAL, { paddingFree: false }],
    ["llama, prefix sharing", TINY_LLAMA, { prefixSharing: true }],
    ["gpt2, prefix sharing", TINY_GPT2, { prefixSharing: true }],
  ] as const
) {
  Deno.test(
    `DPO, ${name}: two steps log the same and update the same bits poisoned or not`,
    gpuTest,
    async () => {
      await setup();
      await samePoisonedOrNot(`DPO ${name}`, async () => {
        const run = await twoStepDpoRun(cfg, { ...options, outputDir: "/tmp/webdpo-poison" });
        const logged: Results = {};
        run.history.forEach((h, s) => {
          for (const [k, v] of Object.entries(h)) {
            if (typeof v === "number") logged[`step ${s + 1} ${k}`] = [v];
          }
        });
        return { ...logged, weights: run.weights };
      });
    },
  );
}

Deno.test(
  "fused log-probs with packed rows and ignored labels, forward, stats and backward, poisoned or not",
  gpuTest,
  async () => {
    await setup();
    const NH = 9, C = 13, V = 37, N = 14;
    const h0 = randomArray(NH * C, 1), w0 = randomArray(V * C, 2);
    // label position n takes h's row hRows[n], −1 where ignored (a packed h: tests/logprobs_test.ts)
    const labels = new Int32Array(N).fill(-100), hRows = new Int32Array(N).fill(-1);
    for (let n = 0, r = 0; n < N; n++) if (n % 3 !== 1 && r < NH) [labels[n], hRows[n]] = [(n * 7) % V, r++];
    for (const chunk of [undefined, 5]) {
      await samePoisonedOrNot(`fusedLogProbs, chunk ${chunk}`, () =>
        scope(async () => {
          const h = tensor(h0, [NH, C], { requiresGrad: true });
          const W = tensor(w0, [V, C], { requiresGrad: true });
          const r = fusedLogProbsWithStats(h, W, labels, { hRows, chunk });
          sum(mul(r.logps, tensor(randomArray(N, 3), [N]))).backward();
          return {
            logps: await r.logps.toArray(),
            logitSum: await r.logitSum.toArray(),
            logSumP2: await r.logSumP2.toArray(),
            dh: await h.grad!.toArray(),
            dW: await W.grad!.toArray(),
          };
        }));
    }
  },
);

Deno.test(
  "attention: rows and tiled, sliding windows with padding, padded head dims, segments, a KV cache's unwritten tail, poisoned or not",
  gpuTest,
  async () => {
    await setup();
    const run = (
      [B, H, HKV, TQ, TK, D]: number[],
      variant: AttentionVariant,
      opts: { slidingWindow?: number; keyLength?: number; segments?: Int32Array; mask?: Int32Array } = {},
    ) =>
      scope(async () => {
        const q = tensor(randomArray(B * H * TQ * D, 4), [B, H, TQ, D]);
        const k = tensor(randomArray(B * HKV * TK * D, 5), [B, HKV, TK, D]);
        const v = tensor(randomArray(B * HKV * TK * D, 6), [B, HKV, TK, D]);
        const o = {
          variant,
          slidingWindow: opts.slidingWindow,
          keyLength: opts.keyLength,
          segments: opts.segments && tensor(opts.segments, [B, TK, 2], { dtype: "i32" }),
          attentionMask: opts.mask && tensor(opts.mask, [B, TK], { dtype: "i32" }),
        };
        const { out, lse } = attentionForwardRaw(q, k, v, o);
        const res: Results = { out: await out.toArray(), lse: await lse.toArray() };
        if (opts.keyLength !== undefined) return res;
        const dout = tensor(randomArray(out.size, 7), out.shape);
        const g = attentionBackwardRaw(q, k, v, out, lse, dout, o);
        return { ...res, dq: await g.dq.toArray(), dk: await g.dk.toArray(), dv: await g.dv.toArray() };
      });
    // two segments per row, [0, 5) and [5, 11), and padding keys
    const T = 11;
    const segments = new Int32Array(2 * T * 2);
    for (let b = 0; b < 2; b++) {
      for (let t = 0; t < T; t++) segments.set(t < 5 ? [0, 5] : [5, T], 2 * (b * T + t));
    }
    const mask = new Int32Array(2 * T).fill(1).fill(0, 0, 3).fill(0, T + 8);
    for (const variant of ["rows", "tiled"] as const) {
      for (const D of [8, 6]) {
        await samePoisonedOrNot(
          `attention ${variant} D ${D} window 3`,
          () =>
            run([2, 4, 2, T, T, D], variant, {
              slidingWindow: 3,
              mask,
            }),
        );
        await samePoisonedOrNot(
          `attention ${variant} D ${D} segments`,
          () =>
            run([2, 4, 2, T, T, D], variant, {
              segments,
            }),
        );
        // a cache of 16 positions holding 9 keys, 2 new queries
        await samePoisonedOrNot(
          `attention ${variant} D ${D} keyLength`,
          () =>
            run([2, 4, 2, 2, 16, D], variant, {
              keyLength: 9,
            }),
        );
      }
    }
  },
);

Deno.test(
  "attention: the rows kernels' windows of keys continue what earlier windows wrote, poisoned or not",
  gpuTest,
  async () => {
    await setup();
    // D = 128, 900 positions: windows of 864 keys (forward), 895 (dQ) and 882 (dK/dV): two dispatches each
    const [T, D] = [900, 128];
    assert.ok(
      attentionWindow("fwd", D, 1) < T && attentionWindow("dq", D, 1) < T && attentionWindow("dkv", D, 1) < T,
    );
    const q0 = randomArray(T * D, 4, -2, 2), k0 = randomArray(T * D, 5, -2, 2), v0 = randomArray(T * D, 6);
    await samePoisonedOrNot("attention rows in windows", () =>
      scope(async () => {
        const [q, k, v] = [q0, k0, v0].map((x) => tensor(x, [1, 1, T, D]));
        const { out, lse } = attentionForwardRaw(q, k, v, { variant: "rows" });
        const g = attentionBackwardRaw(q, k, v, out, lse, tensor(randomArray(T * D, 7), [1, 1, T, D]), {
          variant: "rows",
        });
        return {
          out: await out.toArray(),
          lse: await lse.toArray(),
          dq: await g.dq.toArray(),
          dk: await g.dk.toArray(),
          dv: await g.dv.toArray(),
        };
      }), POISONS.slice(0, 1));
  },
);

Deno.test("matmul: K in windows, vec4-padded operands, accumulate, poisoned or not", gpuTest, async () => {
  await setup();
  // [variant, M, K, N]: the shared kernel's K window is 10 416 and the tiled one's 5 568 on loop-limited adapters
  const cases: [MatmulVariant, number, number, number][] = [
    ["register", 5, 23, 7],
    ["shared", 5, 21_001, 3],
    ["tiled", 5, 11_203, 3],
  ];
  for (const [v, M, K, N] of cases) {
    setMatmulVariant(v);
    try {
      for (const accumulate of [false, true]) {
        await samePoisonedOrNot(`matmul ${v} K ${K} accumulate ${accumulate}`, () =>
          scope(async () => {
            const out = tensor(new Float32Array(M * N).fill(1), [M, N]);
            matmulInto(out, tensor(randomArray(M * K, 8), [M, K]), tensor(randomArray(K * N, 9), [K, N]), {
              accumulate,
              alpha: 0.5,
            });
            return { out: await out.toArray() };
          }));
      }
    } finally {
      setMatmulVariant("auto");
    }
  }
});

Deno.test("generation with the KV cache: the same tokens poisoned or not", gpuTest, async () => {
  await setup();
  // ids in, ids out: generate needs no more of a tokenizer
  const tok = { eosTokenId: null, padTokenId: 0, bosTokenId: null, decode: () => "" } as unknown as Tokenizer;
  for (const cfg of [TINY_LLAMA, MISTRAL, TINY_GPT2]) {
    const model = await initModel(cfg, { seed: 11, std: 0.4, requiresGrad: false });
    await samePoisonedOrNot(`generate ${cfg.model_type}`, async () => {
      const prompts = [[1, 5, 6, 7, 8, 9, 4], [1, 9, 3]];
      const r = await generate(model, tok, prompts, { maxNewTokens: 9, eosTokenIds: [] });
      return { first: r.tokens[0], second: r.tokens[1] };
    });
    model.dispose();
  }
});
