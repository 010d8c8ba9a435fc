/**
 * Row kernels on rows past lavapipe's loop limit (an invocation stops silently after about 65,535 iterations):
 * softmax and logSoftmax over 256+ rows of the LM head's width (49,152) came back as zeros on CPU adapters, where
 * many rows took one invocation each whatever their length. Both kernel variants must give the right values.
 */
import { ones, scope, sum, tensor } from "../mod.ts";
import { logSoftmax, softmax } from "../src/autograd/ops/softmax.ts";
import { CPU_THREAD_ROW_LEN_MAX } from "../src/autograd/ops/reduce.ts";
import { assertClose, eachKernelVariant, gpuTest, randomArray, setup } from "./util.ts";

Deno.test(
  "softmax, logSoftmax and row sums over 256 rows of 49,152 are right on every kernel variant",
  gpuTest,
  async () => {
    await setup();
    const R = 256, C = 49_152;
    await eachKernelVariant(async () => {
      // a row of ones: every probability 1/C; the row sum C
      const [y, l, s] = await scope(async () => [
        await softmax(ones([R, C])).toArray(),
        await logSoftmax(ones([R, C])).toArray(),
        await sum(ones([R, C]), { axis: -1 }).toArray(),
      ]);
      assertClose(y, new Float32Array(R * C).fill(1 / C), { atol: 1e-9, rtol: 1e-5 }, "softmax");
      assertClose(l, new Float32Array(R * C).fill(-Math.log(C)), { atol: 1e-4, rtol: 1e-5 }, "logSoftmax");
      assertClose(s, new Float32Array(R).fill(C), { atol: 0, rtol: 1e-6 }, "row sums");
      // logSoftmax backward: dx = dy − softmax(x)·Σdy; with dy = 1 on one entry per row, dx = e_j − 1/C
      const grad = await scope(async () => {
        const x = ones([R, C]);
        x.requiresGrad = true;
        const dy = new Float32Array(R * C);
        for (let r = 0; r < R; r++) dy[r * C + (r % C)] = 1;
        logSoftmax(x).backward(tensor(dy, [R, C]));
        return await x.grad!.toArray();
      });
      const want = new Float32Array(R * C).fill(-1 / C);
      for (let r = 0; r < R; r++) want[r * C + (r % C)] += 1;
      assertClose(grad, want, { atol: 1e-6, rtol: 1e-5 }, "logSoftmax backward");
    });
    // rows just above the per-invocation length take the workgroup kernels; random values against float64
    const n = CPU_THREAD_ROW_LEN_MAX + 3;
    const x = randomArray(256 * n, 3, -4, 4);
    const got = await scope(() => logSoftmax(tensor(x, [256, n])).toArray());
    for (const r of [0, 255]) {
      let m = -Infinity;
      for (let c = 0; c < n; c++) m = Math.max(m, x[r * n + c]);
      let z = 0;
      for (let c = 0; c < n; c++) z += Math.exp(x[r * n + c] - m);
      const lse = m + Math.log(z);
      const wantRow = Float32Array.from({ length: n }, (_, c) => x[r * n + c] - lse);
      assertClose(got.subarray(r * n, (r + 1) * n), wantRow, { atol: 2e-5, rtol: 1e-5 }, `row ${r}`);
    }
  },
);
