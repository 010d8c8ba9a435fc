import assert from "node:assert/strict";
import { concat } from "../src/autograd/ops/concat.ts";
import { slice } from "../src/autograd/ops/slice.ts";
import { transpose } from "../src/autograd/ops/transpose.ts";
import { tensor } from "../src/tensor/create.ts";
import { concatRef, sliceRef, transposeRef } from "./reference/shape.ts";
import { assertClose, gpuTest, gradCheck, randomArray, setup, values } from "./util.ts";

const EXACT = { atol: 0, rtol: 0 };

// Shapes around the 32×32 tile: 1×1, 3×5×7, 129×65, 33×31 in a batch of 2, one long row and one long column,
// and a batch of 700 small matrices.
const T_SHAPES: number[][] = [[1, 1], [3, 5, 7], [129, 65], [2, 33, 31], [1, 70001], [70001, 1], [700, 3, 2]];

Deno.test("transpose swaps the last two axes (copies, exact)", gpuTest, async () => {
  await setup();
  for (const [si, shape] of T_SHAPES.entries()) {
    const M = shape[shape.length - 2];
    const N = shape[shape.length - 1];
    const B = shape.reduce((a, b) => a * b, 1) / (M * N);
    const data = randomArray(B * M * N, 400 + si);
    const x = tensor(data, shape);
    const y = transpose(x);
    assert.deepEqual(y.shape, [...shape.slice(0, -2), N, M]);
    assert.notEqual(y.storage, x.storage);
    assertClose(await y.toArray(), transposeRef(data, B, M, N), EXACT, `transpose [${shape}]`);
    // backward: dy transposed back, exactly
    const xg = tensor(data, shape, { requiresGrad: true });
    const dy = randomArray(B * M * N, 500 + si);
    transpose(xg).backward(tensor(dy, [...shape.slice(0, -2), N, M]));
    assertClose(await xg.grad!.toArray(), transposeRef(dy, B, N, M), EXACT, `transpose backward [${shape}]`);
  }
  // i32 bits survive
  const i = tensor(new Int32Array([1, -2, 2147483647, -2147483648, 0, 7]), [2, 3]);
  assert.deepEqual([...await transpose(i).toInt32Array()], [1, -2147483648, -2, 0, 2147483647, 7]);
  assert.throws(() => transpose(tensor([1, 2, 3])), /at least 2 axes/);
});

// gradCheck defaults: eps 1e-2, rtol 2e-2, atol 1e-3.
Deno.test("transpose, concat and slice pass gradCheck", gpuTest, async () => {
  await setup();
  await gradCheck(transpose, [{ data: randomArray(105, 1), shape: [3, 5, 7] }]);
  await gradCheck((a, b, c) => concat([a, b, c]), [
    { data: randomArray(6, 2), shape: [2, 3] },
    { data: randomArray(3, 3), shape: [1, 3] },
    { data: randomArray(12, 4), shape: [4, 3] },
  ]);
  await gradCheck((a) => slice(a, 2, -1), [{ data: randomArray(35, 5), shape: [5, 7] }]);
});

Deno.test("concat along axis 0 matches the reference; backward splits dy", gpuTest, async () => {
  await setup();
  const shapes = [[2, 3, 5], [1, 3, 5], [0, 3, 5], [7, 3, 5]];
  const datas = shapes.map((s, i) => randomArray(s[0] * 15, 600 + i));
  const xs = shapes.map((s, i) => tensor(datas[i], s, { requiresGrad: i !== 1 }));
  const y = concat(xs);
  assert.deepEqual(y.shape, [10, 3, 5]);
  assertClose(await y.toArray(), concatRef(datas), EXACT, "concat");
  const dy = randomArray(150, 700);
  y.backward(tensor(dy, [10, 3, 5]));
  let start = 0;
  for (const [i, x] of xs.entries()) {
    const n = shapes[i][0] * 15;
    if (i === 1) assert.equal(x.grad, null);
    else assertClose(await x.grad!.toArray(), sliceRef(dy, 1, start, start + n), EXACT, `concat grad ${i}`);
    start += n;
  }
  // i32 and a single tensor
  const a = tensor(new Int32Array([1, 2]), [1, 2]);
  const b = tensor(new Int32Array([3, 4, 5, 6]), [2, 2]);
  assert.deepEqual([...await concat([a, b]).toInt32Array()], [1, 2, 3, 4, 5, 6]);
  assert.deepEqual(await values(concat([tensor([[9, 8]])])), [9, 8]);
  // errors
  assert.throws(() => concat([tensor([[1, 2]]), tensor([[1, 2, 3]])]), /every tensor must be/);
  assert.throws(() => concat([tensor([[1, 2]]), tensor([[1, 2]])], 1), /only axis 0/);
  assert.throws(() => concat([]), /at least one/);
  assert.throws(() => concat([a, tensor([[1, 2]])]), /i32|f32/);
});

Deno.test("slice along axis 0 matches the reference; backward places dy into zeros", gpuTest, async () => {
  await setup();
  const shape = [129, 65];
  const data = randomArray(129 * 65, 800);
  const cases: [number, number | undefined, number, number][] = [
    [3, 70, 3, 70],
    [0, undefined, 0, 129],
    [-5, -1, 124, 128],
    [128, 129, 128, 129],
    [50, 50, 50, 50],
  ];
  for (const [s, e, rs, re] of cases) {
    const x = tensor(data, shape, { requiresGrad: true });
    const y = slice(x, s, e);
    assert.deepEqual(y.shape, [re - rs, 65]);
    assertClose(await y.toArray(), sliceRef(data, 65, rs, re), EXACT, `slice(${s}, ${e})`);
    const dy = randomArray((re - rs) * 65, 900 + rs);
    y.backward(tensor(dy, y.shape));
    const expected = new Float64Array(129 * 65);
    expected.set(dy, rs * 65);
    assertClose(await x.grad!.toArray(), expected, EXACT, `slice backward (${s}, ${e})`);
  }
  const z = tensor(randomArray(3 * 4 * 5, 3), [3, 4, 5]);
  assert.deepEqual(slice(z, 1, 2).shape, [1, 4, 5]);
  assert.throws(() => slice(z, 0, 4), /end 4 is outside \[-3, 3\]/);
  assert.throws(() => slice(z, 2, 1), /after end/);
  assert.throws(() => slice(z, 0.5, 1), /start/);
  assert.throws(() => slice(tensor(1), 0, 0), /0-d/);
});
