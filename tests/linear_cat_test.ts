/**
 * linearCat (src/autograd/ops/linear_cat.ts): the joined projections [x·w0ᵀ | x·w1ᵀ | x·w2ᵀ] and their backward
 * against a float64 reference, under every matmul kernel (register, shared, tiled), on shapes that are not
 * multiples of any tile or of 4; the forward bit for bit against per-weight `linear`; the joins and cuts of
 * kernels/rows_cat.wgsl and rows_split.wgsl; gradients by finite differences.
 */
import assert from "node:assert/strict";
import { scope } from "../src/autograd/scope.ts";
import { type MatmulVariant, setMatmulVariant } from "../src/autograd/ops/matmul.ts";
import { catRows, linearCat, splitRows } from "../src/autograd/ops/linear_cat.ts";
import { linear } from "../src/nn/layers.ts";
import { tensor } from "../src/tensor/create.ts";
import { dispatchCounter } from "../src/gpu/queue.ts";
import { assertClose, gpuTest, gradCheck, randomArray, setup } from "./util.ts";

const VARIANTS: MatmulVariant[] = ["register", "shared", "tiled"];

async function eachMatmul(fn: (v: MatmulVariant) => Promise<void>): Promise<void> {
  for (const v of VARIANTS) {
    setMatmulVariant(v);
    try {
      await fn(v);
    } catch (e) {
      if (e instanceof Error) e.message = `[${v}] ${e.message}`;
      throw e;
    } finally {
      setMatmulVariant("auto");
    }
  }
}

/** y [rows, ΣN] = x·[w0; w1; w2]ᵀ, dx = dy·W, dw_i = dy_iᵀ·x, in float64. */
function ref(x: Float32Array, ws: Float32Array[], Ns: number[], rows: number, C: number, dy: Float32Array) {
  const N = Ns.reduce((a, b) => a + b, 0);
  const W = new Float64Array(N * C);
  let o = 0;
  for (const w of ws) {
    W.set(w, o);
    o += w.length;
  }
  const y = new Float64Array(rows * N);
  const dx = new Float64Array(rows * C);
  const dW = new Float64Array(N * C);
  for (let r = 0; r < rows; r++) {
    for (let n = 0; n < N; n++) {
      let s = 0;
      for (let c = 0; c < C; c++) s += x[r * C + c] * W[n * C + c];
      y[r * N + n] = s;
      const g = dy[r * N + n];
      for (let c = 0; c < C; c++) {
        dx[r * C + c] += g * W[n * C + c];
        dW[n * C + c] += g * x[r * C + c];
      }
    }
  }
  const dws: Float64Array[] = [];
  o = 0;
  for (const n of Ns) {
    dws.push(dW.slice(o * C, (o + n) * C));
    o += n;
  }
  return { y, dx, dws };
}

Deno.test("rows_cat and rows_split join and cut 2 or 3 tensors exactly", gpuTest, async () => {
  await setup();
  for (const rows of [[3, 1, 5], [7, 2], [1, 1, 1], [130, 67, 67]]) {
    const C = 5;
    const parts = rows.map((r, i) => randomArray(r * C, 10 + i));
    await scope(async () => {
      const cat = catRows(parts.map((p, i) => tensor(p, [rows[i], C])));
      assert.deepEqual(cat.shape, [rows.reduce((a, b) => a + b, 0), C]);
      const want = new Float32Array(cat.size);
      let o = 0;
      for (const p of parts) {
        want.set(p, o);
        o += p.length;
      }
      assert.deepEqual(await cat.toArray(), want);
      const back = splitRows(cat, rows.map((r) => [r, C]));
      for (const [i, t] of back.entries()) assert.deepEqual(await t.toArray(), parts[i], `part ${i}`);
    });
  }
  await scope(() => {
    assert.throws(() => catRows([tensor([1, 2], [1, 2])]), /2 or 3/);
    assert.throws(() => catRows([tensor([1, 2], [1, 2]), tensor([1, 2, 3], [1, 3])]), /\[\*, 2\]/);
    assert.throws(() => splitRows(tensor([1, 2, 3], [3, 1]), [[1, 1], [1, 1]]), /elements/);
  });
});

Deno.test(
  "linearCat matches the float64 reference forward and backward under every matmul kernel",
  gpuTest,
  async () => {
    await setup();
    // rows not a multiple of 16 or 64, C not a multiple of 4 (register kernel pads), N's uneven; one case
    // past a 128-column block and a 64-row block
    const cases = [
      { rows: 37, C: 13, Ns: [7, 5, 3] },
      { rows: 5, C: 8, Ns: [9, 9] },
      { rows: 70, C: 36, Ns: [133, 21, 21] },
      { rows: 2, C: 3, Ns: [1, 2] },
    ];
    await eachMatmul(async () => {
      for (const [k, { rows, C, Ns }] of cases.entries()) {
        const x = randomArray(rows * C, 100 + k);
        const ws = Ns.map((n, i) => randomArray(n * C, 200 + 10 * k + i, -2, 2));
        const N = Ns.reduce((a, b) => a + b, 0);
        const dy = randomArray(rows * N, 300 + k);
        const r = ref(x, ws, Ns, rows, C, dy);
        await scope(async () => {
          const xt = tensor(x, [1, rows, C], { requiresGrad: true });
          const wt = ws.map((w, i) => tensor(w, [Ns[i], C], { requiresGrad: true }));
          const y = linearCat(xt, wt);
          assert.deepEqual(y.shape, [1, rows, N]);
          y.backward(tensor(dy, [1, rows, N]));
          const tol = (K: number) => ({ atol: 1e-5 * Math.sqrt(K) * 2 * 2, rtol: 1e-5 });
          const what = `rows ${rows} C ${C} N ${Ns}`;
          assertClose(await y.toArray(), Float32Array.from(r.y), tol(C), `${what}: y`);
          assertClose(await xt.grad!.toArray(), Float32Array.from(r.dx), tol(N), `${what}: dx`);
          for (const [i, w] of wt.entries()) {
            assertClose(await w.grad!.toArray(), Float32Array.from(r.dws[i]), tol(rows), `${what}: dw${i}`);
          }
          // the forward is the per-weight products' bit for bit
          const want = new Float32Array(rows * N);
          const yv = await y.toArray();
          let o = 0;
          for (const w of wt) {
            const part = await linear(xt, w, null).toArray();
            const n = w.shape[0];
            for (let m = 0; m < rows; m++) want.set(part.subarray(m * n, m * n + n), m * N + o);
            o += n;
          }
          assert.deepEqual(yv, want, `${what}: bit-identical to linear`);
        });
      }
    });
  },
);

Deno.test(
  "linearCat: weights without requiresGrad get none; dispatches; gradients by finite differences",
  gpuTest,
  async () => {
    await setup();
    await scope(async () => {
      // C = 8 and ΣN = 8: rows of whole vec4s, so the register kernel pads nothing and the counts are the op's own
      const x = tensor(randomArray(6 * 8, 1), [6, 8], { requiresGrad: true });
      const w0 = tensor(randomArray(3 * 8, 2), [3, 8], { requiresGrad: true });
      const w1 = tensor(randomArray(2 * 8, 3), [2, 8]);
      const w2 = tensor(randomArray(3 * 8, 4), [3, 8], { requiresGrad: true });
      let d0 = dispatchCounter();
      const y = linearCat(x, [w0, w1, w2]);
      assert.equal(dispatchCounter() - d0, 2, "forward: the join and one product");
      const dy = tensor(randomArray(6 * 8, 5), [6, 8]); // ΣN = 8: dY's rows need no padding either
      d0 = dispatchCounter();
      y.backward(dy);
      assert.equal(dispatchCounter() - d0, 4, "backward: the join, dX, dW and the cut");
      assert.equal(w1.grad, null);
      assert.ok(w0.grad && x.grad);
      assert.deepEqual(w2.grad!.shape, [3, 8]);
      assert.ok((await w2.grad!.toArray()).some((v) => v !== 0));
    });
    await gradCheck((x, a, b, c) => linearCat(x, [a, b, c]), [
      { data: randomArray(4 * 7, 11), shape: [2, 2, 7] },
      { data: randomArray(3 * 7, 12), shape: [3, 7] },
      { data: randomArray(5 * 7, 13), shape: [5, 7] },
      { data: randomArray(1 * 7, 14), shape: [1, 7] },
    ]);
    await gradCheck((x, a, b) => linearCat(x, [a, b]), [
      { data: randomArray(3 * 4, 21), shape: [3, 4] },
      { data: randomArray(6 * 4, 22), shape: [6, 4] },
      { data: randomArray(6 * 4, 23), shape: [6, 4] },
    ]);
  },
);
