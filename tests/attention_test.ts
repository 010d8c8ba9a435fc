/**
 * Flash attention (src/autograd/ops/attention.ts) against the float64 materialised-softmax reference in
 * tests/reference/attention.ts, for both kernel variants ("rows" for CPU adapters, "tiled" for GPUs).
 *
 * Tolerances: forward |Δ| ≤ 2e-5 + 1e-4·|ref| (f32 online softmax vs float64, T ≤ 129; the observed worst error
 * is about 3e-7); gradients |Δ| ≤ 5e-5 + 5e-4·|ref| (observed about 5e-7); the finite-difference check uses
 * gradCheck's defaults (eps 1e-2, rtol 2e-2, atol 1e-3) on a tiny case.
 */
import assert from "node:assert/strict";
import {
  attention,
  attentionBackwardRaw,
  type AttentionOptions,
  type AttentionVariant,
  attentionWindow,
  setAttentionSubgroup,
  setAttentionUnroll,
} from "../src/autograd/ops/attention.ts";
import { gpu, hasSubgroupsOf8 } from "../src/gpu/device.ts";
import { startKernelProfile, stopKernelProfile } from "../src/gpu/profile.ts";
import { memoryStats, resetPeakMemory } from "../src/gpu/pool.ts";
import { dispatchCounter, emptyCache } from "../src/gpu/queue.ts";
import { sizeClass } from "../src/gpu/pool.ts";
import { scope } from "../src/autograd/scope.ts";
import { setTextureOperands, textureCopies } from "../src/autograd/ops/texture_operands.ts";
import { tensor } from "../src/tensor/create.ts";
import type { Tensor } from "../src/tensor/tensor.ts";
import {
  attentionBackwardRef,
  attentionRef,
  type AttnRefOptions,
  type AttnShape,
} from "./reference/attention.ts";
import { assertClose, gpuTest, gradCheck, randomArray, setup } from "./util.ts";
import { pairSegments, type PairSpan } from "../src/models/pack_pairs.ts";

const FWD_TOL = { atol: 2e-5, rtol: 1e-4 };
const GRAD_TOL = { atol: 5e-5, rtol: 5e-4 };
const VARIANTS: AttentionVariant[] = ["rows", "tiled"];

interface Case {
  sh: AttnShape;
  /** [B·TK] host mask (1 = real token), uploaded as i32 or f32. */
  mask?: number[];
  maskType?: "i32" | "f32";
  window?: number;
  scale?: number;
  causal?: boolean;
  /** [B·TK] a sequence id per position: packed sequences, passed to the op as [start, end) segments. */
  segmentIds?: number[];
  /** B = 1: preference pairs sharing their prefix, passed to the op as 4-word segments (pack_pairs.ts). */
  pairs?: PairSpan[];
  /** Inputs drawn from [-range, range). */
  range?: number;
  seed?: number;
}

function hasNaN(a: ArrayLike<number>): boolean {
  for (let i = 0; i < a.length; i++) if (Number.isNaN(a[i])) return true;
  return false;
}

/** Runs forward and backward on the GPU and compares both with the reference; returns the GPU results. */
async function check(c: Case, variant: AttentionVariant) {
  const { B, H, HKV, TQ, TK, D } = c.sh;
  const r = c.range ?? 1;
  const seed = c.seed ?? 11;
  const qd = randomArray(B * H * TQ * D, seed, -r, r);
  const kd = randomArray(B * HKV * TK * D, seed + 1, -r, r);
  const vd = randomArray(B * HKV * TK * D, seed + 2, -1, 1);
  const gd = randomArray(B * H * TQ * D, seed + 3, -1, 1);
  const refOpts: AttnRefOptions = {
    mask: c.mask,
    window: c.window,
    scale: c.scale,
    causal: c.causal,
    segmentIds: c.segmentIds,
    sequenceSets: c.pairs ? pairSequenceSets(c.pairs) : undefined,
  };
  const ref = attentionRef(qd, kd, vd, c.sh, refOpts);
  const refG = attentionBackwardRef(qd, kd, vd, gd, c.sh, refOpts);
  const what = `${variant} ${JSON.stringify(c.sh)} window ${c.window} mask ${
    c.mask ? c.maskType ?? "i32" : "none"
  }`;
  return await scope(async () => {
    const q = tensor(qd, [B, H, TQ, D], { requiresGrad: true });
    const k = tensor(kd, [B, HKV, TK, D], { requiresGrad: true });
    const v = tensor(vd, [B, HKV, TK, D], { requiresGrad: true });
    const opts: AttentionOptions = { variant, slidingWindow: c.window, scale: c.scale, causal: c.causal };
    if (c.mask) {
      const dtype = c.maskType ?? "i32";
      opts.attentionMask = tensor(dtype === "i32" ? Int32Array.from(c.mask) : c.mask, [B, TK], { dtype });
    }
    if (c.segmentIds) {
      const bounds = segmentBounds(c.segmentIds, B, TK);
      opts.segments = tensor(bounds, [B, TK, 2], { dtype: "i32" });
      let span = 1;
      for (let i = 0; i < bounds.length; i += 2) span = Math.max(span, bounds[i + 1] - bounds[i]);
      opts.segmentSpan = span;
    }
    if (c.pairs) {
      opts.segments = tensor(pairSegments(c.pairs), [1, TK, 4], { dtype: "i32" });
      opts.segmentSpan = Math.max(...c.pairs.map((p) => p.prefix + p.chosen + p.rejected));
    }
    const out = attention(q, k, v, opts);
    assert.deepEqual(out.shape, [B, H, TQ, D]);
    out.backward(tensor(gd, out.shape));
    const o = await out.toArray();
    const dq = await q.grad!.toArray();
    const dk = await k.grad!.toArray();
    const dv = await v.grad!.toArray();
    for (const [name, a] of [["out", o], ["dq", dq], ["dk", dk], ["dv", dv]] as const) {
      assert.ok(!hasNaN(a), `${what}: ${name} has NaN`);
    }
    assertClose(o, ref.out, FWD_TOL, `${what}: out`);
    assertClose(dq, refG.dq, GRAD_TOL, `${what}: dq`);
    assertClose(dk, refG.dk, GRAD_TOL, `${what}: dk`);
    assertClose(dv, refG.dv, GRAD_TOL, `${what}: dv`);
    return { o, dq, dk, dv };
  });
}

/** [B·T] sequence ids (runs of equal ids) → [B, T, 2] (start, end) of each position's run. */
function segmentBounds(ids: number[], B: number, T: number): Int32Array {
  const out = new Int32Array(B * T * 2);
  for (let b = 0; b < B; b++) {
    let start = 0;
    for (let t = 1; t <= T; t++) {
      if (t === T || ids[b * T + t] !== ids[b * T + start]) {
        for (let u = start; u < t; u++) out.set([start, t], 2 * (b * T + u));
        start = t;
      }
    }
  }
  return out;
}

/** Pairs laid end to end → each position's sequences as bits: pair i's chosen is bit 2i, its rejected 2i + 1. */
function pairSequenceSets(pairs: PairSpan[]): number[] {
  return pairs.flatMap((p, i) => [
    ...Array(p.prefix).fill((1 << (2 * i)) | (1 << (2 * i + 1))),
    ...Array(p.chosen).fill(1 << (2 * i)),
    ...Array(p.rejected).fill(1 << (2 * i + 1)),
  ]);
}

/** Runs of the given lengths, numbered 0, 1, … per row. */
function runs(...rows: number[][]): number[] {
  return rows.flatMap((lengths) => lengths.flatMap((n, id) => Array(n).fill(id)));
}

const SHAPES: AttnShape[] = [
  { B: 1, H: 1, HKV: 1, TQ: 1, TK: 1, D: 1 },
  { B: 2, H: 4, HKV: 2, TQ: 7, TK: 7, D: 5 },
  { B: 1, H: 3, HKV: 1, TQ: 65, TK: 65, D: 64 },
  { B: 1, H: 2, HKV: 1, TQ: 129, TK: 129, D: 32 },
];

for (const variant of VARIANTS) {
  Deno.test(
    `attention (${variant}): forward and backward match the reference on awkward shapes`,
    gpuTest,
    async () => {
      await setup();
      for (const sh of SHAPES) await check({ sh }, variant);
    },
  );
}

/**
 * Runs each case with a switch of the rows variant at its default and then off (`set(false)`), and checks that
 * both give the same values within `tol`.
 */
async function samePaths(cases: Case[], set: (on: boolean) => boolean, tol: number): Promise<void> {
  for (const c of cases) {
    const on = await check(c, "rows");
    const prev = set(false);
    let off;
    try {
      off = await check(c, "rows");
    } finally {
      set(prev);
    }
    for (const k of ["o", "dq", "dk", "dv"] as const) {
      assertClose(on[k], off[k], { atol: tol, rtol: tol }, `${JSON.stringify(c.sh)} ${k}`);
    }
  }
}

Deno.test(
  "attention (rows): the head-dim loops unrolled (the default) or kept give the same values",
  gpuTest,
  async () => {
    await setup();
    // the same sums in the same order; a compiler may still contract a multiply-add differently
    await samePaths(
      [...SHAPES.map((sh) => ({ sh })), {
        sh: { B: 4, H: 4, HKV: 2, TQ: 13, TK: 13, D: 8 },
        mask: paddingMask(13),
      }, { sh: { B: 1, H: 4, HKV: 2, TQ: 40, TK: 40, D: 20 }, window: 9 }],
      setAttentionUnroll,
      1e-6,
    );
  },
);

Deno.test(
  "attention (rows): the forward and dQ with K/V rows shared across a subgroup agree with fwd_rows and dq_rows, and run where they can",
  gpuTest,
  async () => {
    await setup();
    // the same softmax, rescaled per key instead of per block of 8 keys: equal up to rounding
    await samePaths(
      [
        ...SHAPES.map((sh) => ({ sh })),
        { sh: { B: 4, H: 4, HKV: 2, TQ: 13, TK: 13, D: 8 }, mask: paddingMask(13) },
        { sh: { B: 1, H: 4, HKV: 2, TQ: 40, TK: 40, D: 36 }, window: 9 },
        { sh: { B: 2, H: 2, HKV: 1, TQ: 5, TK: 21, D: 100 }, causal: false },
      ],
      setAttentionSubgroup,
      2e-6,
    );
    const { info } = gpu();
    if (!hasSubgroupsOf8(info) || !info.features.timestampQuery) return; // fwd_rows runs: compared above
    startKernelProfile();
    await check({ sh: { B: 1, H: 3, HKV: 1, TQ: 20, TK: 20, D: 16 } }, "rows");
    const names = (await stopKernelProfile()).map((r) => r.kernel);
    for (const kernel of ["attention_fwd_subgroup.wgsl", "attention_dq_subgroup.wgsl"]) {
      assert.ok(names.some((n) => n.startsWith(kernel)), `${kernel} in ${names.join(", ")}`);
    }
    assert.ok(!names.some((n) => n.endsWith(":fwd_rows") || n.endsWith(":dq_rows")), names.join(", "));
  },
);

Deno.test(
  "attention (rows): the dK/dV pass with q and dO read from textures (llvmpipe's default) gives the storage kernel's bits",
  gpuTest,
  async () => {
    await setup();
    const before = textureCopies();
    try {
      await samePaths(
        [
          ...SHAPES.map((sh) => ({ sh })),
          { sh: { B: 4, H: 4, HKV: 2, TQ: 13, TK: 13, D: 8 }, mask: paddingMask(13) },
          { sh: { B: 1, H: 4, HKV: 2, TQ: 40, TK: 40, D: 36 }, window: 9 },
          { sh: { B: 2, H: 2, HKV: 1, TQ: 5, TK: 21, D: 100 }, causal: false },
        ],
        (on) => {
          setTextureOperands(on);
          return true;
        },
        0,
      );
      assert.ok(textureCopies() > before, "the texture path ran");
    } finally {
      setTextureOperands(null);
    }
  },
);

/** [B=4, TK=13]: left padding, right padding, a fully padded row, a row of real tokens only. */
function paddingMask(TK: number): number[] {
  const m: number[] = [];
  for (let s = 0; s < TK; s++) m.push(s < 4 ? 0 : 1); // left padding: 4 pads
  for (let s = 0; s < TK; s++) m.push(s < TK - 5 ? 1 : 0); // right padding: 5 pads
  for (let s = 0; s < TK; s++) m.push(0); // fully padded
  for (let s = 0; s < TK; s++) m.push(1);
  return m;
}

for (const variant of VARIANTS) {
  Deno.test(
    `attention (${variant}): padding masks, i32 and f32, fully masked rows are zero`,
    gpuTest,
    async () => {
      await setup();
      const sh = { B: 4, H: 4, HKV: 2, TQ: 13, TK: 13, D: 8 };
      const mask = paddingMask(sh.TK);
      const a = await check({ sh, mask, maskType: "i32" }, variant);
      const b = await check({ sh, mask, maskType: "f32" }, variant);
      assert.deepEqual(a.o, b.o, "i32 and f32 masks give the same output");
      const { H, HKV, TQ, D } = sh;
      // left-padded batch 0: queries 0..3 see only padding keys → zero rows, zero dq
      for (let h = 0; h < H; h++) {
        for (let i = 0; i < 4; i++) {
          for (let d = 0; d < D; d++) {
            const at = ((0 * H + h) * TQ + i) * D + d;
            assert.equal(a.o[at], 0);
            assert.equal(a.dq[at], 0);
          }
        }
      }
      // fully padded batch 2: every output and gradient exactly zero
      const qs = H * TQ * D;
      const ks = HKV * sh.TK * D;
      assert.ok(a.o.subarray(2 * qs, 3 * qs).every((x) => x === 0), "fully padded row: out = 0");
      assert.ok(a.dq.subarray(2 * qs, 3 * qs).every((x) => x === 0), "fully padded row: dq = 0");
      assert.ok(a.dk.subarray(2 * ks, 3 * ks).every((x) => x === 0), "fully padded row: dk = 0");
      assert.ok(a.dv.subarray(2 * ks, 3 * ks).every((x) => x === 0), "fully padded row: dv = 0");
      // right-padded batch 1: padded keys get no gradient, padded queries still attend to the real keys
      for (let s = sh.TK - 5; s < sh.TK; s++) {
        for (let d = 0; d < D; d++) {
          assert.equal(a.dk[((1 * HKV + 0) * sh.TK + s) * D + d], 0);
          assert.equal(a.dv[((1 * HKV + 0) * sh.TK + s) * D + d], 0);
        }
      }
      assert.ok(a.o.subarray(qs + (TQ - 1) * D, qs + TQ * D).some((x) => x !== 0));
    },
  );
}

for (const variant of VARIANTS) {
  Deno.test(
    `attention (${variant}): sliding windows 1, 3 and longer than T, with and without a mask`,
    gpuTest,
    async () => {
      await setup();
      const sh = { B: 2, H: 4, HKV: 2, TQ: 20, TK: 20, D: 8 };
      const mask = [...Array(20).fill(1), ...Array(20).fill(0).map((_, s) => (s < 6 ? 0 : 1))];
      for (const window of [1, 3, 25]) {
        const r = await check({ sh, window }, variant);
        if (window === 1) {
          // each query sees only itself: out = v of its own position
          const vd = randomArray(sh.B * sh.HKV * sh.TK * sh.D, 11 + 2, -1, 1);
          const expected: number[] = [];
          for (let b = 0; b < sh.B; b++) {
            for (let h = 0; h < sh.H; h++) {
              const hk = Math.floor(h / 2);
              for (let i = 0; i < sh.TQ; i++) {
                for (let d = 0; d < sh.D; d++) expected.push(vd[((b * sh.HKV + hk) * sh.TK + i) * sh.D + d]);
              }
            }
          }
          assertClose(r.o, expected, { atol: 1e-6, rtol: 1e-6 }, "window 1 gives v");
        }
        await check({ sh, window, mask }, variant);
      }
    },
  );
}

for (const variant of VARIANTS) {
  Deno.test(
    `attention (${variant}): queries at the end of longer keys, non-causal, sharp softmax`,
    gpuTest,
    async () => {
      await setup();
      // KV-cache style: TQ < TK, queries aligned to the last positions
      const mask = [...Array(11).fill(0).map((_, s) => (s < 2 ? 0 : 1)), ...Array(11).fill(1)];
      await check({ sh: { B: 2, H: 4, HKV: 2, TQ: 3, TK: 11, D: 8 }, mask }, variant);
      await check({ sh: { B: 2, H: 4, HKV: 2, TQ: 1, TK: 11, D: 8 }, mask, window: 4 }, variant);
      await check({ sh: { B: 1, H: 3, HKV: 3, TQ: 70, TK: 70, D: 8 }, window: 33 }, variant);
      // non-causal (bidirectional) with a mask
      await check({
        sh: { B: 2, H: 2, HKV: 1, TQ: 9, TK: 9, D: 8 },
        mask: mask.slice(0, 9).concat(mask.slice(11, 20)),
        causal: false,
      }, variant);
      // large scores: the online max must keep the softmax stable
      await check({ sh: { B: 1, H: 2, HKV: 1, TQ: 67, TK: 67, D: 8 }, scale: 1, range: 3 }, variant);
    },
  );
}

for (const variant of VARIANTS) {
  Deno.test(
    `attention (${variant}): packed sequences see only their own segment, with windows and odd lengths`,
    gpuTest,
    async () => {
      await setup();
      // one row of 5 sequences (lengths 1, 7, 2, 40, 17: pairs of rows and tiles straddle the boundaries)
      const one = { B: 1, H: 4, HKV: 2, TQ: 67, TK: 67, D: 8 };
      await check({ sh: one, segmentIds: runs([1, 7, 2, 40, 17]) }, variant);
      await check({ sh: one, segmentIds: runs([1, 7, 2, 40, 17]), window: 5 }, variant);
      // two rows packed differently; head dim 5 runs on padded copies
      const two = { B: 2, H: 3, HKV: 1, TQ: 33, TK: 33, D: 5 };
      await check({ sh: two, segmentIds: runs([33], [16, 16, 1]) }, variant);
      // bidirectional within segments
      await check({ sh: two, segmentIds: runs([10, 23], [3, 30]), causal: false }, variant);
    },
  );
}

for (const variant of VARIANTS) {
  Deno.test(
    `attention (${variant}): preference pairs sharing their prefix (4-word segments) match the reference`,
    gpuTest,
    async () => {
      await setup();
      // pairs with and without a prefix, an empty chosen or rejected rest, one-token parts; pairs of query rows,
      // blocks of keys and tiles straddle every boundary (T = 3 + 2 + 4 + 0 + 5 + 1 + 9 + 1 + 0 + 40 + 3 + 2 = 70)
      const pairs: PairSpan[] = [
        { prefix: 3, chosen: 2, rejected: 4 },
        { prefix: 0, chosen: 5, rejected: 1 },
        { prefix: 9, chosen: 1, rejected: 0 },
        { prefix: 40, chosen: 3, rejected: 2 },
      ];
      const T = pairs.reduce((n, p) => n + p.prefix + p.chosen + p.rejected, 0);
      await check({ sh: { B: 1, H: 4, HKV: 2, TQ: T, TK: T, D: 8 }, pairs }, variant);
      // head dim 5 (padded copies), more query heads per kv head
      await check({ sh: { B: 1, H: 3, HKV: 1, TQ: T, TK: T, D: 5 }, pairs, seed: 5 }, variant);
      // a long chosen rest behind a long prefix: dK/dV tiles whose last key is seen by fewer queries than the first
      const long: PairSpan[] = [{ prefix: 70, chosen: 66, rejected: 3 }, {
        prefix: 2,
        chosen: 1,
        rejected: 70,
      }];
      const TL = 212;
      await check({ sh: { B: 1, H: 2, HKV: 1, TQ: TL, TK: TL, D: 4 }, pairs: long, seed: 9 }, variant);
      assert.throws(
        () =>
          scope(() => {
            const x = tensor(new Float32Array(T * 4), [1, 1, T, 4]);
            attention(x, x, x, {
              segments: tensor(pairSegments(pairs), [1, T, 4], { dtype: "i32" }),
              causal: false,
              variant,
            });
          }),
        { message: /segments with holes need causal attention/ },
      );
    },
  );
}

Deno.test("attention: packed sequences give what each sequence gives alone", gpuTest, async () => {
  await setup();
  // the same sequences, packed into one row or run one per row, give the same outputs and gradients
  const lengths = [9, 4, 12];
  const T = lengths.reduce((a, b) => a + b);
  const H = 2, D = 8;
  const qd = randomArray(H * T * D, 3, -1, 1), kd = randomArray(H * T * D, 4, -1, 1);
  const vd = randomArray(H * T * D, 5, -1, 1), gd = randomArray(H * T * D, 6, -1, 1);
  const packed = await scope(async () => {
    const [q, k, v] = [qd, kd, vd].map((d) => tensor(d, [1, H, T, D], { requiresGrad: true }));
    const segments = tensor(segmentBounds(runs(lengths), 1, T), [1, T, 2], { dtype: "i32" });
    const o = attention(q, k, v, { segments });
    o.backward(tensor(gd, o.shape));
    return [await o.toArray(), await q.grad!.toArray(), await k.grad!.toArray()];
  });
  let t0 = 0;
  for (const n of lengths) {
    const part = (d: Float32Array) => {
      const out = new Float32Array(H * n * D);
      for (let h = 0; h < H; h++) out.set(d.subarray((h * T + t0) * D, (h * T + t0 + n) * D), h * n * D);
      return out;
    };
    const alone = await scope(async () => {
      const [q, k, v] = [qd, kd, vd].map((d) => tensor(part(d), [1, H, n, D], { requiresGrad: true }));
      const o = attention(q, k, v);
      o.backward(tensor(part(gd), o.shape));
      return [await o.toArray(), await q.grad!.toArray(), await k.grad!.toArray()];
    });
    for (let i = 0; i < 3; i++) {
      assertClose(part(packed[i]), alone[i], { atol: 1e-6, rtol: 1e-5 }, `sequence of ${n}: result ${i}`);
    }
    t0 += n;
  }
  await scope(() => {
    const q = tensor(qd, [1, H, T, D]);
    const seg = tensor(segmentBounds(runs(lengths), 1, T), [1, T, 2], { dtype: "i32" });
    assert.throws(
      () => attention(q, q, q, { segments: tensor(new Int32Array(T), [1, T], { dtype: "i32" }) }),
      {
        message: /segments must be i32 \[B, T, 2\]/,
      },
    );
    assert.throws(
      () =>
        attention(q, q, q, {
          segments: seg,
          attentionMask: tensor(new Int32Array(T).fill(1), [1, T], { dtype: "i32" }),
        }),
      { message: /segments or an attentionMask, not both/ },
    );
  });
});

Deno.test(
  "attention (rows): sequences past lavapipe's loop limit run in windows and match the reference",
  gpuTest,
  async () => {
    await setup();
    // D = 64 and 3 query heads per kv head: dK/dV of the early keys visit 3 × 2,100 query rows with two loops of
    // 16 inside each; as one dispatch an invocation ran out of loop iterations (dv off by 2.0). Each pass now
    // takes several windows: forward and dQ two, dK/dV four.
    const T = 2100;
    assert.ok(attentionWindow("fwd", 64, 3) < T && attentionWindow("dq", 64, 3) < T);
    assert.ok(4 * attentionWindow("dkv", 64, 3) >= T && 3 * attentionWindow("dkv", 64, 3) < T);
    await check({ sh: { B: 1, H: 3, HKV: 1, TQ: T, TK: T, D: 64 }, seed: 5 }, "rows");
    // packed: segments longer than a window still take windows; short ones one dispatch per pass, whatever T
    const sh = { B: 1, H: 3, HKV: 1, TQ: T, TK: T, D: 64 };
    await check({ sh, segmentIds: runs([300, 1000, 800]), seed: 6 }, "rows");
    const before = dispatchCounter();
    await check({ sh, segmentIds: runs([400, 500, 500, 500, 200]), seed: 7 }, "rows");
    const packed = dispatchCounter() - before;
    const one = dispatchCounter();
    await check({ sh: { ...sh, TQ: 64, TK: 64 }, seed: 7 }, "rows");
    assert.equal(packed, dispatchCounter() - one, "short segments: as many dispatches as a short sequence");
  },
);

Deno.test("attention: gradients match finite differences on a tiny masked GQA case", gpuTest, async () => {
  await setup();
  const sh = { B: 2, H: 2, HKV: 1, T: 5, D: 4 };
  const maskData = Int32Array.from([0, 1, 1, 1, 1, 1, 1, 1, 1, 0]);
  for (const variant of VARIANTS) {
    const f = (q: Tensor, k: Tensor, v: Tensor) =>
      attention(q, k, v, {
        variant,
        slidingWindow: 3,
        attentionMask: tensor(maskData, [2, 5], { dtype: "i32" }),
      });
    await gradCheck(f, [
      { data: randomArray(sh.B * sh.H * sh.T * sh.D, 5), shape: [sh.B, sh.H, sh.T, sh.D] },
      { data: randomArray(sh.B * sh.HKV * sh.T * sh.D, 6), shape: [sh.B, sh.HKV, sh.T, sh.D] },
      { data: randomArray(sh.B * sh.HKV * sh.T * sh.D, 7), shape: [sh.B, sh.HKV, sh.T, sh.D] },
    ]);
  }
});

Deno.test(
  "attention: the forward saves only O and L, the backward never allocates a [T, T] buffer",
  gpuTest,
  async () => {
    await setup();
    // an empty pool: free buffers left by earlier tests would let a tensor take a larger nearby size class,
    // and the live bytes counted below are buffer sizes
    emptyCache();
    const [B, H, HKV, T, D] = [1, 4, 2, 129, 32];
    await scope(async () => {
      const q = tensor(randomArray(B * H * T * D, 1), [B, H, T, D], { requiresGrad: true });
      const k = tensor(randomArray(B * HKV * T * D, 2), [B, HKV, T, D], { requiresGrad: true });
      const v = tensor(randomArray(B * HKV * T * D, 3), [B, HKV, T, D], { requiresGrad: true });
      const dy = tensor(randomArray(B * H * T * D, 4), [B, H, T, D]);
      await dy.toArray();
      const before = memoryStats().liveBytes;
      const out = attention(q, k, v, { variant: "rows" });
      const saved = memoryStats().liveBytes - before;
      assert.equal(
        saved,
        sizeClass(B * H * T * D * 4) + sizeClass(B * H * T * 4),
        "forward keeps O and L only",
      );
      resetPeakMemory();
      const peakBase = memoryStats().liveBytes;
      out.backward(dy);
      await q.grad!.toArray();
      const extra = memoryStats().peakBytes - peakBase;
      // dq, dk, dv and the (L, Δ) pairs; one head's [T, T] scores alone would be T²·4 = 66564 bytes
      const bound = sizeClass(B * H * T * D * 4) + 2 * sizeClass(B * HKV * T * D * 4) +
        sizeClass(B * H * T * 8);
      assert.ok(extra <= bound, `backward peak ${extra} bytes > ${bound}`);
    });
  },
);

Deno.test(
  "attention keyLength: keys are the first positions of a longer k/v buffer (a KV cache with room to grow)",
  gpuTest,
  async () => {
    await setup();
    // [B, HKV, TKS, D] buffers whose positions past TK hold garbage that must not be read
    const cases: { sh: AttnShape; TKS: number; window?: number; mask?: boolean }[] = [
      { sh: { B: 2, H: 4, HKV: 2, TQ: 1, TK: 9, D: 8 }, TKS: 16 },
      { sh: { B: 1, H: 3, HKV: 1, TQ: 3, TK: 40, D: 5 }, TKS: 41, window: 7 }, // D padded to 8
      { sh: { B: 2, H: 2, HKV: 2, TQ: 2, TK: 33, D: 16 }, TKS: 64, mask: true },
    ];
    for (const variant of VARIANTS) {
      for (const [i, c] of cases.entries()) {
        const { B, H, HKV, TQ, TK, D } = c.sh;
        const qd = randomArray(B * H * TQ * D, 40 + i, -1, 1);
        const kd = randomArray(B * HKV * TK * D, 50 + i, -1, 1);
        const vd = randomArray(B * HKV * TK * D, 60 + i, -1, 1);
        const mask = c.mask ? Array.from({ length: B * TK }, (_, j) => (j % TK === 3 ? 0 : 1)) : undefined;
        const want = attentionRef(qd, kd, vd, c.sh, { mask, window: c.window }).out;
        // the same keys inside buffers of TKS positions per head, the rest NaN
        const grow = (x: Float32Array) => {
          const out = new Float32Array(B * HKV * c.TKS * D).fill(NaN);
          for (let bh = 0; bh < B * HKV; bh++) {
            out.set(x.subarray(bh * TK * D, (bh + 1) * TK * D), bh * c.TKS * D);
          }
          return out;
        };
        const got = await scope(() =>
          attention(
            tensor(qd, [B, H, TQ, D]),
            tensor(grow(Float32Array.from(kd)), [B, HKV, c.TKS, D]),
            tensor(grow(Float32Array.from(vd)), [B, HKV, c.TKS, D]),
            {
              variant,
              keyLength: TK,
              slidingWindow: c.window,
              attentionMask: mask ? tensor(Int32Array.from(mask), [B, TK], { dtype: "i32" }) : undefined,
            },
          ).toArray()
        );
        assertClose(got, want, FWD_TOL, `${variant} case ${i}`);
      }
    }
    await scope(() => {
      const q = tensor(randomArray(8, 1), [1, 1, 1, 8], { requiresGrad: true });
      const kv = tensor(randomArray(32, 2), [1, 1, 4, 8]);
      assert.throws(() => attention(q, kv, kv, { keyLength: 2 }), /keyLength 2 < 4 positions is for no-grad/);
      assert.throws(() => attention(q, kv, kv, { keyLength: 5 }), /keyLength must be an integer in 0..4/);
    });
  },
);

Deno.test("attention: raw backward and invalid arguments", gpuTest, async () => {
  await setup();
  const q = tensor(randomArray(2 * 4 * 3 * 8, 1), [2, 4, 3, 8]);
  const k = tensor(randomArray(2 * 2 * 5 * 8, 2), [2, 2, 5, 8]);
  const v = tensor(randomArray(2 * 2 * 5 * 8, 3), [2, 2, 5, 8]);
  assert.throws(
    () => attention(q, k, tensor(randomArray(80, 1), [2, 2, 5, 4])),
    /v \[2, 2, 5, 4\] must have k's shape/,
  );
  assert.throws(
    () => attention(q, tensor(randomArray(120, 1), [2, 3, 5, 4]), v),
    /must be \[B, HKV, TK, D\]/,
  );
  assert.throws(
    () =>
      attention(
        q,
        tensor(randomArray(2 * 3 * 5 * 8, 1), [2, 3, 5, 8]),
        tensor(randomArray(240, 1), [2, 3, 5, 8]),
      ),
    /multiple of kv heads/,
  );
  assert.throws(
    () => attention(tensor(randomArray(2 * 4 * 6 * 8, 1), [2, 4, 6, 8]), k, v),
    /queries must be the last TQ ≤ TK positions/,
  );
  assert.throws(() => attention(q, k, v, { slidingWindow: 0 }), /positive integer/);
  assert.throws(() => attention(q, k, v, { slidingWindow: 2, causal: false }), /needs causal/);
  assert.throws(
    () => attention(q, k, v, { attentionMask: tensor([1, 1, 1], [1, 3]) }),
    /\[B, TK\] = \[2, 5\]/,
  );
  assert.throws(() => attention(tensor([1, 2], [2]), k, v), /4-D/);
  const big = tensor(new Float32Array(132), [1, 1, 1, 132]);
  assert.throws(() => attention(big, big, big), /1\.\.128/);
  // zero-length queries: empty output, zero key gradients
  const q0 = tensor(new Float32Array(0), [2, 4, 0, 8], { requiresGrad: true });
  const kk = tensor(randomArray(2 * 2 * 5 * 8, 2), [2, 2, 5, 8], { requiresGrad: true });
  const out0 = attention(q0, kk, kk);
  assert.deepEqual(out0.shape, [2, 4, 0, 8]);
  const g = attentionBackwardRaw(q0, kk, kk, out0, tensor(new Float32Array(0), [2, 4, 0]), out0);
  assert.ok((await g.dk.toArray()).every((x) => x === 0));
});
