import assert from "node:assert/strict";
import { mul, scope, silu, tensor } from "../mod.ts";
import { swiglu } from "../src/autograd/ops/swiglu.ts";
import { assertClose, gpuTest, gradCheck, randomArray, setup } from "./util.ts";

/** float64 reference: y = g·σ(g)·u; du = dy·g·σ(g); dg = dy·u·σ(g)(1 + g(1 − σ(g))). */
function ref(g: ArrayLike<number>, u: ArrayLike<number>, dy: ArrayLike<number>) {
  const n = g.length;
  const y = new Float64Array(n), dg = new Float64Array(n), du = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    const s = 1 / (1 + Math.exp(-g[i]));
    y[i] = g[i] * s * u[i];
    du[i] = dy[i] * g[i] * s;
    dg[i] = dy[i] * u[i] * s * (1 + g[i] * (1 - s));
  }
  return { y, dg, du };
}

const TOL = { atol: 5e-6, rtol: 5e-6 };

Deno.test("swiglu forward and backward match the float64 reference on awkward shapes", gpuTest, async () => {
  await setup();
  for (const [k, shape] of [[1], [3, 5, 7], [129, 65], [70001]].entries()) {
    const n = shape.reduce((a, b) => a * b, 1);
    // gates out to ±40: σ's tails, where exp(−|g|) must not overflow
    const g = randomArray(n, 5 + k, -40, 40);
    const u = randomArray(n, 50 + k, -3, 3);
    const dy = randomArray(n, 500 + k, -1, 1);
    const r = ref(g, u, dy);
    await scope(async () => {
      const gt = tensor(g, shape, { requiresGrad: true });
      const ut = tensor(u, shape, { requiresGrad: true });
      const y = swiglu(gt, ut);
      assert.deepEqual(y.shape, shape);
      y.backward(tensor(dy, shape));
      assertClose(await y.toArray(), Float32Array.from(r.y), TOL, `[${shape}] y`);
      assertClose(await gt.grad!.toArray(), Float32Array.from(r.dg), TOL, `[${shape}] dg`);
      assertClose(await ut.grad!.toArray(), Float32Array.from(r.du), TOL, `[${shape}] du`);
    });
  }
});

Deno.test("swiglu equals silu then mul, and its gradient checks by finite differences", gpuTest, async () => {
  await setup();
  const g = randomArray(300, 1, -6, 6);
  const u = randomArray(300, 2, -2, 2);
  const [fused, split] = await scope(async () => {
    const a = await swiglu(tensor(g, [20, 15]), tensor(u, [20, 15])).toArray();
    const b = await mul(silu(tensor(g, [20, 15])), tensor(u, [20, 15])).toArray();
    return [a, b];
  });
  assertClose(fused, split, { atol: 1e-6, rtol: 1e-6 }, "swiglu vs silu·u");
  await gradCheck((a, b) => swiglu(a, b), [
    { data: randomArray(12, 3, -3, 3), shape: [3, 4] },
    { data: randomArray(12, 4, -2, 2), shape: [3, 4] },
  ]);
  assert.throws(() => swiglu(tensor([1, 2]), tensor([1, 2, 3])), /same shape/);
});
