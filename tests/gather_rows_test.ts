import assert from "node:assert/strict";
import { GATHER_WINDOW, gatherRows, scatterPlan } from "../src/autograd/ops/gather_rows.ts";
import { loopLimited } from "../src/gpu/loop_budget.ts";
import { tensor } from "../src/tensor/create.ts";
import { gatherRowsBackwardRef, gatherRowsRef } from "./reference/shape.ts";
import { assertClose, gpuTest, gradCheck, randomArray, setup } from "./util.ts";

const EXACT = { atol: 0, rtol: 0 };

function indicesOf(n: number, V: number, seed: number): Int32Array {
  return Int32Array.from(randomArray(n, seed, 0, V), (v) => Math.min(V - 1, Math.floor(v)));
}

Deno.test("gatherRows picks table rows (Int32Array or tensor + host copy)", gpuTest, async () => {
  await setup();
  const cases: [number, number, number[]][] = [[1, 1, [1]], [11, 7, [20]], [129, 65, [3, 5]], [49157, 3, [
    7,
    31,
  ]]];
  for (const [ci, [V, C, ishape]] of cases.entries()) {
    const N = ishape.reduce((a, b) => a * b, 1);
    const table = randomArray(V * C, 1000 + ci);
    const idx = indicesOf(N, V, 2000 + ci);
    idx[0] = V - 1; // the last row is reachable
    const t = tensor(table, [V, C]);
    const a = gatherRows(t, idx, { shape: ishape });
    assert.deepEqual(a.shape, [...ishape, C]);
    assertClose(await a.toArray(), gatherRowsRef(table, C, idx), EXACT, `gather V=${V} C=${C}`);
    const it = tensor(idx, ishape, { dtype: "i32" });
    const b = gatherRows(t, it, { host: idx });
    assert.deepEqual(b.shape, [...ishape, C]);
    assertClose(await b.toArray(), gatherRowsRef(table, C, idx), EXACT, `gather (tensor) V=${V} C=${C}`);
  }
});

Deno.test("gatherRows backward sums repeated rows; unused rows get exactly 0", gpuTest, async () => {
  await setup();
  const V = 13;
  const C = 65;
  // repeated indices in a fixed pattern, rows 4 and 12 never used
  const idx = Int32Array.from(
    { length: 5000 },
    (_, n) => [0, 2, 2, 7, 10, 5, 0, 8][n % 8] + (n % 3 === 0 ? 1 : 0),
  );
  assert.ok(!idx.includes(4) && !idx.includes(12));
  const table = randomArray(V * C, 5);
  const dy = randomArray(idx.length * C, 6);
  const run = async () => {
    const t = tensor(table, [V, C], { requiresGrad: true });
    gatherRows(t, idx, { shape: [50, 100] }).backward(tensor(dy, [50, 100, C]));
    return await t.grad!.toArray();
  };
  const g1 = await run();
  // f32 sums of up to ~1250 values in [-1, 1): atol 1e-4
  assertClose(g1, gatherRowsBackwardRef(dy, V, C, idx), { atol: 1e-4, rtol: 1e-5 }, "dTable");
  assert.ok(g1.subarray(4 * C, 5 * C).every((v) => Object.is(v, 0)));
  assert.ok(g1.subarray(12 * C, 13 * C).every((v) => Object.is(v, 0)));
  // determinism: a second run is bit-identical
  const g2 = await run();
  assert.deepEqual(new Uint32Array(g1.buffer), new Uint32Array(g2.buffer));
  // the sums run in increasing position order: the f32 serial sum of the reference order matches bit for bit
  for (const v of [0, 3, 8]) {
    for (const c of [0, 31, 64]) {
      let s = Math.fround(0);
      for (let n = 0; n < idx.length; n++) if (idx[n] === v) s = Math.fround(s + dy[n * C + c]);
      assert.equal(g1[v * C + c], s, `row ${v}, column ${c}`);
    }
  }
});

// gradCheck: eps 1e-2, rtol 2e-2, atol 1e-3 (defaults); the gathered output is linear in the table.
Deno.test("gatherRows passes gradCheck with repeated indices", gpuTest, async () => {
  await setup();
  const idx = new Int32Array([2, 0, 2, 2, 4, 1, 0]);
  await gradCheck((t) => gatherRows(t, idx), [{ data: randomArray(5 * 3, 9), shape: [5, 3] }]);
});

Deno.test("the scatter plan groups positions per row in increasing order", () => {
  const plan = scatterPlan(new Int32Array([2, 0, 2, 3, 0, 2]), 5);
  // offsets for rows 0..4, then positions grouped by row
  assert.deepEqual([...plan], [0, 2, 2, 5, 6, 6, 1, 4, 0, 2, 5, 3]);
});

Deno.test("gatherRows rejects out-of-range indices and bad arguments", gpuTest, async () => {
  await setup();
  const t = tensor(randomArray(12, 1), [4, 3]);
  assert.throws(() => gatherRows(t, new Int32Array([0, 4])), /index 4 at position 1 .* V = 4/);
  assert.throws(() => gatherRows(t, new Int32Array([-1])), /index -1 at position 0 .* V = 4/);
  const it = tensor(new Int32Array([1, 2]), [2], { dtype: "i32" });
  // a table that needs a gradient needs the host copy (the backward plans from it); without one, see
  // decode_argmax_test.ts
  const tg = tensor(randomArray(12, 1), [4, 3]);
  tg.requiresGrad = true;
  assert.throws(() => gatherRows(tg, it), /host copy/);
  assert.throws(() => gatherRows(t, it, { host: new Int32Array([1, 9]) }), /index 9 .* V = 4/);
  assert.throws(() => gatherRows(t, it, { host: new Int32Array([1]) }), /1 indices, the tensor 2/);
  assert.throws(() => gatherRows(t, tensor([1, 2])), /i32/);
  assert.throws(() => gatherRows(tensor([1, 2, 3]), new Int32Array([0])), /\[V, C\]/);
  assert.throws(() => gatherRows(t, new Int32Array([0, 1, 2]), { shape: [2, 2] }), /do not fill/);
  assert.deepEqual(gatherRows(t, new Int32Array(0)).shape, [0, 3]);
});

Deno.test(
  "gatherRows backward: a row gathered 150,000 times (past lavapipe's loop limit) is summed whole",
  gpuTest,
  async () => {
    await setup();
    // lavapipe stops an invocation after about 65 535 loop iterations in all: one invocation summing every position of
    // a row returned 65 535 for 70 000 repeats with dy = 1. Rows repeated more than GATHER_WINDOW times now take
    // windows of positions (CPU adapters), each window a serial f32 sum added in order.
    const V = 4, C = 2, N = 150_000;
    const idx = Int32Array.from({ length: N }, (_, n) => (n % 50 === 7 ? 3 : 1));
    const dy = Float32Array.from(randomArray(N * C, 11, 0, 1));
    const t = tensor(new Float32Array(V * C), [V, C], { requiresGrad: true });
    gatherRows(t, idx).backward(tensor(dy, [N, C]));
    const got = await t.grad!.toArray();
    assertClose(got, gatherRowsBackwardRef(dy, V, C, idx), { atol: 0.05, rtol: 1e-5 }, "dTable");
    if (!loopLimited()) return;
    // bit for bit: serial f32 sums over windows of GATHER_WINDOW positions of row 1, added in order
    for (let c = 0; c < C; c++) {
      let total = 0, part = 0, k = 0;
      for (let n = 0; n < N; n++) {
        if (idx[n] !== 1) continue;
        part = Math.fround(part + dy[n * C + c]);
        if (++k % GATHER_WINDOW === 0) [total, part] = [Math.fround(total + part), 0];
      }
      if (k % GATHER_WINDOW !== 0) total = Math.fround(total + part);
      assert.equal(got[1 * C + c], total, `row 1, column ${c}`);
    }
  },
);
