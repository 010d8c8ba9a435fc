/**
 * qkvRope (src/autograd/ops/qkv_rope.ts, kernels/qkv_rope.wgsl): a joined q/k/v projection output as RoPE'd q and
 * k heads and v heads, against the float64 reference (tests/reference/rope.ts) on awkward shapes (odd T and D,
 * GQA, partial rotary, positions far from 0), bit for bit against reshape + permute + rope, and its one backward
 * against the reference's inverse rotation and by finite differences.
 */
import assert from "node:assert/strict";
import { scope } from "../src/autograd/scope.ts";
import { concat } from "../src/autograd/ops/concat.ts";
import { permute } from "../src/autograd/ops/permute.ts";
import { reshape } from "../src/autograd/ops/reshape.ts";
import { rope, type RopeConfig } from "../src/autograd/ops/rope.ts";
import { qkvRope } from "../src/autograd/ops/qkv_rope.ts";
import { tensor } from "../src/tensor/create.ts";
import { dispatchCounter } from "../src/gpu/queue.ts";
import type { Tensor } from "../src/tensor/tensor.ts";
import { invFreqRef, ropeRef } from "./reference/rope.ts";
import { assertClose, gpuTest, gradCheck, randomArray, setup } from "./util.ts";

/** Heads [B, n, T, D] of columns [c0, c0 + n·D) of y [B, T, Ncols]. */
function headsOf(
  y: ArrayLike<number>,
  B: number,
  T: number,
  Ncols: number,
  c0: number,
  n: number,
  D: number,
) {
  const out = new Float64Array(B * n * T * D);
  for (let b = 0; b < B; b++) {
    for (let h = 0; h < n; h++) {
      for (let t = 0; t < T; t++) {
        for (let d = 0; d < D; d++) {
          out[((b * n + h) * T + t) * D + d] = y[(b * T + t) * Ncols + c0 + h * D + d];
        }
      }
    }
  }
  return out;
}

/** Writes heads [B, n, T, D] back into columns [c0, c0 + n·D) of y. */
function unheads(
  src: ArrayLike<number>,
  y: Float64Array,
  B: number,
  T: number,
  Ncols: number,
  c0: number,
  n: number,
  D: number,
) {
  for (let b = 0; b < B; b++) {
    for (let h = 0; h < n; h++) {
      for (let t = 0; t < T; t++) {
        for (let d = 0; d < D; d++) {
          y[(b * T + t) * Ncols + c0 + h * D + d] = src[((b * n + h) * T + t) * D + d];
        }
      }
    }
  }
}

const CASES = [
  { B: 2, T: 5, H: 3, HKV: 1, D: 8, R: 8, start: 0, theta: 10000 },
  { B: 1, T: 7, H: 4, HKV: 2, D: 6, R: 4, start: 1000, theta: 500000 }, // partial rotary
  { B: 3, T: 1, H: 2, HKV: 2, D: 64, R: 64, start: 4090, theta: 100000 },
  { B: 2, T: 33, H: 5, HKV: 1, D: 10, R: 10, start: 3, theta: 10000 },
];

function positions(B: number, T: number, start: number): Int32Array {
  const p = new Int32Array(B * T);
  for (let b = 0; b < B; b++) for (let t = 0; t < T; t++) p[b * T + t] = start + 7 * b + t;
  return p;
}

Deno.test(
  "qkvRope matches the float64 reference forward and backward on awkward shapes",
  gpuTest,
  async () => {
    await setup();
    for (const [k, c] of CASES.entries()) {
      const { B, T, H, HKV, D, R, start, theta } = c;
      const N = (H + 2 * HKV) * D;
      const y = randomArray(B * T * N, 40 + k, -2, 2);
      const pos = positions(B, T, start);
      const inv = invFreqRef(R, theta);
      const cfg: RopeConfig = { headDim: D, theta, rotaryDim: R };
      const what = `B ${B} T ${T} H ${H} HKV ${HKV} D ${D} R ${R}`;
      const qRef = ropeRef(headsOf(y, B, T, N, 0, H, D), [B, H, T, D], pos, inv, { R });
      const kRef = ropeRef(headsOf(y, B, T, N, H * D, HKV, D), [B, HKV, T, D], pos, inv, { R });
      const vRef = headsOf(y, B, T, N, (H + HKV) * D, HKV, D);
      const dq = randomArray(B * H * T * D, 60 + k);
      const dk = randomArray(B * HKV * T * D, 70 + k);
      const dv = randomArray(B * HKV * T * D, 80 + k);
      const dyRef = new Float64Array(B * T * N);
      unheads(ropeRef(dq, [B, H, T, D], pos, inv, { R, inverse: true }), dyRef, B, T, N, 0, H, D);
      unheads(ropeRef(dk, [B, HKV, T, D], pos, inv, { R, inverse: true }), dyRef, B, T, N, H * D, HKV, D);
      unheads(dv, dyRef, B, T, N, (H + HKV) * D, HKV, D);
      await scope(async () => {
        const yt = tensor(y, [B, T, N], { requiresGrad: true });
        const pt = tensor(pos, [B, T], { dtype: "i32" });
        const [q, kk, v] = qkvRope(yt, pt, cfg, { H, HKV });
        assert.deepEqual(q.shape, [B, H, T, D]);
        assert.deepEqual(kk.shape, [B, HKV, T, D]);
        const tol = { atol: 2e-6, rtol: 1e-6 };
        assertClose(await q.toArray(), Float32Array.from(qRef), tol, `${what}: q`);
        assertClose(await kk.toArray(), Float32Array.from(kRef), tol, `${what}: k`);
        assert.deepEqual(await v.toArray(), Float32Array.from(vRef), `${what}: v`);
        // bit for bit what reshape + permute + rope give
        const split = (c0: number, n: number) =>
          tensor(Float32Array.from(headsOf(y, B, T, N, c0, n, D)), [B, n, T, D]);
        assert.deepEqual(await q.toArray(), await rope(split(0, H), pt, cfg).toArray(), `${what}: q = rope`);
        assert.deepEqual(
          await kk.toArray(),
          await rope(split(H * D, HKV), pt, cfg).toArray(),
          `${what}: k = rope`,
        );
        // backward: all three gradients into one dy
        const L = concat([reshape(q, [q.size]), reshape(kk, [kk.size]), reshape(v, [v.size])]);
        L.backward(tensor(Float32Array.from([...dq, ...dk, ...dv]), [L.size]));
        assertClose(await yt.grad!.toArray(), Float32Array.from(dyRef), tol, `${what}: dy`);
      });
    }
  },
);

Deno.test(
  "qkvRope: one dispatch each way; the unfused path's values; gradients by finite differences",
  gpuTest,
  async () => {
    await setup();
    const B = 2, T = 3, H = 2, HKV = 1, D = 4;
    const N = (H + 2 * HKV) * D;
    const cfg: RopeConfig = { headDim: D, theta: 10000 };
    const pos = positions(B, T, 2);
    // gradCheck weights every output element by its own random factor, so every gradient matters
    const f = (y: Tensor) => {
      const pt = tensor(pos, [B, T], { dtype: "i32" });
      const [q, k, v] = qkvRope(y, pt, cfg, { H, HKV });
      return concat([reshape(q, [q.size]), reshape(k, [k.size]), reshape(v, [v.size])]);
    };
    await gradCheck(f, [{ data: randomArray(B * T * N, 5, -2, 2), shape: [B, T, N] }]);
    // the per-projection path: reshape + permute + rope, whose gradient sums in y come from three views
    await scope(async () => {
      const yd = randomArray(B * T * N, 9);
      const dd = randomArray(B * T * N, 10);
      const y1 = tensor(yd, [B, T, N], { requiresGrad: true });
      const L1 = f(y1);
      L1.backward(tensor(dd, [L1.size]));
      const pt = tensor(pos, [B, T], { dtype: "i32" });
      // reference through the per-head ops on host-split inputs (their gradients stitched back by index)
      const qs = tensor(Float32Array.from(headsOf(yd, B, T, N, 0, H, D)), [B, H, T, D], {
        requiresGrad: true,
      });
      const ks = tensor(Float32Array.from(headsOf(yd, B, T, N, H * D, HKV, D)), [B, HKV, T, D], {
        requiresGrad: true,
      });
      const vs = tensor(Float32Array.from(headsOf(yd, B, T, N, (H + HKV) * D, HKV, D)), [B, HKV, T, D], {
        requiresGrad: true,
      });
      const L2 = concat([
        reshape(rope(qs, pt, cfg), [qs.size]),
        reshape(rope(ks, pt, cfg), [ks.size]),
        reshape(permute(permute(vs, [0, 2, 1, 3]), [0, 2, 1, 3]), [vs.size]),
      ]);
      assert.deepEqual(await L1.toArray(), await L2.toArray());
      L2.backward(tensor(dd, [L2.size]));
      const want = new Float64Array(B * T * N);
      unheads(await qs.grad!.toArray(), want, B, T, N, 0, H, D);
      unheads(await ks.grad!.toArray(), want, B, T, N, H * D, HKV, D);
      unheads(await vs.grad!.toArray(), want, B, T, N, (H + HKV) * D, HKV, D);
      assert.deepEqual(await y1.grad!.toArray(), Float32Array.from(want), "dy = the per-head ops' gradients");
      // one dispatch forward, one backward
      const y3 = tensor(yd, [B, T, N], { requiresGrad: true });
      let d0 = dispatchCounter();
      const [q, k, v] = qkvRope(y3, pt, cfg, { H, HKV });
      assert.equal(dispatchCounter() - d0, 1);
      const back = (t: Tensor) => reshape(t, [t.size]);
      const L3 = concat([back(q), back(k), back(v)]);
      const g = tensor(dd, [L3.size]);
      d0 = dispatchCounter();
      L3.backward(g);
      // concat's backward copies rows (no dispatch): the one dispatch is qkvRope's
      assert.equal(dispatchCounter() - d0, 1);
    });
    await scope(() => {
      const pt = tensor(pos, [B, T], { dtype: "i32" });
      assert.throws(
        () => qkvRope(tensor(new Float32Array(B * T * 5), [B, T, 5]), pt, cfg, { H, HKV }),
        /\(H \+ 2·HKV\)/,
      );
      assert.throws(() => qkvRope(tensor(new Float32Array(N), [1, 1, N]), pt, cfg, { H, HKV }), /positions/);
    });
  },
);
