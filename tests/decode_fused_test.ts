/**
 * The fused decoding kernels (kernels/matmul_gemv_multi.wgsl, matmul_gemv_swiglu.wgsl, rope_kv_append.wgsl)
 * against plain TS references on awkward shapes, and bit for bit against the unfused ops they replace; the fused
 * Llama decoding layer (src/models/llama_decode.ts) against the unfused layer.
 */
import assert from "node:assert/strict";
import { linear } from "../src/nn/layers.ts";
import { swiglu } from "../src/autograd/ops/swiglu.ts";
import { permute } from "../src/autograd/ops/permute.ts";
import { reshape } from "../src/autograd/ops/reshape.ts";
import { rope } from "../src/autograd/ops/rope.ts";
import { isRegisterVariant, matmulVariant, setGemvMaxRows } from "../src/autograd/ops/matmul.ts";
import { setCpuKernels } from "../src/gpu/device.ts";
import { upload } from "../src/gpu/queue.ts";
import { applyLora, unloadLora } from "../src/nn/lora.ts";
import { gemvMulti, gemvSwiglu } from "../src/models/decode_gemv.ts";
import { decodeRmsNorm } from "../src/models/decode_norm.ts";
import { rmsNorm } from "../src/autograd/ops/rmsnorm.ts";
import { KVCache } from "../src/models/kv_cache.ts";
import { setFusedDecoding } from "../src/models/llama_decode.ts";
import { setFusedProjections } from "../src/models/llama.ts";
import { generate } from "../src/models/generate.ts";
import { loadModel } from "../src/models/loader.ts";
import type { Tokenizer } from "../src/tokenizer/tokenizer.ts";
import { dispatchCounter, noGrad, scope } from "../mod.ts";
import { tensor } from "../src/tensor/create.ts";
import { invFreqRef, ropeRef } from "./reference/rope.ts";
import { assertClose, eachKernelVariant, gpuTest, randomArray, setup } from "./util.ts";

const FIX = new URL("./fixtures/hf-reference/llama/", import.meta.url).pathname;

/** x [M, K] · w [N, K]ᵀ in float64. */
function linearRef(x: Float32Array, w: Float32Array, M: number, K: number, N: number): Float64Array {
  const out = new Float64Array(M * N);
  for (let m = 0; m < M; m++) {
    for (let n = 0; n < N; n++) {
      let s = 0;
      for (let k = 0; k < K; k++) s += x[m * K + k] * w[n * K + k];
      out[m * N + n] = s;
    }
  }
  return out;
}

/** `f()` with the CPU kernels forced (the register matmul and its row kernel), whatever the adapter. */
function onRowKernel<T>(f: () => T): T {
  setCpuKernels(true);
  try {
    return f();
  } finally {
    setCpuKernels(null);
  }
}

Deno.test("gemvMulti: one to three products of the same rows, as linear computes them", gpuTest, async () => {
  await setup();
  // N not a multiple of 64 or 8 (segments ending inside a workgroup), N = 1, K a multiple of 4 only
  for (
    const [M, K, Ns] of [[1, 20, [7, 70, 1]], [3, 12, [65, 9]], [2, 36, [130]], [4, 4, [3, 1, 129]]] as const
  ) {
    await scope(async () => {
      const xs = randomArray(M * K, M * 10 + K, -1, 1);
      const ws = Ns.map((N, i) => randomArray(N * K, 100 + i + K, -1, 1));
      const x = tensor(xs, [M, 1, K]);
      const w = Ns.map((N, i) => tensor(ws[i], [N, K]));
      const got = onRowKernel(() => noGrad(() => gemvMulti(x, w)));
      assert.ok(got !== null, `gemvMulti applies to M ${M}, K ${K} on the row kernel`);
      for (const [i, N] of Ns.entries()) {
        assert.deepEqual(got[i].shape, [M, 1, N]);
        const vals = await got[i].toArray();
        assertClose(
          vals,
          linearRef(xs, ws[i], M, K, N),
          { atol: 1e-5, rtol: 1e-5 },
          `M ${M} K ${K} product ${i}`,
        );
        const plain = await onRowKernel(() => noGrad(() => linear(x, w[i], null))).toArray();
        assert.deepEqual(vals, plain, `M ${M} K ${K} product ${i}: bit-identical to linear`);
      }
    });
  }
});

Deno.test("gemvSwiglu: silu(x·gᵀ)·(x·uᵀ), as linear, linear, swiglu compute it", gpuTest, async () => {
  await setup();
  for (const [M, K, N] of [[1, 24, 37], [3, 8, 1], [2, 44, 100]] as const) {
    await scope(async () => {
      const xs = randomArray(M * K, 7 + K, -2, 2);
      const gs = randomArray(N * K, 8 + N, -1, 1), us = randomArray(N * K, 9 + N, -1, 1);
      const x = tensor(xs, [M, K]);
      const g = tensor(gs, [N, K]), u = tensor(us, [N, K]);
      const got = onRowKernel(() => noGrad(() => gemvSwiglu(x, g, u)));
      assert.ok(got !== null);
      assert.deepEqual(got.shape, [M, N]);
      const gr = linearRef(xs, gs, M, K, N), ur = linearRef(xs, us, M, K, N);
      const want = gr.map((v, i) => (v / (1 + Math.exp(-v))) * ur[i]);
      const vals = await got.toArray();
      assertClose(vals, want, { atol: 1e-5, rtol: 1e-4 }, `M ${M} K ${K} N ${N}`);
      const plain = await onRowKernel(() => noGrad(() => swiglu(linear(x, g, null), linear(x, u, null))))
        .toArray();
      assert.deepEqual(vals, plain, `M ${M} K ${K} N ${N}: bit-identical to linear, linear, swiglu`);
    });
  }
});

Deno.test("decodeRmsNorm: rmsNorm's values with a workgroup per row", gpuTest, async () => {
  await setup();
  for (const [N, C] of [[1, 37], [3, 70], [2, 576], [5, 1]] as const) {
    await scope(async () => {
      const xs = randomArray(N * C, N + C, -3, 3), ws = randomArray(C, 2 * C, -1, 1);
      const x = tensor(xs, [N, 1, C]), w = tensor(ws, [C]);
      const got = await onRowKernel(() => noGrad(() => decodeRmsNorm(x, w, 1e-5))).toArray();
      const want = new Float64Array(N * C);
      for (let n = 0; n < N; n++) {
        let ss = 0;
        for (let c = 0; c < C; c++) ss += xs[n * C + c] ** 2;
        const r = 1 / Math.sqrt(ss / C + 1e-5);
        for (let c = 0; c < C; c++) want[n * C + c] = ws[c] * xs[n * C + c] * r;
      }
      assertClose(got, want, { atol: 1e-5, rtol: 1e-5 }, `N ${N} C ${C}`);
      const plain = await onRowKernel(() => noGrad(() => rmsNorm(x, w, 1e-5))).toArray();
      assert.deepEqual(got, plain, `N ${N} C ${C}: bit-identical to rmsNorm`);
    });
  }
});

Deno.test("gemvMulti / gemvSwiglu decline what the row kernel would not run", gpuTest, async () => {
  await setup();
  await scope(() => {
    const w = tensor(randomArray(8 * 6, 1), [8, 6]);
    assert.equal(gemvMulti(tensor(randomArray(6, 2), [1, 6]), [w]), null, "K not a multiple of 4");
    const w4 = tensor(randomArray(8 * 4, 3), [8, 4]);
    const prev = setGemvMaxRows(2);
    setCpuKernels(true);
    try {
      assert.equal(
        gemvMulti(tensor(randomArray(12, 4), [3, 4]), [w4]),
        null,
        "more rows than the row kernel's",
      );
      assert.equal(gemvSwiglu(tensor(randomArray(12, 4), [3, 4]), w4, w4), null);
    } finally {
      setCpuKernels(null);
      setGemvMaxRows(prev);
    }
  });
});

Deno.test(
  "KV cache appendRotated: RoPE of q and k and the cache writes in one dispatch, as rope + update",
  gpuTest,
  async () => {
    await setup();
    // partial rotary (R = 4 of D = 6), GQA 3:1, capacity 4 so that the second step moves the cache
    const [B, H, HKV, D, R, theta] = [2, 3, 1, 6, 4, 10000];
    const cfg = { headDim: D, theta, rotaryDim: R };
    const inv = invFreqRef(R, theta).map(Math.fround);
    const fusedCache = new KVCache(1, 4);
    const plainCache = new KVCache(1, 4);
    try {
      let t0 = 0;
      for (const [step, T] of [3, 2, 1].entries()) {
        await scope(async () => {
          const qs = randomArray(B * T * H * D, 30 + step), ks = randomArray(B * T * HKV * D, 40 + step);
          const vs = randomArray(B * T * HKV * D, 50 + step);
          const pos = Int32Array.from({ length: B * T }, (_, i) => (i < T ? 1000 + t0 + i : t0 + i - T));
          const positions = tensor(pos, [B, T], { dtype: "i32" });
          const q = tensor(qs, [B, T, H * D]),
            k = tensor(ks, [B, T, HKV * D]),
            v = tensor(vs, [B, T, HKV * D]);
          const got = noGrad(() => fusedCache.appendRotated(0, q, k, v, positions, cfg));
          assert.equal(got.length, t0 + T);
          assert.deepEqual(got.q.shape, [B, H, T, D]);
          // TS reference: the rotated queries [B, H, T, D], the rotated keys and the values at t0 .. t0 + T − 1
          const qRef = ropeRef(qs, [B, T, H, D], pos, inv, { R, layout: "bthd" });
          const kRef = ropeRef(ks, [B, T, HKV, D], pos, inv, { R, layout: "bthd" });
          const qGot = await got.q.toArray();
          const kGot = await got.k.toArray(), vGot = await got.v.toArray();
          const cap = got.k.shape[2];
          for (let b = 0; b < B; b++) {
            for (let t = 0; t < T; t++) {
              for (let d = 0; d < D; d++) {
                for (let h = 0; h < H; h++) {
                  const want = qRef[((b * T + t) * H + h) * D + d];
                  assert.ok(
                    Math.abs(qGot[((b * H + h) * T + t) * D + d] - want) < 1e-5,
                    `q ${b} ${h} ${t} ${d}`,
                  );
                }
                for (let h = 0; h < HKV; h++) {
                  const at = ((b * HKV + h) * cap + t0 + t) * D + d, src = ((b * T + t) * HKV + h) * D + d;
                  assert.ok(Math.abs(kGot[at] - kRef[src]) < 1e-5, `k ${b} ${h} ${t} ${d}`);
                  assert.equal(vGot[at], vs[src], `v ${b} ${h} ${t} ${d}`);
                }
              }
            }
          }
          // the unfused path: the same bits
          const heads = (x: typeof q, n: number) => permute(reshape(x, [B, T, n, D]), [0, 2, 1, 3]);
          const plain = noGrad(() => {
            const qr = rope(heads(q, H), positions, cfg);
            return { q: qr, ...plainCache.update(0, rope(heads(k, HKV), positions, cfg), heads(v, HKV)) };
          });
          assert.deepEqual(qGot, await plain.q.toArray(), "queries as rope gives them");
          assert.equal(plain.k.shape[2], cap);
          // the cached positions (those past the length hold whatever the buffers held)
          const cached = (a: Float32Array) =>
            Array.from(
              { length: B * HKV },
              (_, bh) => Array.from(a.subarray(bh * cap * D, (bh * cap + t0 + T) * D)),
            );
          assert.deepEqual(
            cached(kGot),
            cached(await plain.k.toArray()),
            "cached keys as rope + update give them",
          );
          assert.deepEqual(
            cached(vGot),
            cached(await plain.v.toArray()),
            "cached values as update gives them",
          );
        });
        t0 += T;
      }
    } finally {
      fusedCache.dispose();
      plainCache.dispose();
    }
  },
);

Deno.test(
  "fused decoding layer: the same hidden states and greedy tokens as the unfused one",
  gpuTest,
  async () => {
    await setup();
    const model = await loadModel(FIX, { requiresGrad: false });
    const prev = setFusedDecoding(true);
    try {
      // a left-padded batch of 2: the cached steps with the row kernels, the prefill without
      const ids = [[5, 9, 31, 7, 200, 11], [0, 0, 44, 3, 18, 250]];
      const mask = [[1, 1, 1, 1, 1, 1], [0, 0, 1, 1, 1, 1]];
      const run = async (fused: boolean) => {
        setFusedDecoding(fused);
        // the unfused layer also without the joined projections of training (llama.ts), as the count assumes
        setFusedProjections(fused);
        const cache = new KVCache(model.config.numLayers, 9);
        try {
          const out: Float32Array[] = [];
          let m = mask;
          let dispatches = 0;
          for (const step of [ids, [[17], [90]], [[3], [301]]]) {
            const d0 = dispatchCounter();
            out.push(
              await scope(() =>
                noGrad(() => model.hiddenStates(step, { attentionMask: m, cache }).toArray())
              ),
            );
            if (step !== ids) dispatches += dispatchCounter() - d0;
            m = m.map((r) => [...r, 1]);
          }
          return { out, dispatches };
        } finally {
          cache.dispose();
        }
      };
      await eachKernelVariant(async () => {
        const fused = await run(true);
        const plain = await run(false);
        for (const [i, h] of fused.out.entries()) {
          assert.deepEqual(h, plain.out[i], `step ${i}: hidden states`);
        }
        // per layer 8 dispatches instead of 17 with the row kernel; elsewhere 12 (the RoPE/cache fusion, the adds)
        const saved = isRegisterVariant(matmulVariant()) ? 9 : 5;
        assert.equal(
          plain.dispatches - fused.dispatches,
          2 * saved * model.config.numLayers,
          "dispatches saved",
        );
      });
      const tok = {
        eosTokenId: null,
        padTokenId: 0,
        bosTokenId: null,
        decode: () => "",
      } as unknown as Tokenizer;
      const greedy = async (fused: boolean) => {
        setFusedDecoding(fused);
        return (await generate(model, tok, [ids[0], [44, 3, 18]], { maxNewTokens: 6, eosTokenIds: [] }))
          .tokens;
      };
      assert.deepEqual(await greedy(true), await greedy(false));
    } finally {
      setFusedDecoding(prev);
      setFusedProjections(true);
      model.dispose();
    }
  },
);

Deno.test(
  "fused decoding layer with LoRA adapters: the hooked projections keep their own path",
  gpuTest,
  async () => {
    await setup();
    const model = await loadModel(FIX, { requiresGrad: false });
    const prev = setFusedDecoding(true);
    const steps = [[[5, 9, 31, 7]], [[17]], [[3]]];
    const run = async (fused: boolean) => {
      setFusedDecoding(fused);
      const cache = new KVCache(model.config.numLayers, 6);
      try {
        const out: number[][] = [];
        for (const step of steps) {
          out.push(
            Array.from(await scope(() => noGrad(() => model.hiddenStates(step, { cache }).toArray()))),
          );
        }
        return out;
      } finally {
        cache.dispose();
      }
    };
    try {
      const base = await run(true);
      const lora = applyLora(model, { r: 4, lora_alpha: 8, target_modules: "all-linear" });
      let i = 0;
      for (const layer of lora.adapter().layers.values()) {
        upload(layer.B.storage.buffer, randomArray(layer.B.size, 90 + i++, -0.2, 0.2));
      }
      const fused = await run(true);
      assert.deepEqual(fused, await run(false), "the same hidden states with the adapters, fused or not");
      assert.notDeepEqual(fused.at(-1), base.at(-1), "the adapters change the decoded step");
    } finally {
      setFusedDecoding(prev);
      unloadLora(model);
      model.dispose();
    }
  },
);
