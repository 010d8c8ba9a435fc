import assert from "node:assert/strict";
import { max, maxWithIndices, mean, sum } from "../src/autograd/ops/reduce.ts";
import { tensor, zeros } from "../src/tensor/create.ts";
import type { Tensor } from "../src/tensor/tensor.ts";
import { maxRows, maxRowsBackward, sumRows, sumRowsBackward } from "./reference/reduce.ts";
import { assertClose, gpuTest, gradCheck, randomArray, setup, values } from "./util.ts";

// Shapes: tiny, odd 3-D, not multiples of 64/256, short rows (C=5, thread-per-row path), medium rows (64-wide
// workgroup path), long rows (256-wide path, 49157 = 48·1024 + 5), one long 1-D row, and many long rows (one
// invocation per row on CPU adapters, workgroups on GPUs).
const ROW_SHAPES: number[][] = [
  [1, 1],
  [3, 5, 7],
  [129, 65],
  [2001, 5],
  [7, 300],
  [3, 49157],
  [70001],
  [300, 129],
  [260, 3001],
];

function rowsOf(shape: number[]): [number, number] {
  const C = shape[shape.length - 1];
  return [shape.reduce((a, b) => a * b, 1) / C, C];
}

// Tolerances: f32 sums of n values in [-1, 1) in a fixed tree order, compared with float64: atol 1e-5·√C
// covers the rounding; max is exact.
Deno.test("sum / mean / max over the last axis match the float64 reference", gpuTest, async () => {
  await setup();
  for (const [si, shape] of ROW_SHAPES.entries()) {
    const [rows, C] = rowsOf(shape);
    const data = randomArray(rows * C, 10 + si);
    const x = tensor(data, shape);
    const tol = { atol: 2e-5 * Math.sqrt(C), rtol: 1e-5 };
    const s = sum(x, { axis: -1 });
    assert.deepEqual(s.shape, shape.slice(0, -1), `sum shape for [${shape}]`);
    assertClose(await s.toArray(), sumRows(data, rows, C), tol, `sum [${shape}]`);
    const m = mean(x, { axis: shape.length - 1, keepDim: true });
    assert.deepEqual(m.shape, [...shape.slice(0, -1), 1]);
    assertClose(
      await m.toArray(),
      sumRows(data, rows, C, 1 / C),
      { atol: 2e-6, rtol: 1e-5 },
      `mean [${shape}]`,
    );
    const mx = max(x, { axis: -1 });
    assertClose(await mx.toArray(), maxRows(data, rows, C).values, { atol: 0, rtol: 0 }, `max [${shape}]`);
    const mi = maxWithIndices(x, { axis: -1, keepDim: true });
    assert.deepEqual(mi.indices.shape, [...shape.slice(0, -1), 1]);
    assert.deepEqual(
      [...await mi.indices.toInt32Array()],
      maxRows(data, rows, C).indices,
      `argmax [${shape}]`,
    );
  }
});

Deno.test("full reductions (no axis) give shape [] and match the reference", gpuTest, async () => {
  await setup();
  // 4096 and 4097: one pass and the first size that needs two passes (chunks of 4096)
  for (const [si, shape] of [[1, 1], [3, 5, 7], [129, 65], [70001], [4096], [4097]].entries()) {
    const n = shape.reduce((a, b) => a * b, 1);
    const data = randomArray(n, 100 + si);
    const x = tensor(data, shape);
    const s = sum(x);
    assert.deepEqual(s.shape, []);
    assertClose(
      [await s.item()],
      sumRows(data, 1, n),
      { atol: 2e-5 * Math.sqrt(n), rtol: 1e-5 },
      `sum [${shape}]`,
    );
    assertClose([await mean(x).item()], sumRows(data, 1, n, 1 / n), { atol: 1e-6, rtol: 1e-5 }, `mean`);
    const ref = maxRows(data, 1, n);
    assert.equal(await max(x).item(), Math.fround(ref.values[0]), `max [${shape}]`);
    const mi = maxWithIndices(x);
    assert.deepEqual([...await mi.indices.toInt32Array()], ref.indices, `argmax [${shape}]`);
    assert.deepEqual(sum(x, { keepDim: true }).shape, shape.map(() => 1));
  }
});

Deno.test(
  "full sum of 10M elements: two-pass tree, close to float64, bit-identical on rerun",
  gpuTest,
  async () => {
    await setup();
    const n = 10_000_000;
    const data = randomArray(n, 7, 0, 1);
    const x = tensor(data, [n]);
    const ref = sumRows(data, 1, n)[0];
    const a = await sum(x).item();
    const b = await sum(x).item();
    // relative error of a tree sum of positive values: ≈ eps·(passes + log2 of the tree) ≈ 1e-6 at most.
    assert.ok(Math.abs(a - ref) <= 2e-6 * ref, `sum ${a} vs float64 ${ref}`);
    assert.equal(Object.is(a, b), true, "two runs differ");
    assertClose([await mean(x).item()], [ref / n], { atol: 0, rtol: 2e-6 }, "mean 10M");
    // max and its first index across the chunks of the passes: plant two equal maxima
    const planted = data.slice();
    planted[9_000_001] = 2;
    planted[4_567_891] = 2;
    const y = tensor(planted, [n]);
    const { values: v, indices } = maxWithIndices(y);
    assert.equal(await v.item(), 2);
    assert.deepEqual([...await indices.toInt32Array()], [4_567_891]);
    x.dispose();
    y.dispose();
  },
);

Deno.test("max ties send the gradient to the first index; -Infinity rows work", gpuTest, async () => {
  await setup();
  const x = tensor([1, 3, 3, 2, -Infinity, -Infinity, -Infinity, -Infinity, 5, 5, 5, 5], [3, 4], {
    requiresGrad: true,
  });
  const m = max(x, { axis: -1 });
  assert.deepEqual(await values(m), [3, -Infinity, 5]);
  m.backward(tensor([10, 20, 30]));
  assert.deepEqual(await values(x.grad!), [0, 10, 0, 0, 20, 0, 0, 0, 30, 0, 0, 0]);
  // ties in a long row (workgroup path) and across the chunks of a full reduction
  const n = 10000;
  const d = new Float32Array(n).fill(-1);
  d[8191] = 4;
  d[300] = 4;
  d[4100] = 4;
  const y = tensor(d, [n], { requiresGrad: true });
  max(y).backward();
  const g = await y.grad!.toArray();
  assert.equal(g[300], 1);
  assert.equal(g.reduce((a, b) => a + b, 0), 1);
  const z = tensor(d, [1, n], { requiresGrad: true });
  max(z, { axis: -1 }).backward(tensor([2], [1]));
  assert.equal((await z.grad!.toArray())[300], 2);
});

Deno.test("backward of sum / mean / max matches the reference backward", gpuTest, async () => {
  await setup();
  for (const [si, shape] of ROW_SHAPES.entries()) {
    const [rows, C] = rowsOf(shape);
    const data = randomArray(rows * C, 200 + si);
    const dyData = randomArray(rows, 300 + si);
    const run = async (f: (x: Tensor) => Tensor) => {
      const x = tensor(data, shape, { requiresGrad: true });
      f(x).backward(tensor(dyData, shape.slice(0, -1)));
      return await x.grad!.toArray();
    };
    // the gradients are copies/scalings of dy: exact up to the one f32 multiply of mean
    assertClose(await run((x) => sum(x, { axis: -1 })), sumRowsBackward(dyData, rows, C), {
      atol: 0,
      rtol: 0,
    });
    assertClose(await run((x) => mean(x, { axis: -1 })), sumRowsBackward(dyData, rows, C, 1 / C), {
      atol: 0,
      rtol: 1e-6,
    });
    assertClose(await run((x) => max(x, { axis: -1 })), maxRowsBackward(data, dyData, rows, C), {
      atol: 0,
      rtol: 0,
    });
  }
  // full reductions: the scalar seed 1 broadcast back
  const x = tensor(randomArray(70001, 5), [70001], { requiresGrad: true });
  mean(x).backward();
  assertClose(await x.grad!.toArray(), new Float64Array(70001).fill(1 / 70001), { atol: 0, rtol: 1e-6 });
});

// gradCheck: central differences of the GPU forward (eps 1e-2), default tolerances (rtol 2e-2, atol 1e-3).
Deno.test("sum / mean / max pass gradCheck", gpuTest, async () => {
  await setup();
  const data = randomArray(3 * 5 * 7, 42);
  await gradCheck((x) => sum(x, { axis: -1 }), [{ data, shape: [3, 5, 7] }]);
  await gradCheck((x) => mean(x, { axis: -1, keepDim: true }), [{ data, shape: [3, 5, 7] }]);
  await gradCheck((x) => sum(x), [{ data, shape: [3, 5, 7] }]);
  await gradCheck((x) => mean(x), [{ data, shape: [105] }]);
  // distinct values spaced ≫ eps so the argmax does not move under the perturbation
  const spaced = Array.from({ length: 35 }, (_, i) => ((i * 17) % 35) * 0.1);
  await gradCheck((x) => max(x, { axis: -1 }), [{ data: spaced, shape: [5, 7] }]);
  await gradCheck((x) => max(x), [{ data: spaced, shape: [5, 7] }]);
});

Deno.test("reductions reject bad axes and empty means; empty sums are 0", gpuTest, async () => {
  await setup();
  const x = tensor(randomArray(6, 1), [2, 3]);
  assert.throws(() => sum(x, { axis: 0 }), /only the last axis/);
  assert.throws(() => max(tensor(3), { axis: -1 }), /0-d/);
  assert.throws(() => mean(zeros([2, 0]), { axis: -1 }), /zero elements/);
  assert.throws(() => max(zeros([0])), /zero elements/);
  assert.throws(() => sum(tensor(new Int32Array([1, 2]))), /f32/);
  assert.deepEqual(await values(sum(zeros([3, 0]), { axis: -1 })), [0, 0, 0]);
  assert.deepEqual(await values(sum(zeros([0]))), [0]);
  assert.deepEqual(sum(zeros([0, 4]), { axis: -1 }).shape, [0]);
});
