import assert from "node:assert/strict";
import { scope, type Tensor, tensor, zeros } from "../mod.ts";
import { maskedFill, where } from "../src/autograd/ops/where.ts";
import { whereRef } from "./reference/elementwise.ts";
import { assertClose, gpuTest, gradCheck, randomArray, setup, values } from "./util.ts";

const prod = (s: readonly number[]) => s.reduce((x, y) => x * y, 1);

/** A 0/1 mask of n elements (about half set), as f32 values (every 7th element negated: −0 or −1) or i32. */
function maskData(n: number, seed: number): number[] {
  return Array.from(randomArray(n, seed, 0, 1), (u, i) => (u < 0.5 ? 0 : 1) * (i % 7 === 3 ? -1 : 1));
}

/** dy where the mask picks the operand, 0 elsewhere (reference gradient of where). */
function maskedGrad(mask: number[], dy: ArrayLike<number>, picked: boolean): Float32Array {
  return Float32Array.from(dy, (d, i) => ((mask[i % mask.length] !== 0) === picked ? d : 0));
}

Deno.test(
  "where: f32 and i32 masks, tensors and numbers, awkward shapes, forward and backward",
  gpuTest,
  async () => {
    await setup();
    for (const [k, shape] of [[1], [3, 5, 7], [129, 65], [70001]].entries()) {
      const n = prod(shape);
      const m = maskData(n, 40 + k);
      const a = randomArray(n, 50 + k, -3, 3);
      const b = randomArray(n, 60 + k, -3, 3);
      const dy = randomArray(n, 70 + k, -1, 1);
      for (const dtype of ["f32", "i32"] as const) {
        await scope(async () => {
          const mask = tensor(dtype === "i32" ? Int32Array.from(m) : m, shape, { dtype });
          const ta = tensor(a, shape, { requiresGrad: true });
          const tb = tensor(b, shape, { requiresGrad: true });
          const y = where(mask, ta, tb);
          assert.deepEqual(y.shape, shape);
          assert.deepEqual(
            await y.toArray(),
            Float32Array.from(whereRef(m, a, b, n)),
            `where [${shape}] ${dtype}`,
          );
          y.backward(tensor(dy, shape));
          assert.deepEqual(await ta.grad!.toArray(), maskedGrad(m, dy, true), `grad a [${shape}] ${dtype}`);
          assert.deepEqual(await tb.grad!.toArray(), maskedGrad(m, dy, false), `grad b [${shape}] ${dtype}`);
          // numbers for a or b (or both: the output takes the mask's shape)
          assert.deepEqual(await where(mask, 2.5, tb).toArray(), Float32Array.from(whereRef(m, 2.5, b, n)));
          assert.deepEqual(await where(mask, ta, -7).toArray(), Float32Array.from(whereRef(m, a, -7, n)));
          const both = where(mask, 1, 0);
          assert.deepEqual(both.shape, shape);
          assert.deepEqual(await both.toArray(), Float32Array.from(whereRef(m, 1, 0, n)));
        });
      }
    }
  },
);

Deno.test("where: a mask of the trailing axes repeats over the leading ones", gpuTest, async () => {
  await setup();
  const m = maskData(35, 3);
  const a = randomArray(105, 4, -1, 1);
  const b = randomArray(105, 5, -1, 1);
  for (const mshape of [[5, 7], [1, 5, 7]]) {
    const y = where(tensor(m, mshape), tensor(a, [3, 5, 7]), tensor(b, [3, 5, 7]));
    assert.deepEqual(await y.toArray(), Float32Array.from(whereRef(m, a, b, 105)));
  }
  // a causal mask [T, T] against scores [B, H, T, T]: fill −Infinity above the diagonal
  const T = 5;
  const causal = Int32Array.from({ length: T * T }, (_, i) => (i % T > Math.floor(i / T) ? 1 : 0));
  const scores = randomArray(2 * 3 * T * T, 6, -1, 1);
  const filled = await maskedFill(tensor(scores, [2, 3, T, T]), tensor(causal, [T, T]), -Infinity).toArray();
  assert.deepEqual(filled, Float32Array.from(whereRef(Array.from(causal), -Infinity, scores, scores.length)));
  assert.equal(filled[1], -Infinity);
  assert.equal(filled[T], scores[T]);
});

Deno.test("where: −0 is zero, NaN and tiny nonzero values count as set", gpuTest, async () => {
  await setup();
  const mask = tensor([0, -0, 1, -1, NaN, 1e-40, 3]);
  assert.deepEqual(await values(where(mask, 1, 0)), [0, 0, 1, 1, 1, 1, 1]);
});

Deno.test("where and maskedFill pass finite-difference gradient checks", gpuTest, async () => {
  await setup();
  // eps 1e-2, rtol 2e-2, atol 1e-3 (gradCheck's defaults); the output is piecewise linear in a and b.
  const m = tensor(maskData(105, 8), [3, 5, 7]);
  const a = randomArray(105, 9, -2, 2);
  const b = randomArray(105, 10, -2, 2);
  await gradCheck((x, y) => where(m, x, y), [{ data: a, shape: [3, 5, 7] }, { data: b, shape: [3, 5, 7] }]);
  await gradCheck((x) => where(m, x, 0.5), [{ data: a, shape: [3, 5, 7] }]);
  await gradCheck((y) => where(m, -1, y), [{ data: b, shape: [3, 5, 7] }]);
  const mi = tensor(Int32Array.from(maskData(35, 11)), [5, 7], { dtype: "i32" });
  await gradCheck((x) => maskedFill(x, mi, -3), [{ data: a, shape: [3, 5, 7] }]);
});

Deno.test("maskedFill: forward and backward on awkward shapes", gpuTest, async () => {
  await setup();
  for (const [k, shape] of [[1], [3, 5, 7], [129, 65], [70001]].entries()) {
    const n = prod(shape);
    const m = maskData(n, 80 + k);
    const x = randomArray(n, 90 + k, -3, 3);
    const dy = randomArray(n, 95 + k, -1, 1);
    await scope(async () => {
      const tx = tensor(x, shape, { requiresGrad: true });
      const y = maskedFill(tx, tensor(m, shape), -1e9);
      assert.deepEqual(await y.toArray(), Float32Array.from(whereRef(m, -1e9, x, n)));
      y.backward(tensor(dy, shape));
      assertClose(
        await tx.grad!.toArray(),
        maskedGrad(m, dy, false),
        { atol: 0, rtol: 0 },
        `grad x [${shape}]`,
      );
    });
  }
});

Deno.test("where and maskedFill reject shapes that do not fit and non-f32 values", gpuTest, async () => {
  await setup();
  const x = zeros([3, 4]);
  assert.throws(
    () => where(zeros([4, 3]), x, 1),
    /where: mask shape \[4, 3\] does not fit \[3, 4\]; it must be that shape or its trailing axes/,
  );
  assert.throws(() => where(zeros([2, 3, 4]), x, x), /mask shape \[2, 3, 4\] does not fit \[3, 4\]/);
  assert.throws(
    () => where(zeros([3, 4]), x, zeros([4, 3])),
    /where: a \[3, 4\] and b \[4, 3\] must have the same shape/,
  );
  assert.throws(
    () => where(zeros([3, 4]), tensor([1], [1], { dtype: "i32" }), 0),
    /a must be an f32 tensor, got i32/,
  );
  assert.throws(() => maskedFill(x, zeros([3]), 0), /maskedFill: mask shape \[3\] does not fit \[3, 4\]/);
  assert.throws(() => maskedFill(x, zeros([3, 4]), "1" as unknown as number), /value must be a number/);
  assert.throws(() => where(null as unknown as Tensor, x, 0), /the mask must be a Tensor/);
  const none = where(zeros([0, 4]), zeros([0, 4]), 1);
  assert.deepEqual(none.shape, [0, 4]);
});
