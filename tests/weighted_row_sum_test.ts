/**
 * weightedRowSum, the one masked / weighted row sum (sequence log-probs, cross-entropy, DPO's sums), against a
 * float64 reference. Past lavapipe's loop limit: an invocation there stops silently after about 65 535 iterations,
 * and a single row of 65 536 or more tokens (the RPO/sft NLL and the pooled logits metrics sum all rows × T as
 * one row) came back as 65 535. Rows longer than one chunk are now summed in chunks.
 */
import { ones, scope, tensor } from "../mod.ts";
import { ROW_SUM_CHUNK, weightedRowSum } from "../src/autograd/ops/weighted_row_sum.ts";
import { assertClose, gpuTest, gradCheck, randomArray, setup } from "./util.ts";

Deno.test("weightedRowSum is exact on rows longer than lavapipe's loop limit", gpuTest, async () => {
  await setup();
  for (const n of [65_536, 70_000, 131_072, 200_003]) {
    const got = await scope(() => weightedRowSum(ones([n]), ones([n]), 1, n).toArray());
    assertClose(got, [n], { atol: 0, rtol: 0 }, `sum of ${n} ones`);
  }
});

Deno.test(
  "weightedRowSum matches the float64 reference on awkward shapes, chunked or not",
  gpuTest,
  async () => {
    await setup();
    for (const [B, T] of [[1, 1], [3, 7], [2, ROW_SUM_CHUNK + 1], [3, 70_001]]) {
      const x = randomArray(B * T, B + T, -1, 1);
      // weights as DPO's: zeros (unscored), ones, and LD-DPO's fractional tail
      const w = Float32Array.from({ length: B * T }, (_, i) => [0, 1, 1, 0.25][i % 4]);
      const want = Array.from({ length: B }, (_, b) => {
        let s = 0;
        for (let t = 0; t < T; t++) s += w[b * T + t] * x[b * T + t];
        return s;
      });
      const got = await scope(() => weightedRowSum(tensor(x, [B, T]), tensor(w, [B, T]), B, T).toArray());
      assertClose(got, want, { atol: 1e-6 * Math.sqrt(T) + 1e-6, rtol: 1e-5 }, `[${B}, ${T}]`);
    }
    const w = randomArray(12, 9, 0, 1);
    await gradCheck((a) => weightedRowSum(a, tensor(w, [3, 4]), 3, 4), [{
      data: randomArray(12, 8, -1, 1),
      shape: [3, 4],
    }]);
  },
);

Deno.test("weightedRowSum skips positions of weight 0, even non-finite ones", gpuTest, async () => {
  await setup();
  // as in cross-entropy: −1/count on the scored positions; the unscored ones hold NaN and ±Infinity
  const x = [0.5, NaN, -1.25, Infinity, 2, -Infinity, 0.75];
  const w = [-0.25, 0, -0.25, 0, -0.25, 0, -0.25];
  const got = await scope(() => weightedRowSum(tensor(x, [1, 7]), tensor(w, [1, 7]), 1, 7).toArray());
  assertClose(got, [-0.25 * (0.5 - 1.25 + 2 + 0.75)], { atol: 1e-7, rtol: 0 }, "masked sum");
});
