import assert from "node:assert/strict";
import { DeviceLostError, gpu, init, NotInitializedError, tensor, WebGPUUnavailableError } from "../mod.ts";
import { gpuTest, values } from "./util.ts";

// These tests replace navigator.gpu and destroy the device, so they live in their own file (own process).

Deno.test("using tensors before init() says to call init()", () => {
  assert.throws(
    () => tensor([1]),
    (e: unknown) => e instanceof NotInitializedError && /await init\(\)/.test(e.message),
  );
});

Deno.test("no WebGPU adapter gives a typed error saying what to install", gpuTest, async () => {
  const g = navigator.gpu;
  const original = g.requestAdapter;
  g.requestAdapter = () => Promise.resolve(null);
  try {
    await assert.rejects(() => init(), (e: unknown) => {
      assert.ok(e instanceof WebGPUUnavailableError);
      assert.match(e.message, /mesa-vulkan-drivers/);
      return true;
    });
  } finally {
    g.requestAdapter = original;
  }
});

Deno.test(
  "a lost device gives DeviceLostError with the reason, and init() starts again",
  gpuTest,
  async () => {
    await init();
    const t = tensor([1, 2, 3]);
    gpu().device.destroy();
    // the loss is reported asynchronously; wait for it
    for (let i = 0; i < 100; i++) {
      try {
        gpu();
        await new Promise((r) => setTimeout(r, 10));
      } catch {
        break;
      }
    }
    assert.throws(
      () => tensor([1]),
      (e: unknown) => e instanceof DeviceLostError && /destroyed/.test(e.message),
    );
    await assert.rejects(() => t.toArray(), DeviceLostError);
    await init();
    assert.deepEqual(await values(tensor([4, 5])), [4, 5]);
  },
);

Deno.test(
  "a readback begun before the loss is reported gives DeviceLostError naming what was being read",
  gpuTest,
  async () => {
    await init();
    const t = tensor([[1, 2, 3], [4, 5, 6]]);
    const i = tensor(Int32Array.from([7, 8]));
    gpu().device.destroy();
    // no wait: the device's `lost` promise has not settled yet, and mapAsync fails first
    await assert.rejects(() => t.toArray(), (e: unknown) => {
      assert.ok(e instanceof DeviceLostError, `${(e as Error)?.name}: ${(e as Error)?.message}`);
      assert.match(e.message, /destroyed/);
      assert.match(e.message, /reading back a tensor of shape \[2, 3\] \(f32, 24 bytes\)/);
      assert.match(e.message, /await init\(\)/);
      return true;
    });
    // once the loss is known, a readback names what it was reading too
    await assert.rejects(
      () => i.toInt32Array(),
      (e: unknown) =>
        e instanceof DeviceLostError && /a tensor of shape \[2\] \(i32, 8 bytes\)/.test(e.message),
    );
    await init();
    assert.deepEqual(await values(tensor([4, 5])), [4, 5]);
  },
);
