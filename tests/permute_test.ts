import assert from "node:assert/strict";
import { permute } from "../src/autograd/ops/permute.ts";
import { tensor } from "../src/tensor/create.ts";
import { dispatchCounter } from "../src/gpu/queue.ts";
import { assertClose, eachKernelVariant, gpuTest, gradCheck, randomArray, setup, values } from "./util.ts";

/** Reference permutation on the host. */
function permuteRef(data: ArrayLike<number>, shape: number[], dims: number[]): number[] {
  const n = shape.length;
  const strides = new Array(n).fill(1);
  for (let i = n - 2; i >= 0; i--) strides[i] = strides[i + 1] * shape[i + 1];
  const outShape = dims.map((d) => shape[d]);
  const size = shape.reduce((a, b) => a * b, 1);
  const out = new Array<number>(size);
  for (let i = 0; i < size; i++) {
    let rem = i;
    let src = 0;
    for (let j = n - 1; j >= 0; j--) {
      const c = rem % outShape[j];
      rem = Math.floor(rem / outShape[j]);
      src += c * strides[dims[j]];
    }
    out[i] = data[src];
  }
  return out;
}

Deno.test("permute matches the reference on awkward shapes", gpuTest, async () => {
  await setup();
  const cases: [number[], number[]][] = [
    [[1], [0]],
    [[3, 5], [1, 0]],
    [[2, 3, 5, 7], [0, 2, 1, 3]],
    [[2, 7, 3, 4, 5], [2, 0, 3, 1, 4]],
    [[1, 2, 1, 3, 1, 2], [5, 4, 3, 2, 1, 0]],
    [[3, 70001], [1, 0]],
    [[70001, 3], [1, 0]],
    [[3, 2, 40000], [1, 0, 2]], // runs longer than one invocation's (16384): three chunks per row
    [[2, 5, 3, 16], [0, 2, 1, 3]], // attention's head split
  ];
  // both variants: a run per invocation (CPU adapters) and an element per invocation (GPUs)
  await eachKernelVariant(async (cpu) => {
    for (const [shape, dims] of cases) {
      const data = randomArray(shape.reduce((a, b) => a * b, 1), shape.length);
      const y = permute(tensor(data, shape), dims);
      assert.deepEqual(y.shape, dims.map((d) => shape[d]));
      assertClose(
        await values(y),
        permuteRef(data, shape, dims),
        { atol: 0, rtol: 0 },
        `[${shape}] → [${dims}] (${cpu ? "CPU" : "GPU"} kernel)`,
      );
    }
  });
  assert.throws(() => permute(tensor([1, 2], [2, 1]), [0, 0]), /not a permutation/);
});

Deno.test("permute backward is the inverse permutation", gpuTest, async () => {
  await setup();
  const shape = [2, 3, 4, 5];
  await eachKernelVariant(() =>
    gradCheck((x) => permute(x, [2, 0, 3, 1]), [{ data: randomArray(120, 9), shape }])
  );
});

Deno.test(
  "a permutation that moves only axes of size 1 is a view: no dispatch, same values",
  gpuTest,
  async () => {
    await setup();
    const cases: [number[], number[]][] = [
      [[2, 1, 3, 4], [0, 2, 1, 3]], // decoding's head split [B, 1, H, D] → [B, H, 1, D]
      [[1, 3, 1, 5], [2, 0, 1, 3]],
      [[4, 1], [1, 0]],
    ];
    for (const [shape, dims] of cases) {
      const data = randomArray(shape.reduce((a, b) => a * b, 1), 3);
      const x = tensor(data, shape);
      const before = dispatchCounter();
      const y = permute(x, dims);
      assert.equal(dispatchCounter(), before, `[${shape}] → [${dims}] dispatched a copy`);
      assert.deepEqual(y.shape, dims.map((d) => shape[d]));
      assert.deepEqual(Array.from(await values(y)), permuteRef(data, shape, dims));
    }
    await gradCheck((x) => permute(x, [0, 2, 1, 3]), [{ data: randomArray(24, 4), shape: [2, 1, 3, 4] }]);
  },
);
