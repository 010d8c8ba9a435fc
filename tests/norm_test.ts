/**
 * RMSNorm and LayerNorm: forward against float64 references (tests/reference/norm.ts) on awkward shapes
 * (C = 1, 5, 129, 576, 577; one to 70000 rows), eps effects and degenerate rows, backward by finite differences
 * (small shapes) and against the reference backward (larger ones), determinism of the weight gradients, and
 * argument errors — each numeric check with both row-kernel variants (a row per invocation, as on CPU adapters,
 * and a workgroup per row, as on GPUs).
 */
import assert from "node:assert/strict";
import { layerNorm, layerNormBackward, layerNormForward } from "../src/autograd/ops/layernorm.ts";
import { rmsNorm, rmsNormBackward, rmsNormForward } from "../src/autograd/ops/rmsnorm.ts";
import { scope } from "../src/autograd/scope.ts";
import { tensor } from "../src/tensor/create.ts";
import type { Tensor } from "../src/tensor/tensor.ts";
import { layerNormBackwardRef, layerNormRef, rmsNormBackwardRef, rmsNormRef } from "./reference/norm.ts";
import { assertClose, eachKernelVariant, gpuTest, gradCheck, randomArray, setup } from "./util.ts";

/** Shapes whose last dimension is C: awkward row counts and channel counts. */
const FORWARD_SHAPES: number[][] = [
  [1, 1],
  [4, 1],
  [3, 7, 5],
  [1, 129],
  [2, 3, 129],
  [17, 576],
  [9, 577],
  [577],
];

const rowsOf = (shape: number[]) => shape.slice(0, -1).reduce((a, b) => a * b, 1);

async function arr(t: Tensor): Promise<Float32Array> {
  return await t.toArray();
}

// ---------------------------------------------------------------------------------------------------- RMSNorm

Deno.test(
  "rmsNorm forward and saved rstd match the float64 reference on awkward shapes",
  gpuTest,
  async () => {
    await setup();
    await eachKernelVariant(async () => {
      for (const [k, shape] of FORWARD_SHAPES.entries()) {
        const C = shape[shape.length - 1];
        const n = rowsOf(shape) * C;
        const xd = randomArray(n, 10 + k, -2, 2);
        const wd = randomArray(C, 20 + k, -1.5, 1.5);
        for (const eps of [1e-6, 1e-5]) {
          await scope(async () => {
            const { y, rstd } = rmsNormForward(tensor(xd, shape), tensor(wd, [C]), eps);
            assert.deepEqual(y.shape, shape);
            assert.deepEqual(rstd.shape, [rowsOf(shape)]);
            const ref = rmsNormRef(xd, wd, C, eps);
            // f32 arithmetic on O(1) values: a few ulps
            assertClose(await arr(y), ref.y, { atol: 2e-6, rtol: 2e-6 }, `y [${shape}] eps ${eps}`);
            assertClose(await arr(rstd), ref.rstd, { atol: 0, rtol: 2e-6 }, `rstd [${shape}] eps ${eps}`);
          });
        }
      }
    });
  },
);

Deno.test(
  "rmsNorm over 70000 rows (workgroup grid split past 65535) forward and backward",
  gpuTest,
  async () => {
    await setup();
    await eachKernelVariant(async () => {
      const N = 70000;
      const C = 5;
      const xd = randomArray(N * C, 1, -3, 3);
      const wd = randomArray(C, 2, 0.5, 1.5);
      const dyd = randomArray(N * C, 3, -1, 1);
      await scope(async () => {
        const x = tensor(xd, [N, C], { requiresGrad: true });
        const w = tensor(wd, [C], { requiresGrad: true });
        const y = rmsNorm(x, w, 1e-6);
        assertClose(await arr(y), rmsNormRef(xd, wd, C, 1e-6).y, { atol: 3e-6, rtol: 3e-6 }, "y");
        y.backward(tensor(dyd, [N, C]));
        const ref = rmsNormBackwardRef(dyd, xd, wd, C, 1e-6);
        assertClose(await arr(x.grad!), ref.dx, { atol: 2e-5, rtol: 1e-4 }, "dx");
        // dw sums 70000 rows (|dw| up to ~100): f32 accumulation in 256 chunks
        assertClose(await arr(w.grad!), ref.dw, { atol: 2e-3, rtol: 1e-4 }, "dw");
      });
    });
  },
);

Deno.test("rmsNorm eps: zero rows give 0 (no NaN), tiny rows are dominated by eps", gpuTest, async () => {
  await setup();
  await eachKernelVariant(async () => {
    const C = 129;
    const wd = randomArray(C, 5, -1, 1);
    // row 0: zeros; row 1: scale 1e-4 (mean x² ≈ 3e-9 ≪ eps); row 2: scale 1e-2 (≈ eps); row 3: scale 1e3
    const xd = new Float32Array(4 * C);
    const scales = [0, 1e-4, 1e-2, 1e3];
    const unit = randomArray(4 * C, 6, -1, 1);
    for (let i = 0; i < xd.length; i++) xd[i] = unit[i] * scales[Math.floor(i / C)];
    for (const eps of [1e-6, 1e-5, 1e-2]) {
      await scope(async () => {
        const { y, rstd } = rmsNormForward(tensor(xd, [4, C]), tensor(wd, [C]), eps);
        const ref = rmsNormRef(xd, wd, C, eps);
        const yv = await arr(y);
        assert.ok(yv.every(Number.isFinite), "finite outputs");
        for (let c = 0; c < C; c++) assert.ok(yv[c] === 0, "a zero row stays zero");
        assertClose(yv, ref.y, { atol: 1e-6, rtol: 5e-6 }, `y eps ${eps}`);
        assertClose(await arr(rstd), ref.rstd, { atol: 0, rtol: 5e-6 }, `rstd eps ${eps}`);
      });
    }
    // the eps matters: the tiny row's output changes by orders of magnitude between eps 1e-6 and 1e-2
    const a = rmsNormRef(xd, wd, C, 1e-6).rstd[1];
    const b = rmsNormRef(xd, wd, C, 1e-2).rstd[1];
    assert.ok(a / b > 50, `reference sanity: eps dominates the tiny row (${a} vs ${b})`);
    // and the backward of a zero row is finite (dx = rstd·w·dy)
    await scope(async () => {
      const x = tensor(xd.slice(0, C), [1, C], { requiresGrad: true });
      const w = tensor(wd, [C], { requiresGrad: true });
      const dy = randomArray(C, 8, -1, 1);
      rmsNorm(x, w, 1e-6).backward(tensor(dy, [1, C]));
      const ref = rmsNormBackwardRef(dy, xd.slice(0, C), wd, C, 1e-6);
      assertClose(await arr(x.grad!), ref.dx, { atol: 1e-3, rtol: 1e-5 }, "dx of a zero row (≈ 1000·w·dy)");
      assertClose(await arr(w.grad!), ref.dw, { atol: 0, rtol: 0 }, "dw of a zero row is 0");
    });
  });
});

Deno.test("rmsNorm gradients match finite differences on small shapes", gpuTest, async () => {
  await setup();
  await eachKernelVariant(async () => {
    // tolerance: gradCheck's default (rtol 2e-2, atol 1e-3 on directional derivatives, step 1e-2)
    for (const [shape, eps] of [[[3, 5], 1e-6], [[2, 2, 7], 1e-5], [[4, 1], 0.1], [[1, 33], 1e-6]] as const) {
      const C = shape[shape.length - 1];
      const n = rowsOf([...shape]) * C;
      await gradCheck((x, w) => rmsNorm(x, w, eps), [
        { data: randomArray(n, 30 + n, -2, 2), shape: [...shape] },
        { data: randomArray(C, 40 + C, 0.5, 1.5), shape: [C] },
      ]);
    }
  });
});

Deno.test("rmsNorm backward matches the reference backward on larger shapes", gpuTest, async () => {
  await setup();
  await eachKernelVariant(async () => {
    for (const [N, C] of [[37, 577], [300, 129], [5, 576], [1000, 1]]) {
      const xd = randomArray(N * C, N + C, -2, 2);
      const wd = randomArray(C, N * C, -1.5, 1.5);
      const dyd = randomArray(N * C, N - C, -1, 1);
      await scope(async () => {
        const x = tensor(xd, [N, C]);
        const w = tensor(wd, [C]);
        const { rstd } = rmsNormForward(x, w, 1e-5);
        const { dx, dweight } = rmsNormBackward(tensor(dyd, [N, C]), x, w, rstd);
        const ref = rmsNormBackwardRef(dyd, xd, wd, C, 1e-5);
        assertClose(await arr(dx!), ref.dx, { atol: 1e-5, rtol: 1e-4 }, `dx [${N}, ${C}]`);
        assertClose(await arr(dweight!), ref.dw, { atol: 1e-4, rtol: 1e-4 }, `dw [${N}, ${C}]`);
      });
    }
  });
});

Deno.test("rmsNorm: weight gradients are deterministic; frozen inputs get no gradient", gpuTest, async () => {
  await setup();
  const [N, C] = [513, 65];
  const xd = randomArray(N * C, 91, -2, 2);
  const wd = randomArray(C, 92, -1, 1);
  const dyd = randomArray(N * C, 93, -1, 1);
  const run = () =>
    scope(async () => {
      const x = tensor(xd, [N, C], { requiresGrad: true });
      const w = tensor(wd, [C], { requiresGrad: true });
      rmsNorm(x, w).backward(tensor(dyd, [N, C]));
      return [await arr(x.grad!), await arr(w.grad!)];
    });
  const [dx1, dw1] = await run();
  const [dx2, dw2] = await run();
  assert.deepEqual(dw1, dw2, "dweight bitwise equal across runs");
  assert.deepEqual(dx1, dx2, "dx bitwise equal across runs");
  await scope(async () => {
    // a frozen weight (LoRA): only x gets a gradient
    const x = tensor(xd, [N, C], { requiresGrad: true });
    const w = tensor(wd, [C]);
    rmsNorm(x, w).backward(tensor(dyd, [N, C]));
    assert.equal(w.grad, null);
    assert.deepEqual(await arr(x.grad!), dx1);
    // a frozen input: only the weight gets one
    const x2 = tensor(xd, [N, C]);
    const w2 = tensor(wd, [C], { requiresGrad: true });
    rmsNorm(x2, w2).backward(tensor(dyd, [N, C]));
    assert.equal(x2.grad, null);
    assert.deepEqual(await arr(w2.grad!), dw1);
  });
});

Deno.test("rmsNorm: zero rows, and argument errors", gpuTest, async () => {
  await setup();
  await scope(async () => {
    const x = tensor(new Float32Array(0), [0, 5], { requiresGrad: true });
    const w = tensor([1, 2, 3, 4, 5], [5], { requiresGrad: true });
    const y = rmsNorm(x, w);
    assert.deepEqual(y.shape, [0, 5]);
    const { dx, dweight } = rmsNormBackward(tensor(new Float32Array(0), [0, 5]), x, w, tensor([], [0]));
    assert.deepEqual(dx!.shape, [0, 5]);
    assert.deepEqual([...await arr(dweight!)], [0, 0, 0, 0, 0]);
  });
  assert.throws(
    () => rmsNorm(tensor([1, 2, 3], [1, 3]), tensor([1, 1], [2])),
    /weight must have shape \[3\]/,
  );
  assert.throws(
    () => rmsNorm(tensor([1, 2], [1, 2], { dtype: "i32" }), tensor([1, 1], [2])),
    /must be f32/,
  );
  assert.throws(() => rmsNorm(tensor([1, 2], [1, 2]), tensor([1, 1], [2]), -1), /eps must be/);
});

// -------------------------------------------------------------------------------------------------- LayerNorm

Deno.test(
  "layerNorm forward and saved mean/rstd match the float64 reference on awkward shapes",
  gpuTest,
  async () => {
    await setup();
    await eachKernelVariant(async () => {
      for (const [k, shape] of FORWARD_SHAPES.entries()) {
        const C = shape[shape.length - 1];
        const n = rowsOf(shape) * C;
        // an offset mean, as in real activations
        const xd = randomArray(n, 50 + k, -1, 3);
        const wd = randomArray(C, 60 + k, -1.5, 1.5);
        const bd = randomArray(C, 70 + k, -0.5, 0.5);
        for (const eps of [1e-5, 1e-3]) {
          await scope(async () => {
            const { y, mean, rstd } = layerNormForward(
              tensor(xd, shape),
              tensor(wd, [C]),
              tensor(bd, [C]),
              eps,
            );
            assert.deepEqual(y.shape, shape);
            const ref = layerNormRef(xd, wd, bd, C, eps);
            assertClose(await arr(y), ref.y, { atol: 5e-6, rtol: 5e-6 }, `y [${shape}] eps ${eps}`);
            assertClose(await arr(mean), ref.mean, { atol: 1e-6, rtol: 1e-6 }, `mean [${shape}]`);
            // C = 1: variance 0, rstd = 1/sqrt(eps) (x − mean rounds to exactly 0)
            assertClose(await arr(rstd), ref.rstd, { atol: 0, rtol: 5e-6 }, `rstd [${shape}]`);
          });
        }
      }
    });
  },
);

Deno.test(
  "layerNorm: constant rows give the bias (no NaN) and finite gradients; eps matters",
  gpuTest,
  async () => {
    await setup();
    await eachKernelVariant(async () => {
      const C = 577;
      const wd = randomArray(C, 80, -1, 1);
      const bd = randomArray(C, 81, -1, 1);
      const unit = randomArray(3 * C, 82, -1, 1);
      // row 0: constant 3.5 (variance 0); row 1: 3.5 ± 1e-3 (variance ≈ eps); row 2: ordinary
      const xd = new Float32Array(3 * C);
      for (let i = 0; i < C; i++) {
        xd[i] = 3.5;
        xd[C + i] = 3.5 + 1e-3 * unit[C + i];
        xd[2 * C + i] = unit[2 * C + i];
      }
      const dyd = randomArray(3 * C, 83, -1, 1);
      for (const eps of [1e-5, 1e-2]) {
        await scope(async () => {
          const x = tensor(xd, [3, C], { requiresGrad: true });
          const w = tensor(wd, [C], { requiresGrad: true });
          const b = tensor(bd, [C], { requiresGrad: true });
          const y = layerNorm(x, w, b, eps);
          const yv = await arr(y);
          assert.ok(yv.every(Number.isFinite));
          assertClose(yv.slice(0, C), bd, { atol: 0, rtol: 0 }, "a constant row gives exactly the bias");
          const ref = layerNormRef(xd, wd, bd, C, eps);
          // row 1: the f32 rounding of 3.5 ± 1e-3 (ulp 2.4e-7) is amplified by rstd ≤ 316 → atol 2e-4
          assertClose(yv, ref.y, { atol: 2e-4, rtol: 1e-5 }, `y eps ${eps}`);
          y.backward(tensor(dyd, [3, C]));
          const g = layerNormBackwardRef(dyd, xd, wd, C, eps);
          const dx = await arr(x.grad!);
          assert.ok(dx.every(Number.isFinite));
          assertClose(dx.slice(0, C), g.dx.slice(0, C), { atol: 1e-4, rtol: 0 }, "dx of a constant row ≈ 0");
          assertClose(await arr(w.grad!), g.dw, { atol: 2e-4, rtol: 1e-4 }, "dw");
          assertClose(await arr(b.grad!), g.db, { atol: 1e-6, rtol: 1e-6 }, "db");
        });
      }
    });
  },
);

Deno.test("layerNorm gradients match finite differences on small shapes", gpuTest, async () => {
  await setup();
  await eachKernelVariant(async () => {
    for (
      const [shape, eps] of [[[3, 5], 1e-5], [[2, 2, 7], 1e-5], [[1, 33], 1e-3], [[3, 2], 1e-5]] as const
    ) {
      const C = shape[shape.length - 1];
      const n = rowsOf([...shape]) * C;
      await gradCheck((x, w, b) => layerNorm(x, w, b, eps), [
        { data: randomArray(n, 130 + n, -2, 2), shape: [...shape] },
        { data: randomArray(C, 140 + C, 0.5, 1.5), shape: [C] },
        { data: randomArray(C, 150 + C, -1, 1), shape: [C] },
      ]);
    }
  });
});

Deno.test(
  "layerNorm backward matches the reference backward on larger shapes, deterministically",
  gpuTest,
  async () => {
    await setup();
    await eachKernelVariant(async () => {
      for (const [N, C] of [[37, 577], [300, 129], [5, 576], [1000, 1], [4100, 5]]) {
        const xd = randomArray(N * C, 3 * N + C, -1, 2);
        const wd = randomArray(C, N * C + 1, -1.5, 1.5);
        const bd = randomArray(C, N * C + 2, -1, 1);
        const dyd = randomArray(N * C, N + 7 * C, -1, 1);
        const run = () =>
          scope(async () => {
            const x = tensor(xd, [N, C]);
            const w = tensor(wd, [C]);
            const b = tensor(bd, [C]);
            const { mean, rstd } = layerNormForward(x, w, b, 1e-5);
            const g = layerNormBackward(tensor(dyd, [N, C]), x, w, b, mean, rstd);
            return [await arr(g.dx!), await arr(g.dweight!), await arr(g.dbias!)];
          });
        const [dx, dw, db] = await run();
        const ref = layerNormBackwardRef(dyd, xd, wd, C, 1e-5);
        // C = 1: x − mean = 0 exactly, so dx = 0 and dw = 0
        assertClose(dx, ref.dx, { atol: 2e-5, rtol: 1e-4 }, `dx [${N}, ${C}]`);
        assertClose(dw, ref.dw, { atol: 2e-4, rtol: 1e-4 }, `dw [${N}, ${C}]`);
        assertClose(db, ref.db, { atol: 2e-4, rtol: 1e-5 }, `db [${N}, ${C}]`);
        if (N === 300) {
          const [dx2, dw2, db2] = await run();
          assert.deepEqual([dx2, dw2, db2], [dx, dw, db], "bitwise equal across runs");
        }
      }
    });
  },
);

Deno.test("layerNorm: zero rows, partial gradients, and argument errors", gpuTest, async () => {
  await setup();
  await scope(async () => {
    const x = tensor(new Float32Array(0), [2, 0, 3]);
    const w = tensor([1, 2, 3], [3]);
    const b = tensor([0, 0, 1], [3]);
    const { y, mean, rstd } = layerNormForward(x, w, b);
    assert.deepEqual(y.shape, [2, 0, 3]);
    const g = layerNormBackward(tensor(new Float32Array(0), [2, 0, 3]), x, w, b, mean, rstd);
    assert.deepEqual([...await arr(g.dweight!)], [0, 0, 0]);
    assert.deepEqual([...await arr(g.dbias!)], [0, 0, 0]);
    // only the bias trainable
    const xd = randomArray(12, 5, -1, 1);
    const bt = tensor([0.1, 0.2, 0.3], [3], { requiresGrad: true });
    const out = layerNorm(tensor(xd, [4, 3]), w, bt);
    out.backward(tensor(new Float32Array(12).fill(1), [4, 3]));
    assert.deepEqual([...await arr(bt.grad!)], [4, 4, 4]);
  });
  assert.throws(
    () => layerNorm(tensor([1, 2, 3], [1, 3]), tensor([1, 1, 1], [3]), tensor([1, 1], [2])),
    /bias must have shape \[3\]/,
  );
  assert.throws(
    () => layerNorm(tensor([1, 2, 3], [1, 3]), tensor([1, 1, 1], [1, 3]), tensor([1, 1, 1], [3])),
    /weight must have shape \[3\]/,
  );
});
