import assert from "node:assert/strict";
import { argmaxRows } from "../src/models/decode_argmax.ts";
import { gatherRows } from "../src/autograd/ops/gather_rows.ts";
import { tensor } from "../src/tensor/create.ts";
import { empty } from "../src/tensor/tensor.ts";
import { noGrad, scope } from "../mod.ts";
import { gpuTest, randomArray, setup } from "./util.ts";

/** The host loop greedy decoding always used: start at column 0, move on a strictly greater value. */
function firstMax(row: Float32Array): number {
  let best = 0;
  for (let v = 1; v < row.length; v++) if (row[v] > row[best]) best = v;
  return best;
}

function expected(x: Float32Array, V: number): number[] {
  const out: number[] = [];
  for (let r = 0; r < x.length / V; r++) out.push(firstMax(x.subarray(r * V, (r + 1) * V)));
  return out;
}

Deno.test(
  "argmaxRows: the host loop's column on awkward widths, ties, NaNs, infinities and signed zeros",
  gpuTest,
  async () => {
    await setup();
    const cases: [string, number, number, (x: Float32Array, V: number) => void][] = [
      ["one column", 3, 1, () => {}],
      ["random", 3, 1000, () => {}],
      ["under one lane each", 2, 63, () => {}],
      ["one past the lanes", 2, 65, () => {}],
      ["a vocabulary", 2, 49157, () => {}],
      ["ties across lanes: the first column", 3, 777, (x, V) => {
        for (let r = 0; r < 3; r++) for (const c of [5, 70, 300, 776]) x[r * V + c] = 9;
      }],
      ["tie at column 0", 1, 200, (x) => {
        x[0] = 9;
        x[64] = 9;
        x[199] = 9;
      }],
      ["NaN at column 0 keeps 0", 2, 300, (x, V) => {
        x[0] = NaN;
        x[V] = NaN;
        x[V + 7] = 50;
      }],
      ["NaNs elsewhere never win", 1, 300, (x) => {
        x.fill(-1);
        x[3] = NaN;
        x[130] = 2;
        x[131] = NaN;
      }],
      ["every value NaN", 1, 90, (x) => x.fill(NaN)],
      ["every value −∞", 1, 90, (x) => x.fill(-Infinity)],
      ["+∞ beats everything, first of two", 1, 500, (x) => {
        x[400] = Infinity;
        x[200] = Infinity;
      }],
      ["−0 and +0 tie: the first", 1, 130, (x) => {
        x.fill(-5);
        x[100] = -0;
        x[10] = 0;
      }],
    ];
    for (const [what, R, V, edit] of cases) {
      const x = randomArray(R * V, V + R, -3, 3);
      edit(x, V);
      const got = await scope(() => argmaxRows(tensor(x, [R, V])).toInt32Array());
      assert.deepEqual([...got], expected(x, V), what);
    }
  },
);

Deno.test("argmaxRows: the argument checks", gpuTest, async () => {
  await setup();
  await scope(() => {
    assert.throws(() => argmaxRows(empty([3, 0])), /0 columns/);
    assert.throws(() => argmaxRows(empty([3], "i32")), /expected an f32 tensor/);
  });
});

Deno.test(
  "gatherRows: GPU-made indices without a host copy, only where no gradient is needed",
  gpuTest,
  async () => {
    await setup();
    const table = randomArray(6 * 3, 4);
    await scope(async () => {
      const t = tensor(table, [6, 3]);
      const idx = tensor(new Int32Array([5, 0, 5, 2]), [2, 2], { dtype: "i32" });
      const rows = await gatherRows(t, idx).toArray();
      const want = [5, 0, 5, 2].flatMap((i) => [...table.subarray(i * 3, i * 3 + 3)]);
      assert.deepEqual([...rows], want);
      t.requiresGrad = true;
      assert.throws(() => gatherRows(t, idx), /needs its host copy/);
      assert.deepEqual([...(await noGrad(() => gatherRows(t, idx)).toArray())], want);
    });
  },
);
