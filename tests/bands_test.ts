/**
 * Ops over tensors larger than one storage binding run in bands of rows (src/gpu/bands.ts): softmax and
 * logSoftmax (forward and backward), unary functions and scale, under a lowered binding limit against the host
 * reference, plus one logSoftmax at the device's own limit (logits of 700 tokens × 49152, 138 MB).
 */
import assert from "node:assert/strict";
import { exp, logSoftmax, mul, scale, scope, softmax, sum, tensor } from "../mod.ts";
import { setBandBindingLimit } from "../src/gpu/bands.ts";
import { assertClose, gpuTest, randomArray, setup } from "./util.ts";

function softmaxRef(x: ArrayLike<number>, rows: number, C: number, log: boolean): number[] {
  const out: number[] = [];
  for (let r = 0; r < rows; r++) {
    const row = Array.from({ length: C }, (_, j) => x[r * C + j]);
    const m = Math.max(...row);
    const z = row.reduce((s, v) => s + Math.exp(v - m), 0);
    for (const v of row) out.push(log ? v - m - Math.log(z) : Math.exp(v - m) / z);
  }
  return out;
}

Deno.test(
  "softmax, logSoftmax, unary and scale run in row bands past the binding limit",
  gpuTest,
  async () => {
    await setup();
    // 37 rows of 100 floats (400 bytes) under an 8 KiB limit: bands of 16, 16 and 5 rows (a band starts on a
    // 256-byte offset: a multiple of 16 rows)
    setBandBindingLimit(8192);
    try {
      const [rows, C] = [37, 100];
      const xd = randomArray(rows * C, 3, -4, 4);
      const w = randomArray(rows * C, 4, -1, 1);
      for (const log of [false, true]) {
        const [y, g] = await scope(async () => {
          const x = tensor(xd, [rows, C], { requiresGrad: true });
          const y = log ? logSoftmax(x) : softmax(x);
          const yv = await y.toArray();
          // d Σ w·y / dx through the banded backward (mul is not banded: its 14.8 KB fit the device's binding)
          sum(mul(y, tensor(w, [rows, C]))).backward();
          return [yv, await x.grad!.toArray()];
        });
        const want = softmaxRef(xd, rows, C, log);
        assertClose(y, want, { atol: 1e-6, rtol: 1e-5 }, log ? "logSoftmax" : "softmax");
        // reference gradient: softmax dx = y⊙(w − Σw⊙y); logSoftmax dx = w − softmax(x)·Σw
        const p = softmaxRef(xd, rows, C, false);
        const gwant: number[] = [];
        for (let r = 0; r < rows; r++) {
          let s = 0;
          for (let j = 0; j < C; j++) s += log ? w[r * C + j] : w[r * C + j] * p[r * C + j];
          for (let j = 0; j < C; j++) {
            const i = r * C + j;
            gwant.push(log ? w[i] - p[i] * s : p[i] * (w[i] - s));
          }
        }
        assertClose(g, gwant, { atol: 1e-6, rtol: 1e-4 }, `${log ? "logSoftmax" : "softmax"} backward`);
      }
      // elementwise: 3700 floats in bands of 2048
      const [e, ge, sc] = await scope(async () => {
        const x = tensor(xd, [rows, C], { requiresGrad: true });
        const y = exp(x);
        sum(y).backward();
        return [await y.toArray(), await x.grad!.toArray(), await scale(x, 2, -1).toArray()];
      });
      const ewant = Array.from(xd, Math.exp);
      assertClose(e, ewant, { atol: 0, rtol: 1e-6 }, "exp");
      assertClose(ge, ewant, { atol: 0, rtol: 1e-6 }, "exp backward");
      assertClose(sc, Array.from(xd, (v) => 2 * v - 1), { atol: 1e-6, rtol: 0 }, "scale");
    } finally {
      setBandBindingLimit(null);
    }
  },
);

Deno.test("logSoftmax of logits larger than one binding at the device's own limit", gpuTest, async () => {
  await setup();
  // 700 × 49152 floats = 137.6 MB: more than the 128 MiB binding of the portable defaults
  const [T, V] = [700, 49152];
  const x = new Float32Array(T * V);
  for (let t = 0; t < T; t++) x[t * V + (t * 7919) % V] = 5; // one large logit per row
  const got = await scope(async () => await logSoftmax(tensor(x, [1, T, V])).toArray());
  const lz = Math.log(Math.exp(5) + (V - 1)); // log Σ exp
  for (const t of [0, 1, 349, 350, 698, 699]) {
    const hot = (t * 7919) % V;
    assert.ok(Math.abs(got[t * V + hot] - (5 - lz)) < 1e-5, `row ${t}: ${got[t * V + hot]}`);
    assert.ok(Math.abs(got[t * V + ((hot + 1) % V)] + lz) < 1e-5, `row ${t}, another column`);
  }
});
