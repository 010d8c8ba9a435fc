import assert from "node:assert/strict";
import { scope, type Tensor, tensor } from "../mod.ts";
import {
  exp,
  gelu,
  log,
  logsigmoid,
  rsqrt,
  sigmoid,
  softplus,
  sqrt,
  tanh,
  unary,
  UNARY_OPS,
  type UnaryOp,
} from "../src/autograd/ops/unary.ts";
import { unaryGradRef, unaryRef } from "./reference/elementwise.ts";
import { assertClose, gpuTest, gradCheck, randomArray, setup, values } from "./util.ts";

// Tolerances against the float64 reference rounded to f32. Forward: exp/log on lavapipe are within ~8 ulp
// (relative 1e-6) and log has ~5e-7 absolute error near 1. Backward: products of two such values.
const FWD = { atol: 2e-6, rtol: 4e-6 };
const BWD = { atol: 5e-6, rtol: 5e-6 };
const SHAPES = [[1], [3, 5, 7], [129, 65], [70001]];
const POSITIVE = new Set<UnaryOp>(["log", "sqrt", "rsqrt"]);

/** Inputs in each op's domain: positive for log/sqrt/rsqrt, [−12, 12] for the others. */
function inputs(op: UnaryOp, n: number, seed: number): Float32Array {
  return POSITIVE.has(op) ? randomArray(n, seed, 0.01, 20) : randomArray(n, seed, -12, 12);
}

const f32 = (a: ArrayLike<number>) => Float32Array.from(a);

Deno.test("unary forward and backward match the float64 reference on awkward shapes", gpuTest, async () => {
  await setup();
  for (const op of UNARY_OPS) {
    for (const [k, shape] of SHAPES.entries()) {
      const n = shape.reduce((a, b) => a * b, 1);
      const data = inputs(op, n, 11 + k);
      const dy = randomArray(n, 97 + k, -1, 1);
      await scope(async () => {
        const x = tensor(data, shape, { requiresGrad: true });
        const y = unary(op, x);
        assert.deepEqual(y.shape, shape);
        y.backward(tensor(dy, shape));
        assertClose(await y.toArray(), f32(unaryRef(op, data)), FWD, `${op} [${shape}] forward`);
        assertClose(
          await x.grad!.toArray(),
          f32(unaryGradRef(op, data, dy)),
          BWD,
          `${op} [${shape}] backward`,
        );
      });
    }
  }
});

Deno.test("every unary backward passes a finite-difference gradient check", gpuTest, async () => {
  await setup();
  // eps 1e-2, rtol 2e-2, atol 1e-3 (gradCheck's defaults) on [3, 5, 7]. Inputs stay away from relu's kink at 0
  // (|x| ≥ 0.05 > eps) and are positive ([0.5, 3]) for log, sqrt, rsqrt.
  for (const op of UNARY_OPS) {
    let data: Float32Array;
    if (POSITIVE.has(op)) data = randomArray(105, 5, 0.5, 3);
    else {
      data = randomArray(105, 5, -4, 4);
      for (let i = 0; i < data.length; i++) {
        if (Math.abs(data[i]) < 0.05) {
          data[i] = data[i] < 0 ? -0.05 : 0.05;
        }
      }
    }
    await gradCheck((x) => unary(op, x), [{ data, shape: [3, 5, 7] }]);
  }
});

/** Runs op forward and backward (dy = 1) on host values, returning both as arrays. */
async function fwdBwd(op: UnaryOp, xs: number[]): Promise<{ y: Float32Array; dx: Float32Array }> {
  return await scope(async () => {
    const x = tensor(xs, [xs.length], { requiresGrad: true });
    const y = unary(op, x);
    y.backward(tensor(new Array(xs.length).fill(1)));
    return { y: await y.toArray(), dx: await x.grad!.toArray() };
  });
}

Deno.test(
  "large |x| gives no NaN and the reference's limits (exp, sigmoid, logsigmoid, softplus, tanh, silu, gelu)",
  gpuTest,
  async () => {
    await setup();
    const big = [20, 30, 50, 88, 89, 100, 1e4, 1e20, 3e38];
    const xs = [...big, ...big.map((v) => -v)];
    const ones = xs.map(() => 1);
    for (const op of ["exp", "sigmoid", "logsigmoid", "softplus", "tanh", "silu", "gelu"] as UnaryOp[]) {
      const { y, dx } = await fwdBwd(op, xs);
      for (let i = 0; i < xs.length; i++) {
        assert.ok(!Number.isNaN(y[i]), `${op}(${xs[i]}) is NaN`);
        assert.ok(!Number.isNaN(dx[i]), `${op}'(${xs[i]}) is NaN`);
      }
      // exp overflows to +Infinity past ~88.72 in f32, like the rounded reference
      assertClose(y, f32(unaryRef(op, f32(xs))), FWD, `${op} forward at large |x|`);
      assertClose(dx, f32(unaryGradRef(op, f32(xs), ones)), BWD, `${op} backward at large |x|`);
    }
    assert.deepEqual([...(await fwdBwd("exp", [100])).y], [Infinity]);
    assert.deepEqual([...(await fwdBwd("sigmoid", [-100, 100])).y], [0, 1]);
    assert.deepEqual([...(await fwdBwd("tanh", [-1e30, 1e30])).y], [-1, 1]);
    assert.deepEqual([...(await fwdBwd("softplus", [1e30])).y], [1e30].map(Math.fround));
  },
);

Deno.test("tiny results keep their relative accuracy (log1p and tanh near 0)", gpuTest, async () => {
  await setup();
  // log(1 + z) in f32 rounds to 0 for z < 6e-8; the series used for log1p keeps every digit.
  const xs = [15, 25, 40, 60];
  const ls = await values(logsigmoid(tensor(xs)));
  assertClose(ls, f32(unaryRef("logsigmoid", xs)), { atol: 0, rtol: 1e-5 }, "logsigmoid(x ≫ 0)");
  const neg = xs.map((v) => -v);
  assertClose(await values(softplus(tensor(neg))), f32(unaryRef("softplus", neg)), { atol: 0, rtol: 1e-5 });
  const small = [1e-7, -3e-5, 2e-3, -0.1, 0.29, 0.31];
  assertClose(
    await values(tanh(tensor(small))),
    f32(unaryRef("tanh", small)),
    { atol: 0, rtol: 5e-6 },
    "tanh",
  );
  assertClose(
    await values(gelu(tensor(small))),
    f32(unaryRef("gelu", small)),
    { atol: 0, rtol: 1e-5 },
    "gelu",
  );
});

Deno.test("log, sqrt, rsqrt at 0 and below give the reference's infinities and NaN", gpuTest, async () => {
  await setup();
  assert.deepEqual(await values(log(tensor([0, 1]))), [-Infinity, 0]);
  assert.ok(Number.isNaN((await values(log(tensor([-1]))))[0]));
  assert.deepEqual(await values(sqrt(tensor([0, 4]))), [0, 2]);
  assert.deepEqual(await values(rsqrt(tensor([0, 4]))), [Infinity, 0.5]);
  assert.deepEqual(await values(exp(tensor([-200, 0]))), [0, 1]);
  assert.deepEqual(await values(sigmoid(tensor([0]))), [0.5]);
});

Deno.test("unary ops reject bad arguments and record no graph without requiresGrad", gpuTest, async () => {
  await setup();
  assert.throws(() => exp(tensor([1, 2], [2], { dtype: "i32" })), /exp: expected an f32 tensor, got i32/);
  assert.throws(() => unary("cosh" as UnaryOp, tensor([1])), /unknown op "cosh"/);
  assert.throws(() => sqrt(3 as unknown as Tensor), /expected a Tensor/);
  const y = tanh(tensor([1, 2]));
  assert.equal(y.requiresGrad, false);
  assert.equal(y.node, null);
  const e = exp(tensor([], [0, 3]));
  assert.deepEqual(e.shape, [0, 3]);
});
