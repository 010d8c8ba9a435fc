/**
 * Row kernels on rows past lavapipe's loop limit (an invocation stops silently after about 65,535 iterations):
 * softmax and logSoftmax over 256+ rows of the LM head's width (49,152) came back as zeros on CPU adapters, where
 * many rows took one invocation each whatever their length. Both kernel variants must give the right values.
 */
import assert from "node:assert/strict";
import { ones, rmsNorm, scope, sum, tensor, zeros } from "../mod.ts";
import { logSoftmaxGather } from "../src/autograd/ops/log_softmax_gather.ts";
import { logSoftmax, softmax } from "../src/autograd/ops/softmax.ts";
import { GpuLimitError } from "../src/gpu/errors.ts";
import { loopLimited } from "../src/gpu/loop_budget.ts";
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

Deno.test(
  "rows past one workgroup's loop budget are refused on loop-limited adapters, not computed wrong",
  gpuTest,
  async () => {
    await setup();
    // lavapipe stops an invocation after about 65 535 loop iterations in all. Measured before the guards: softmax
    // and rmsNorm over [1, 9M] left 1,225,600 outputs 0; logSoftmaxGather over 2.1M logits gave −11.09 for −14.56.
    // No model has such rows; the ops now throw a GpuLimitError there (CPU adapters only).
    if (!loopLimited()) return;
    const cases: [string, () => unknown][] = [
      ["softmax", () => softmax(zeros([1, 7_700_000]))],
      ["rmsNorm", () => rmsNorm(zeros([1, 5_120_000]), ones([5_120_000]))],
      ["logSoftmaxGather", () => logSoftmaxGather(zeros([1, 1_920_000]), [0])],
    ];
    for (const [name, run] of cases) {
      scope(() =>
        assert.throws(
          run,
          (e: unknown) => e instanceof GpuLimitError && /loop iterations/.test(e.message),
          name,
        )
      );
    }
    // just under: computed (one row of ones: 1/C each)
    const y = await scope(() => softmax(ones([1, 7_600_000])).toArray());
    assertClose([y[0], y[7_599_999]], [1 / 7_600_000, 1 / 7_600_000], { atol: 0, rtol: 1e-6 }, "softmax");
  },
);
