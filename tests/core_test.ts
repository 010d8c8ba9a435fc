import assert from "node:assert/strict";
import {
  arange,
  dispatch,
  full,
  Generator,
  inlineKernel,
  KernelError,
  memoryStats,
  ones,
  rand,
  randn,
  reshape,
  scale,
  scope,
  tensor,
  zeros,
} from "../mod.ts";
import { compileKernel } from "../src/gpu/kernel.ts";
import { sizeClass } from "../src/gpu/pool.ts";
import { assertClose, gpuTest, gradCheck, setup, values } from "./util.ts";

Deno.test("tensor round trip keeps values, shapes and dtypes", gpuTest, async () => {
  await setup();
  const t = tensor([[1, 2, 3], [4, 5, 6]]);
  assert.deepEqual(t.shape, [2, 3]);
  assert.deepEqual(await values(t), [1, 2, 3, 4, 5, 6]);
  const i = tensor([7, -8, 9], [3], { dtype: "i32" });
  const arr = await i.toInt32Array();
  assert.ok(arr instanceof Int32Array);
  assert.deepEqual([...arr], [7, -8, 9]);
  assert.equal(await tensor(3.5).item(), 3.5);
  assert.throws(() => tensor([1, 2, 3], [2, 2]), /shape/);
  assert.throws(() => zeros([2, -1]), /invalid shape/);
});

Deno.test("zeros, ones, full, arange on awkward sizes", gpuTest, async () => {
  await setup();
  for (const n of [1, 7, 257, 70000]) {
    const z = await zeros([n]).toArray();
    assert.ok(z.every((v) => v === 0));
    const o = await ones([n]).toArray();
    assert.ok(o.every((v) => v === 1));
    const f = await full([n], -2.5).toArray();
    assert.ok(f.every((v) => v === -2.5));
  }
  assert.deepEqual(await values(arange(5)), [0, 1, 2, 3, 4]);
  assert.deepEqual(await values(arange(1, 2, 0.25)), [1, 1.25, 1.5, 1.75]);
  assert.deepEqual(zeros([0]).shape, [0]);
});

Deno.test("seeded random tensors are reproducible and have the right moments", gpuTest, async () => {
  await setup();
  const a = await randn([4096], { generator: new Generator(42) }).toArray();
  const b = await randn([4096], { generator: new Generator(42) }).toArray();
  const c = await randn([4096], { generator: new Generator(43) }).toArray();
  assert.deepEqual(a, b);
  assert.notDeepEqual(a, c);
  const mean = a.reduce((s, v) => s + v, 0) / a.length;
  const varc = a.reduce((s, v) => s + (v - mean) ** 2, 0) / a.length;
  assert.ok(Math.abs(mean) < 0.05, `mean ${mean}`);
  assert.ok(Math.abs(varc - 1) < 0.08, `variance ${varc}`);
  const u = await rand([2000], { generator: new Generator(1), low: 2, high: 3 }).toArray();
  assert.ok(u.every((v) => v >= 2 && v < 3));
});

Deno.test("size classes bound slack to 25%", () => {
  for (const n of [1, 255, 256, 257, 1000, 4096, 5000, 1 << 20, (1 << 20) + 1, 123456789]) {
    const c = sizeClass(n);
    assert.ok(c >= n && c % 256 === 0, `${n} → ${c}`);
    if (n > 256) assert.ok(c <= n * 1.25 + 256, `${n} → ${c}`);
  }
});

Deno.test("scale forward and backward", gpuTest, async () => {
  await setup();
  const x = tensor([1, -2, 3.5]);
  assertClose(await values(scale(x, 2, 1)), [3, -3, 8]);
  await gradCheck((a) => scale(a, -1.5, 0.25), [{ data: [0.3, -0.7, 2, 5, 1], shape: [5] }]);
});

Deno.test("reshape is a view and its gradient flows back", gpuTest, async () => {
  await setup();
  const x = tensor([1, 2, 3, 4, 5, 6], [2, 3], { requiresGrad: true });
  const y = reshape(x, [3, -1]);
  assert.deepEqual(y.shape, [3, 2]);
  assert.equal(y.storage, x.storage);
  const z = scale(y, 3);
  z.backward(ones([3, 2]));
  assert.deepEqual(x.grad!.shape, [2, 3]);
  assert.deepEqual(await values(x.grad!), [3, 3, 3, 3, 3, 3]);
  // a second backward accumulates into the existing .grad
  scale(reshape(x, [6]), 1).backward(ones([6]));
  assert.deepEqual(await values(x.grad!), [4, 4, 4, 4, 4, 4]);
});

Deno.test("the same tensor used twice gets both gradients", gpuTest, async () => {
  await setup();
  const x = tensor([1, 2], [2], { requiresGrad: true });
  const a = scale(x, 2);
  const b = scale(x, 5);
  // sum of the two via reshape/scale only: backward each branch with a seed
  a.backward(ones([2]));
  b.backward(ones([2]));
  assert.deepEqual(await values(x.grad!), [7, 7]);
});

Deno.test(
  "scope releases intermediates: 200 forward/backward steps keep live memory flat",
  gpuTest,
  async () => {
    await setup();
    const w = randn([64, 33], { requiresGrad: true, generator: new Generator(3) });
    const step = () =>
      scope(() => {
        const y = scale(reshape(scale(w, 1.5, 0.5), [33, 64]), 2);
        y.backward(ones([33, 64]));
      });
    step();
    const before = memoryStats();
    for (let i = 0; i < 200; i++) step();
    await w.grad!.toArray();
    const after = memoryStats();
    assert.equal(after.liveBytes, before.liveBytes);
    assert.equal(after.liveBuffers, before.liveBuffers);
    // scope returns survive
    const kept = scope(() => scale(w, 2));
    assert.ok(!kept.disposed);
    kept.dispose();
  },
);

Deno.test("a WGSL compile error throws a KernelError naming the kernel and line", gpuTest, async () => {
  await setup();
  const k = inlineKernel("broken_test.wgsl", "@compute @workgroup_size(1) fn main() { let x: i32 = 1.0; }");
  await assert.rejects(() => compileKernel(k), (e: unknown) => {
    assert.ok(e instanceof KernelError);
    assert.match(e.message, /broken_test\.wgsl/);
    assert.match(e.message, /line 1/);
    return true;
  });
});

Deno.test("a validation error surfaces at the next readback, naming the kernel", gpuTest, async () => {
  await setup();
  const src = `struct Params { n: u32 }
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> out: array<f32>;
@compute @workgroup_size(1) fn main() { out[0] = f32(p.n); }`;
  const k = inlineKernel("needs_override_test.wgsl", src);
  await compileKernel(k);
  const t = zeros([4]);
  // an override constant the shader does not declare is a pipeline validation error
  dispatch({
    kernel: k,
    constants: { NOPE: 1 },
    params: { n: 1 },
    buffers: [t.binding],
    workgroups: [1],
  });
  await assert.rejects(() => t.toArray(), (e: unknown) => {
    assert.ok(e instanceof KernelError, String(e));
    assert.match(e.message, /needs_override_test/);
    return true;
  });
  // the runtime keeps working afterwards
  assert.deepEqual(await values(full([2], 4)), [4, 4]);
});
