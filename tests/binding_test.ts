/** Binding planning (src/gpu/binding.ts): limits, test caps, aligned ranges, row steps and element ranges. */
import assert from "node:assert/strict";
import { gpu } from "../mod.ts";
import {
  alignedRange,
  alignedRowStep,
  BindingCap,
  bindingLimit,
  elementRange,
  exactRange,
  offsetAlignment,
  rangeElements,
  rowsPerBinding,
  splitRanges,
} from "../src/gpu/binding.ts";
import { gpuTest, setup } from "./util.ts";

Deno.test("bindingLimit and BindingCap: the device's limit, or a lower cap", gpuTest, async () => {
  await setup();
  const dev = gpu().info.limits.maxStorageBufferBindingSize;
  assert.equal(bindingLimit(), dev);
  assert.equal(bindingLimit(null), dev);
  assert.equal(bindingLimit(4096), 4096);
  assert.equal(bindingLimit(dev * 2), dev);
  const cap = new BindingCap("setTestLimit", 1024);
  assert.equal(cap.limit(), dev);
  cap.set(2048);
  assert.equal(cap.limit(), 2048);
  for (const bad of [1000, 2048.5, NaN]) {
    assert.throws(() => cap.set(bad), /^RangeError: setTestLimit: expected an integer ≥ 1024 or null, got/);
  }
  assert.equal(cap.limit(), 2048, "a rejected value leaves the cap as it was");
  cap.set(null);
  assert.equal(cap.limit(), dev);
});

Deno.test(
  "alignedRange binds from the aligned offset below the start; exactRange checks alignment",
  gpuTest,
  async () => {
    await setup();
    const A = offsetAlignment();
    const buffer = gpu().device.createBuffer({ size: 8 * A, usage: GPUBufferUsage.STORAGE });
    try {
      const r = alignedRange(buffer, 2 * A + 12, 3 * A + 40);
      assert.equal(r.binding.offset, 2 * A);
      assert.equal(r.elemOff, 3);
      assert.equal(r.bytes, A + 40);
      assert.equal(r.binding.size, A + 40);
      assert.equal(alignedRange(buffer, A, A + 4).binding.size, 16, "at least 16 bytes (vec4 reads)");
      assert.equal(alignedRange(buffer, A, A + 4, 4).binding.size, 4);
      assert.deepEqual(exactRange(buffer, 2 * A, 0), { buffer, offset: 2 * A, size: 4 });
      assert.throws(() => exactRange(buffer, A + 4, 8), /not aligned/);
      assert.deepEqual(elementRange({ buffer }, { start: A / 4, count: 5 }), { buffer, offset: A, size: 20 });
    } finally {
      buffer.destroy();
    }
  },
);

Deno.test(
  "row planning: rows per binding and the row step that keeps every band aligned",
  gpuTest,
  async () => {
    await setup();
    const A = offsetAlignment();
    // a binding may start up to one alignment before its first row
    assert.equal(rowsPerBinding(400, 8192), Math.floor((8192 - A) / 400));
    assert.equal(rowsPerBinding(8192, 8192), 0);
    // rows of 400 bytes: the fewest rows that are a multiple of A bytes (16 when A = 256)
    const step400 = alignedRowStep([400]);
    assert.equal((step400 * 400) % A, 0);
    for (let k = 1; k < step400; k++) assert.notEqual((k * 400) % A, 0);
    // several operands: a step aligned in each
    const step = alignedRowStep([400, 12, A]);
    for (const b of [400, 12, A]) assert.equal((step * b) % A, 0);
    assert.equal(alignedRowStep([A, 2 * A]), 1);
  },
);

Deno.test("element ranges: 16 KiB blocks (or alignments) that fit the limit", gpuTest, async () => {
  await setup();
  assert.equal(rangeElements({ maxBindingBytes: 1024 }), 256);
  assert.equal(rangeElements({ maxBindingBytes: 32768 + 100 }), 8192);
  assert.throws(
    () => rangeElements({ maxBindingBytes: 100 }),
    /maxBindingBytes 100 .*minStorageBufferOffsetAlignment/,
  );
  assert.deepEqual(splitRanges(10, 4), [{ start: 0, count: 4 }, { start: 4, count: 4 }, {
    start: 8,
    count: 2,
  }]);
  assert.deepEqual(splitRanges(0, 4), []);
});
