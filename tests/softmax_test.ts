import assert from "node:assert/strict";
import { logSoftmax, softmax } from "../src/autograd/ops/softmax.ts";
import { tensor, zeros } from "../src/tensor/create.ts";
import type { Tensor } from "../src/tensor/tensor.ts";
import { softmaxRows, softmaxRowsBackward } from "./reference/reduce.ts";
import { assertClose, gpuTest, gradCheck, randomArray, setup, values } from "./util.ts";

// Short rows (one invocation per row), 65/300 (64-wide workgroups), 49157 (256-wide workgroups), one long 1-D row,
// and 300 rows of 129 (one invocation per row on CPU adapters, 64-wide workgroups on GPUs).
const SHAPES: number[][] = [[1, 1], [3, 5, 7], [129, 65], [2001, 5], [7, 300], [3, 49157], [70001], [
  300,
  129,
]];

function rowsOf(shape: number[]): [number, number] {
  const C = shape[shape.length - 1];
  return [shape.reduce((a, b) => a * b, 1) / C, C];
}

// Inputs in [-8, 8): exp spans e^16, so the max subtraction matters. Tolerances: probabilities atol 1e-6 +
// rtol 1e-4 (f32 exp and the sum's rounding); log-probabilities atol 2e-5 + rtol 1e-5·|y| (|y| up to ~27).
Deno.test("softmax and logSoftmax match the float64 reference", gpuTest, async () => {
  await setup();
  for (const [si, shape] of SHAPES.entries()) {
    const [rows, C] = rowsOf(shape);
    const data = randomArray(rows * C, 30 + si, -8, 8);
    const x = tensor(data, shape);
    const p = softmax(x);
    assert.deepEqual(p.shape, shape);
    assertClose(
      await p.toArray(),
      softmaxRows(data, rows, C),
      { atol: 1e-6, rtol: 1e-4 },
      `softmax [${shape}]`,
    );
    const lp = logSoftmax(x);
    assertClose(
      await lp.toArray(),
      softmaxRows(data, rows, C, true),
      { atol: 2e-5, rtol: 1e-5 },
      `log [${shape}]`,
    );
  }
});

Deno.test("huge logits do not overflow (max subtraction)", gpuTest, async () => {
  await setup();
  for (const C of [4, 1000]) {
    const data = Float32Array.from({ length: 2 * C }, (_, i) => 1000 + (i % 7) * 30 - (i >= C ? 3000 : 0));
    const x = tensor(data, [2, C]);
    assertClose(await softmax(x).toArray(), softmaxRows(data, 2, C), { atol: 1e-6, rtol: 1e-4 }, `C=${C}`);
    assertClose(await logSoftmax(x).toArray(), softmaxRows(data, 2, C, true), { atol: 1e-4, rtol: 1e-5 });
  }
});

Deno.test(
  "-Infinity entries get probability 0; all -Infinity rows give zeros / -Infinity, no NaN",
  gpuTest,
  async () => {
    await setup();
    const I = -Infinity;
    // 4 rows (one invocation per row for C=5, workgroups otherwise) and 4·65 = 260 rows (one invocation per row
    // on CPU adapters for every C); the pattern of 4 rows repeats.
    for (const [C, reps] of [[5, 1], [300, 1], [3000, 1], [300, 65], [3000, 65]]) {
      const R = 4 * reps;
      // per group of 4: row 0 partly masked, row 1 fully masked, row 2 one live entry, row 3 unmasked
      const data = new Float32Array(R * C);
      const base = randomArray(R * C, C + reps, -3, 3);
      for (let g = 0; g < R * C; g += 4 * C) {
        for (let k = 0; k < C; k++) {
          data[g + k] = k % 3 === 1 ? I : base[g + k];
          data[g + C + k] = I;
          data[g + 2 * C + k] = k === C - 2 ? base[g + 2 * C + k] : I;
          data[g + 3 * C + k] = base[g + 3 * C + k];
        }
      }
      const what = `C=${C}, ${R} rows`;
      const x = tensor(data, [R, C], { requiresGrad: true });
      const p = await softmax(x).toArray();
      assert.ok(p.every((v) => !Number.isNaN(v)), `softmax NaN, ${what}`);
      assertClose(p, softmaxRows(data, R, C), { atol: 1e-6, rtol: 1e-4 }, `masked softmax ${what}`);
      assert.ok(p.subarray(C, 2 * C).every((v) => v === 0));
      assert.equal(p[2 * C + C - 2], 1);
      const lp = await logSoftmax(x).toArray();
      assert.ok(lp.every((v) => !Number.isNaN(v)), `logSoftmax NaN, ${what}`);
      assertClose(lp, softmaxRows(data, R, C, true), { atol: 2e-5, rtol: 1e-5 }, `masked logSoftmax ${what}`);
      assert.ok(lp.subarray(C, 2 * C).every((v) => v === I));
      assert.equal(lp[2 * C + C - 2], 0);
      // gradients: finite everywhere, zero on the fully masked rows, equal to the reference
      const dy = randomArray(R * C, 99, -1, 1);
      for (const log of [false, true]) {
        x.grad = null;
        const f = log ? logSoftmax : softmax;
        const y = f(x);
        const yv = await y.toArray();
        y.backward(tensor(dy, [R, C]));
        const g = await x.grad!.toArray();
        assert.ok(g.every((v) => Number.isFinite(v)), `gradient not finite (log=${log}, ${what})`);
        assert.ok(g.subarray(C, 2 * C).every((v) => v === 0), `masked row gradient (log=${log}, ${what})`);
        assertClose(
          g,
          softmaxRowsBackward(yv, dy, R, C, log),
          { atol: 1e-5, rtol: 1e-4 },
          `grad log=${log} ${what}`,
        );
      }
    }
  },
);

// The analytic backward is checked against the float64 reference backward evaluated at the GPU's own y, on every
// shape (tolerance atol 1e-5·√C + rtol 1e-4 for the row sum Σ dy⊙y in f32).
Deno.test("backward of softmax / logSoftmax matches the reference backward", gpuTest, async () => {
  await setup();
  for (const [si, shape] of SHAPES.entries()) {
    const [rows, C] = rowsOf(shape);
    const data = randomArray(rows * C, 60 + si, -4, 4);
    const dy = randomArray(rows * C, 70 + si, -1, 1);
    for (const log of [false, true]) {
      const x = tensor(data, shape, { requiresGrad: true });
      const y: Tensor = (log ? logSoftmax : softmax)(x);
      const yv = await y.toArray();
      y.backward(tensor(dy, shape));
      assertClose(
        await x.grad!.toArray(),
        softmaxRowsBackward(yv, dy, rows, C, log),
        { atol: 1e-5 * Math.sqrt(C), rtol: 1e-4 },
        `backward log=${log} [${shape}]`,
      );
    }
  }
});

// gradCheck: central differences of the GPU forward, eps 1e-2, rtol 2e-2, atol 1e-3 (defaults).
Deno.test("softmax / logSoftmax pass gradCheck (thread and workgroup paths)", gpuTest, async () => {
  await setup();
  const a = randomArray(3 * 5 * 7, 5, -2, 2);
  await gradCheck(softmax, [{ data: a, shape: [3, 5, 7] }]);
  await gradCheck(logSoftmax, [{ data: a, shape: [3, 5, 7] }]);
  const b = randomArray(2 * 129, 6, -2, 2);
  await gradCheck(softmax, [{ data: b, shape: [2, 129] }]);
  await gradCheck(logSoftmax, [{ data: b, shape: [2, 129] }]);
});

Deno.test("softmax edge shapes and bad inputs", gpuTest, async () => {
  await setup();
  assert.deepEqual(await values(softmax(tensor([[3]]))), [1]);
  assert.deepEqual(await values(logSoftmax(tensor([[3]]))), [0]);
  assert.deepEqual(softmax(zeros([0, 4])).shape, [0, 4]);
  assert.deepEqual(softmax(zeros([3, 0])).shape, [3, 0]);
  assert.throws(() => softmax(tensor(2)), /0-d/);
  assert.throws(() => logSoftmax(tensor(new Int32Array([1, 2]))), /f32/);
});
