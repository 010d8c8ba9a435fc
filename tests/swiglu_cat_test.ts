/**
 * swigluCat (src/autograd/ops/swiglu_cat.ts, kernels/swiglu_cat.wgsl): silu(g)·u over a joined [..., 2·I] gate/up
 * tensor, against the float64 reference on awkward shapes (odd I, one row, many rows), bit for bit against swiglu
 * on the two halves, and its backward by finite differences.
 */
import assert from "node:assert/strict";
import { scope, tensor } from "../mod.ts";
import { swiglu } from "../src/autograd/ops/swiglu.ts";
import { swigluCat } from "../src/autograd/ops/swiglu_cat.ts";
import { assertClose, gpuTest, gradCheck, randomArray, setup } from "./util.ts";

/** Row-wise halves of gu [rows, 2I]. */
function halves(gu: Float32Array, rows: number, I: number) {
  const g = new Float32Array(rows * I), u = new Float32Array(rows * I);
  for (let r = 0; r < rows; r++) {
    g.set(gu.subarray(r * 2 * I, r * 2 * I + I), r * I);
    u.set(gu.subarray(r * 2 * I + I, (r + 1) * 2 * I), r * I);
  }
  return { g, u };
}

Deno.test(
  "swigluCat matches the float64 reference and swiglu on the halves, forward and backward",
  gpuTest,
  async () => {
    await setup();
    for (const [k, [rows, I]] of [[1, 1], [3, 7], [65, 129], [2, 40001]].entries()) {
      const gu = randomArray(rows * 2 * I, 3 + k, -40, 40);
      const dy = randomArray(rows * I, 30 + k);
      const { g, u } = halves(gu, rows, I);
      const y = new Float64Array(rows * I), dgu = new Float64Array(rows * 2 * I);
      for (let r = 0; r < rows; r++) {
        for (let j = 0; j < I; j++) {
          const x = g[r * I + j], uu = u[r * I + j], d = dy[r * I + j];
          const s = 1 / (1 + Math.exp(-x));
          y[r * I + j] = x * s * uu;
          dgu[r * 2 * I + j] = d * uu * s * (1 + x * (1 - s));
          dgu[r * 2 * I + I + j] = d * x * s;
        }
      }
      await scope(async () => {
        const t = tensor(gu, [rows, 2 * I], { requiresGrad: true });
        const out = swigluCat(t);
        assert.deepEqual(out.shape, [rows, I]);
        out.backward(tensor(dy, [rows, I]));
        const tol = { atol: 5e-6, rtol: 5e-6 };
        assertClose(await out.toArray(), Float32Array.from(y), tol, `[${rows}, ${I}] y`);
        assertClose(await t.grad!.toArray(), Float32Array.from(dgu), tol, `[${rows}, ${I}] dgu`);
        // bit for bit the values of swiglu on the two halves
        const gt = tensor(g, [rows, I], { requiresGrad: true }),
          ut = tensor(u, [rows, I], { requiresGrad: true });
        const ref = swiglu(gt, ut);
        assert.deepEqual(await out.toArray(), await ref.toArray());
        ref.backward(tensor(dy, [rows, I]));
        const both = halves(await t.grad!.toArray(), rows, I);
        assert.deepEqual(both.g, await gt.grad!.toArray());
        assert.deepEqual(both.u, await ut.grad!.toArray());
      });
    }
    await gradCheck((x) => swigluCat(x), [{ data: randomArray(3 * 10, 8, -3, 3), shape: [3, 10] }]);
    assert.throws(() => swigluCat(tensor([1, 2, 3], [1, 3])), /2·I/);
  },
);
