import assert from "node:assert/strict";
import { scope, type Tensor, tensor, zeros } from "../mod.ts";
import { add, type BinaryOp, broadcastPlan, div, mul, sub } from "../src/autograd/ops/binary.ts";
import { binaryGradRef, binaryRef, type HostArray } from "./reference/elementwise.ts";
import { assertClose, gpuTest, gradCheck, randomArray, setup, values } from "./util.ts";

const OPS: Record<BinaryOp, (a: Tensor | number, b: Tensor | number) => Tensor> = { add, sub, mul, div };
const NAMES = Object.keys(OPS) as BinaryOp[];

// Forward: one f32 rounding of each operand's op (div is correctly rounded to ≤ 2.5 ulp in WGSL).
const FWD = { atol: 1e-6, rtol: 1e-6 };
// Backward: the broadcast gradients are f32 sums of up to 70001 terms (chunked, 128 per partial).
const BWD = { atol: 2e-5, rtol: 2e-5 };

const prod = (s: readonly number[]) => s.reduce((x, y) => x * y, 1);

/** Values for an operand: b of div stays away from 0 (|b| in [0.5, 2]). */
function operand(shape: number[], seed: number, divisor = false): HostArray {
  const n = prod(shape);
  const data = randomArray(n, seed, -2, 2);
  if (divisor) {
    for (let i = 0; i < n; i++) data[i] = (data[i] < 0 ? -1 : 1) * (0.5 + Math.abs(data[i]) * 0.75);
  }
  return { data, shape };
}

/** Runs a ∘ b forward and backward (dy random) on the GPU and checks both against the reference. */
async function checkAgainstReference(
  op: BinaryOp,
  as: number[] | number,
  bs: number[] | number,
  seed: number,
) {
  const a = typeof as === "number" ? as : operand(as, seed);
  const b = typeof bs === "number" ? bs : operand(bs, seed + 1, op === "div");
  const ref = binaryRef(op, a, b);
  const dy = randomArray(ref.data.length, seed + 2, -1, 1);
  const [da, db] = binaryGradRef(op, a, b, dy);
  const what = `${op}(${typeof as === "number" ? as : `[${as}]`}, ${
    typeof bs === "number" ? bs : `[${bs}]`
  })`;
  await scope(async () => {
    const ta = typeof a === "number" ? a : tensor(a.data, a.shape, { requiresGrad: true });
    const tb = typeof b === "number" ? b : tensor(b.data, b.shape, { requiresGrad: true });
    const y = OPS[op](ta, tb);
    assert.equal(y.size, ref.data.length, `${what}: output size`);
    assertClose(await y.toArray(), Float32Array.from(ref.data), FWD, `${what} forward`);
    y.backward(tensor(dy, y.shape));
    if (typeof ta !== "number") {
      assert.deepEqual(ta.grad!.shape, ta.shape);
      assertClose(await ta.grad!.toArray(), Float32Array.from(da), BWD, `${what} grad a`);
    }
    if (typeof tb !== "number") {
      assert.deepEqual(tb.grad!.shape, tb.shape);
      assertClose(await tb.grad!.toArray(), Float32Array.from(db), BWD, `${what} grad b`);
    }
  });
}

Deno.test(
  "same shapes: forward and backward against the reference (1, 3×5×7, 129×65, 70001)",
  gpuTest,
  async () => {
    await setup();
    for (const op of NAMES) {
      for (const [k, s] of [[1], [3, 5, 7], [129, 65], [70001]].entries()) {
        await checkAgainstReference(op, s, s, 10 * k + 1);
      }
    }
  },
);

// [full shape, broadcast shape, mode]: each mode with row/column counts crossing the 128-row chunks of the sums.
const BROADCASTS: [number[], number[], string][] = [
  [[129, 65], [65], "row"],
  [[3, 5, 7], [1, 7], "row"],
  [[2, 300, 3], [3], "row (600 rows: 3 summing passes)"],
  [[129, 65], [129, 1], "column"],
  [[3, 5, 7], [3, 5, 1], "column"],
  [[3, 5, 7], [5, 1], "column shared over the leading axis"],
  [[2, 20000], [2, 1], "column (20000 per row: 3 summing passes)"],
  [[4, 3, 300], [1, 3, 1], "column shared over the leading axis, 300 per row"],
  [[3, 5, 7], [1], "scalar [1]"],
  [[129, 65], [], "scalar []"],
  [[70001], [1, 1], "scalar over 70001 elements"],
];

Deno.test(
  "each broadcast mode on both sides: forward and summed gradients against the reference",
  gpuTest,
  async () => {
    await setup();
    let seed = 100;
    for (const op of NAMES) {
      for (const [full, small] of BROADCASTS) {
        await checkAgainstReference(op, full, small, seed++);
        await checkAgainstReference(op, small, full, seed++);
      }
    }
  },
);

Deno.test("numbers as operands on either side (no gradient for the number)", gpuTest, async () => {
  await setup();
  let seed = 500;
  for (const op of NAMES) {
    for (const s of [[1], [3, 5, 7], [70001]]) {
      await checkAgainstReference(op, s, op === "div" ? -0.75 : 2, seed++);
      await checkAgainstReference(op, 1.5, s, seed++);
    }
  }
  const x = tensor([1, -2, 4], [3], { requiresGrad: true });
  assert.deepEqual(await values(add(x, 2)), [3, 0, 6]);
  assert.deepEqual(await values(mul(x, 0.5)), [0.5, -1, 2]);
  assert.deepEqual(await values(sub(2, x)), [1, 4, -2]);
  assert.deepEqual(await values(div(1, x)), [1, -0.5, 0.25]);
  const y = mul(x, 0.5);
  assert.equal(y.node!.inputs.length, 1);
});

Deno.test("gradCheck of every op, every broadcast mode, both sides", gpuTest, async () => {
  await setup();
  // Finite differences of the f32 forward: eps 1e-2, rtol 2e-2, atol 1e-3 (gradCheck's defaults). Divisors
  // have |b| ≥ 0.5 so that b ± eps stays far from 0.
  const cases: [number[], number[]][] = [
    [[3, 5, 7], [3, 5, 7]],
    [[4, 6], [6]],
    [[2, 3, 5], [1, 5]],
    [[4, 6], [4, 1]],
    [[2, 3, 5], [3, 1]],
    [[2, 3, 5], [1]],
  ];
  let seed = 900;
  for (const op of NAMES) {
    for (const [full, small] of cases) {
      for (const [as, bs] of [[full, small], [small, full]]) {
        const a = operand(as, seed++);
        const b = operand(bs, seed++, op === "div");
        await gradCheck((x, y) => OPS[op](x, y), [{ data: a.data, shape: as }, { data: b.data, shape: bs }]);
      }
    }
    const x = operand([3, 5], seed++, op === "div");
    await gradCheck((t) => OPS[op](t, 0.75), [{ data: x.data, shape: [3, 5] }]);
    await gradCheck((t) => OPS[op](-1.25, t), [{ data: x.data, shape: [3, 5] }]);
  }
});

Deno.test("output shapes and the broadcast plan", gpuTest, async () => {
  await setup();
  const M = { full: 0, row: 1, column: 2, scalar: 3, number: 4 };
  const plan = (a: number[] | null, b: number[] | null) => {
    const p = broadcastPlan("add", a, b);
    return [p.shape, p.modeA, p.modeB];
  };
  assert.deepEqual(plan([4], [1, 4]), [[1, 4], M.full, M.full]);
  assert.deepEqual(plan([1, 4], [4]), [[1, 4], M.full, M.full]);
  assert.deepEqual(plan([2, 3, 4], [4]), [[2, 3, 4], M.full, M.row]);
  assert.deepEqual(plan([1, 1, 4], [2, 3, 4]), [[2, 3, 4], M.row, M.full]);
  assert.deepEqual(plan([2, 3, 4], [3, 1]), [[2, 3, 4], M.full, M.column]);
  assert.deepEqual(plan([2, 3, 1], [2, 3, 4]), [[2, 3, 4], M.column, M.full]);
  assert.deepEqual(plan([2, 3, 4], [1, 1]), [[2, 3, 4], M.full, M.scalar]);
  assert.deepEqual(plan(null, [2, 3]), [[2, 3], M.number, M.full]);
  assert.deepEqual(plan([], [1]), [[1], M.full, M.full]);
  assert.deepEqual(add(tensor([1, 2, 3]), tensor([[10, 20, 30]])).shape, [1, 3]);
  assert.deepEqual(await values(add(tensor([1, 2, 3]), tensor([[10, 20, 30]]))), [11, 22, 33]);
});

Deno.test(
  "shape pairs that do not broadcast throw an error naming both shapes and what is allowed",
  gpuTest,
  async () => {
    await setup();
    const bad: [number[], number[]][] = [
      [[3, 4], [4, 3]],
      [[3, 4], [3]],
      [[2, 3, 4], [2, 4]],
      [[2, 3, 1], [4, 3, 5]],
      [[2, 3], [2, 3, 4]],
      [[4], [3, 1]],
      [[3, 1], [1, 4]],
    ];
    for (const [as, bs] of bad) {
      for (const op of NAMES) {
        const a = zeros(as);
        const b = zeros(bs);
        const sa = `\\[${as.join(", ")}\\]`;
        const sb = `\\[${bs.join(", ")}\\]`;
        assert.throws(
          () => OPS[op](a, b),
          new RegExp(
            `^RangeError: ${op}: shapes ${sa} and ${sb} do not broadcast\\. Allowed: equal shapes; a row`,
          ),
        );
        assert.throws(() => OPS[op](b, a), /a column \[\.\.\., R, 1\] or \[R, 1\] against \[\.\.\., R, N\]/);
      }
    }
    assert.throws(() => add(2, 3), /add: at least one operand must be a tensor/);
    assert.throws(
      () => mul(tensor([1, 2], [2], { dtype: "i32" }), 2),
      /mul: operand a must be an f32 tensor, got i32/,
    );
    assert.throws(
      () => sub(tensor([1]), "2" as unknown as number),
      /sub: operand b must be a Tensor or a number/,
    );
  },
);

Deno.test("edge cases: zero-size tensors, one operand used twice, deterministic sums", gpuTest, async () => {
  await setup();
  // [0, 3] + [3]: an empty output and a zero gradient for the row
  const e = tensor([], [0, 3], { requiresGrad: true });
  const r = tensor([1, 2, 3], [3], { requiresGrad: true });
  const y = add(e, r);
  assert.deepEqual(y.shape, [0, 3]);
  y.backward(zeros([0, 3]));
  assert.deepEqual(await values(r.grad!), [0, 0, 0]);
  // mul(x, x): both gradients accumulate, 2x·dy
  const x = tensor([1, -2, 3], [3], { requiresGrad: true });
  mul(x, x).backward(tensor([1, 1, 1]));
  assert.deepEqual(await values(x.grad!), [2, -4, 6]);
  // the gradient sums run in a fixed order: two runs give identical bits
  const data = randomArray(70001, 3, -1, 1);
  const run = () =>
    scope(async () => {
      const s = tensor([0.5], [1], { requiresGrad: true });
      const big = tensor(data, [70001]);
      mul(big, s).backward(tensor(data, [70001]));
      return await s.grad!.toArray();
    });
  const g1 = await run();
  const g2 = await run();
  assert.equal(g1[0], g2[0]);
  let exact = 0;
  for (const v of data) exact += v * v;
  assertClose(g1, [exact], { atol: 0, rtol: 1e-5 }, "Σ x² over 70001 elements");
});
