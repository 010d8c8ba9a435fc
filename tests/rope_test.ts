/**
 * Rotary position embedding: inv_freq (plain and llama3-scaled) against the float64 formula, the kernel against
 * the float64 reference (tests/reference/rope.ts) on [2, 3, 5, 8] and [1, 2, 7, 64] with left-padded and
 * cache-offset position ids, theta 10000 and 500000, long-context angles, both memory layouts, partial rotary
 * dims; backward by finite differences and as the inverse rotation; argument errors.
 */
import assert from "node:assert/strict";
import {
  type Llama3RopeScaling,
  rope,
  ropeInvFreq,
  ropeInvFreqTensor,
  ropeRaw,
} from "../src/autograd/ops/rope.ts";
import { scope } from "../src/autograd/scope.ts";
import { tensor } from "../src/tensor/create.ts";
import { invFreqRef, ropeRef } from "./reference/rope.ts";
import { assertClose, gpuTest, gradCheck, randomArray, setup } from "./util.ts";

type Shape4 = [number, number, number, number];

/** Llama 3.1's rope_scaling. */
const LLAMA31: Llama3RopeScaling = {
  ropeType: "llama3",
  factor: 8,
  lowFreqFactor: 1,
  highFreqFactor: 4,
  originalMaxPositionEmbeddings: 8192,
};

/** Position ids [B, T] for each batch row: plain, left-padded (Hugging Face: cumsum(mask) − 1, pads set to 1),
 * and continuing a KV cache. */
function positionsFor(B: number, T: number, start = 0): Int32Array {
  const p = new Int32Array(B * T);
  for (let b = 0; b < B; b++) {
    const kind = b % 3;
    const pad = Math.min(T - 1, 2 + b); // left padding of row b
    for (let t = 0; t < T; t++) {
      if (kind === 0) p[b * T + t] = t;
      else if (kind === 1) p[b * T + t] = t < pad ? 1 : t - pad;
      else p[b * T + t] = start + 37 * b + t;
    }
  }
  return p;
}

Deno.test("ropeInvFreq matches the float64 formula, with and without llama3 scaling", () => {
  for (const D of [8, 64, 128]) {
    for (const theta of [10000, 500000]) {
      assertClose(ropeInvFreq({ headDim: D, theta }), invFreqRef(D, theta), { atol: 0, rtol: 1e-14 });
      assertClose(
        ropeInvFreq({ headDim: D, theta, scaling: LLAMA31 }),
        invFreqRef(D, theta, LLAMA31),
        { atol: 0, rtol: 1e-14 },
      );
    }
  }
  // partial rotary: the exponent's denominator is the rotary dim
  assertClose(ropeInvFreq({ headDim: 10, rotaryDim: 4, theta: 10000 }), [1, 0.01], { atol: 0, rtol: 1e-15 });
  // Llama 3.1 (D = 128, theta 500000): wavelen 2π·500000^(i/64) < 8192/4 for i ≤ 28 (kept), > 8192/1 for
  // i ≥ 35 (divided by 8), smoothly interpolated for i = 29..34 (worked out by hand from the rule).
  const plain = ropeInvFreq({ headDim: 128, theta: 500000 });
  const scaled = ropeInvFreq({ headDim: 128, theta: 500000, scaling: LLAMA31 });
  for (let i = 0; i < 64; i++) {
    if (i <= 28) assert.equal(scaled[i], plain[i], `i = ${i} kept`);
    else if (i >= 35) assertClose([scaled[i]], [plain[i] / 8], { atol: 0, rtol: 1e-15 }, `i = ${i} scaled`);
    else assert.ok(scaled[i] < plain[i] && scaled[i] > plain[i] / 8, `i = ${i} interpolated`);
  }
  assert.equal(plain[0], 1);
});

Deno.test(
  "rope forward matches the reference on [2, 3, 5, 8] and [1, 2, 7, 64] (theta 1e4, 5e5)",
  gpuTest,
  async () => {
    await setup();
    const cases: { shape: Shape4; start: number }[] = [
      { shape: [2, 3, 5, 8], start: 0 },
      { shape: [3, 3, 5, 8], start: 1000 },
      { shape: [1, 2, 7, 64], start: 0 },
      { shape: [3, 2, 7, 64], start: 4090 },
    ];
    for (const [k, { shape, start }] of cases.entries()) {
      const [B, , T, D] = shape;
      const n = shape.reduce((a, b) => a * b, 1);
      const xd = randomArray(n, 300 + k, -2, 2);
      const pos = positionsFor(B, T, start);
      for (const theta of [10000, 500000]) {
        await scope(async () => {
          const out = rope(tensor(xd, shape), tensor(pos, [B, T]), { headDim: D, theta });
          assert.deepEqual(out.shape, shape);
          const ref = ropeRef(xd, shape, pos, invFreqRef(D, theta));
          // cos/sin to ~1e-7 of the same f32 angle, products of O(1) values
          assertClose(await out.toArray(), ref, { atol: 2e-6, rtol: 1e-6 }, `[${shape}] theta ${theta}`);
        });
      }
    }
  },
);

Deno.test("rope with llama3 scaling and long-context positions matches the reference", gpuTest, async () => {
  await setup();
  const shape: Shape4 = [2, 2, 7, 64];
  const xd = randomArray(2 * 2 * 7 * 64, 401, -1, 1);
  // positions up to 500000: angles up to 5e5 rad exercise the kernel's range reduction
  const pos = Int32Array.from([
    0,
    1,
    2,
    8191,
    8192,
    65535,
    131071,
    3,
    4,
    100000,
    250001,
    300000,
    499999,
    500000,
  ]);
  for (const [theta, scaling] of [[500000, LLAMA31], [500000, null], [10000, null]] as const) {
    await scope(async () => {
      const cfg = { headDim: 64, theta, scaling };
      const out = rope(tensor(xd, shape), tensor(pos, [2, 7]), cfg);
      const ref = ropeRef(xd, shape, pos, invFreqRef(64, theta, scaling ?? undefined));
      assertClose(
        await out.toArray(),
        ref,
        { atol: 2e-6, rtol: 1e-6 },
        `theta ${theta} scaling ${!!scaling}`,
      );
    });
  }
});

Deno.test("rope: [B, T, H, D] layout and partial rotary dims", gpuTest, async () => {
  await setup();
  const [B, H, T, D] = [2, 3, 5, 8];
  const xd = randomArray(B * H * T * D, 501, -2, 2);
  const pos = positionsFor(B, T, 77);
  await scope(async () => {
    const cfg = { headDim: D, theta: 10000 };
    const out = rope(tensor(xd, [B, T, H, D]), tensor(pos, [B, T]), cfg, { layout: "bthd" });
    const ref = ropeRef(xd, [B, T, H, D], pos, invFreqRef(D, 10000), { layout: "bthd" });
    assertClose(await out.toArray(), ref, { atol: 2e-6, rtol: 1e-6 }, "bthd");
  });
  for (const [D2, R] of [[10, 4], [8, 6], [64, 32]]) {
    const n = B * H * T * D2;
    const x2 = randomArray(n, 600 + R, -2, 2);
    await scope(async () => {
      const cfg = { headDim: D2, rotaryDim: R, theta: 10000 };
      const out = await rope(tensor(x2, [B, H, T, D2]), tensor(pos, [B, T]), cfg).toArray();
      const ref = ropeRef(x2, [B, H, T, D2], pos, invFreqRef(R, 10000), { R });
      assertClose(out, ref, { atol: 2e-6, rtol: 1e-6 }, `D ${D2} rotary ${R}`);
      for (let i = 0; i < n; i++) {
        if (i % D2 >= R) assert.ok(out[i] === x2[i], "dims past the rotary dim pass through unchanged");
      }
    });
  }
});

Deno.test(
  "rope: position 0 is the identity, rotations preserve pair norms and compose",
  gpuTest,
  async () => {
    await setup();
    const shape: Shape4 = [1, 2, 7, 64];
    const xd = randomArray(2 * 7 * 64, 701, -2, 2);
    await scope(async () => {
      const cfg = { headDim: 64, theta: 10000 };
      const zero = await rope(tensor(xd, shape), tensor(new Int32Array(7), [1, 7]), cfg).toArray();
      assert.deepEqual(zero, xd, "exactly the input at position 0");
      const p = Int32Array.from([1, 2, 3, 5, 8, 13, 21]);
      const once = rope(tensor(xd, shape), tensor(p, [1, 7]), cfg);
      const ov = await once.toArray();
      for (let row = 0; row < 14; row++) {
        for (let i = 0; i < 32; i++) {
          const a = row * 64 + i;
          const n0 = Math.hypot(xd[a], xd[a + 32]);
          const n1 = Math.hypot(ov[a], ov[a + 32]);
          assert.ok(Math.abs(n0 - n1) <= 1e-5 * (1 + n0), `pair norm ${n0} vs ${n1}`);
        }
      }
      // rotating by p twice = rotating by 2p (small angles only: f32 angles of 2p differ otherwise)
      const twice = await rope(once, tensor(p, [1, 7]), cfg).toArray();
      const direct = await rope(tensor(xd, shape), tensor(p.map((v) => 2 * v), [1, 7]), cfg).toArray();
      assertClose(twice, direct, { atol: 1e-5, rtol: 1e-5 }, "composition");
    });
  },
);

Deno.test("rope backward: finite differences, and the inverse rotation of dy", gpuTest, async () => {
  await setup();
  const pos = positionsFor(2, 5, 11);
  for (
    const [theta, scaling, rotaryDim] of [[10000, null, 8], [500000, LLAMA31, 8], [10000, null, 4]] as const
  ) {
    const cfg = { headDim: 8, theta, scaling, rotaryDim };
    // tolerance: gradCheck's defaults (the op is linear in x, so differences are exact up to f32 rounding)
    await gradCheck((x) => rope(x, tensor(pos, [2, 5]), cfg), [
      { data: randomArray(2 * 3 * 5 * 8, 801, -2, 2), shape: [2, 3, 5, 8] },
    ]);
  }
  const shape: Shape4 = [3, 2, 7, 64];
  const p2 = positionsFor(3, 7, 5000);
  const xd = randomArray(3 * 2 * 7 * 64, 802, -1, 1);
  const dyd = randomArray(3 * 2 * 7 * 64, 803, -1, 1);
  await scope(async () => {
    const cfg = { headDim: 64, theta: 500000, scaling: LLAMA31 };
    const x = tensor(xd, shape, { requiresGrad: true });
    const positions = tensor(p2, [3, 7]);
    rope(x, positions, cfg).backward(tensor(dyd, shape));
    const ref = ropeRef(dyd, shape, p2, invFreqRef(64, 500000, LLAMA31), { inverse: true });
    assertClose(await x.grad!.toArray(), ref, { atol: 2e-6, rtol: 1e-6 }, "dx = R(−angle)·dy");
    // the inverse undoes the forward
    const back = ropeRaw(ropeRaw(tensor(xd, shape), positions, cfg, 1), positions, cfg, -1);
    assertClose(await back.toArray(), xd, { atol: 2e-6, rtol: 1e-6 }, "inverse ∘ forward");
  });
});

Deno.test(
  "rope: inv_freq is uploaded once per configuration and outlives scopes; argument errors",
  gpuTest,
  async () => {
    await setup();
    const cfg = { headDim: 64, theta: 500000, scaling: LLAMA31 };
    const a = scope(() => ropeInvFreqTensor(cfg));
    const b = scope(() => ropeInvFreqTensor({ ...cfg, scaling: { ...LLAMA31 } }));
    assert.equal(a, b);
    assert.ok(!a.disposed);
    assertClose(await a.toArray(), Float32Array.from(invFreqRef(64, 500000, LLAMA31)), { atol: 0, rtol: 0 });
    assert.notEqual(ropeInvFreqTensor({ headDim: 64, theta: 10000 }), a);
    const x = tensor(new Float32Array(2 * 3 * 5 * 8), [2, 3, 5, 8]);
    const pos = tensor(new Int32Array(10), [2, 5]);
    assert.throws(
      () => rope(x, tensor(new Int32Array(5), [1, 5]), { headDim: 8 }),
      /positions must have shape \[B, T\]/,
    );
    assert.throws(
      () => rope(x, tensor(new Float32Array(10), [2, 5]), { headDim: 8 }),
      /positions must be an i32/,
    );
    assert.throws(() => rope(x, pos, { headDim: 16 }), /must equal headDim 16/);
    assert.throws(() => rope(x, pos, { headDim: 8, rotaryDim: 5 }), /rotaryDim must be an even integer/);
    assert.throws(() => rope(tensor([1, 2], [1, 2]), pos, { headDim: 2 }), /x must be \[B, H, T, D\]/);
    assert.throws(
      () => rope(x, pos, { headDim: 8, scaling: { ...LLAMA31, ropeType: "yarn" as "llama3" } }),
      /unsupported rope_scaling type "yarn"/,
    );
    assert.throws(
      () => rope(x, pos, { headDim: 8, scaling: { ...LLAMA31, highFreqFactor: 1 } }),
      /highFreqFactor > lowFreqFactor/,
    );
  },
);
