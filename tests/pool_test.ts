/**
 * The buffer pool's bounds: what it holds follows the work, not the history of shapes (reuse of nearby classes,
 * giving back the oldest free buffers on a miss, trimming buffers idle for a whole step), and a DPO run whose
 * batch lengths vary holds no more in its steps 11–20 than in its steps 3–10.
 */
import assert from "node:assert/strict";
import {
  DPOConfig,
  DPOTrainer,
  emptyCache,
  full,
  initModel,
  memoryStats,
  resetPeakMemory,
  sync,
  trimPool,
} from "../mod.ts";
import { flush } from "../src/gpu/queue.ts";
import { acquireBuffer, releaseBuffer, sizeClass } from "../src/gpu/pool.ts";
import { Generator } from "../src/tensor/random.ts";
import { empty } from "../src/tensor/tensor.ts";
import { charTokenizer, TINY_LLAMA } from "./trainer_helpers.ts";
import { gpuTest, setup } from "./util.ts";

Deno.test(
  "an acquire takes a free buffer of the next classes up rather than allocating",
  gpuTest,
  async () => {
    await setup();
    await sync();
    emptyCache();
    const big = acquireBuffer(sizeClass(100_000) + 1); // the class above 100 kB's
    releaseBuffer(big);
    const again = acquireBuffer(100_000);
    assert.equal(again, big, "the free buffer one class up is reused");
    releaseBuffer(again);
    // more than two classes up is too wasteful: a new buffer
    const far = acquireBuffer(40_000);
    assert.notEqual(far, big);
    releaseBuffer(far);
    emptyCache();
  },
);

Deno.test("a miss gives back the oldest free buffers: live + pooled bytes do not grow", gpuTest, async () => {
  await setup();
  await sync();
  emptyCache();
  // a "step" of one shape, then steps of others whose classes never match it
  const first = Array.from({ length: 8 }, () => empty([64 * 1024]));
  for (const t of first) t.dispose();
  const held = memoryStats().liveBytes + memoryStats().pooledBytes;
  for (const n of [90_001, 130_003, 170_005, 230_007]) {
    const ts = Array.from({ length: 8 }, () => empty([n / 4 | 0]));
    const m = memoryStats();
    // the new buffers replaced free ones: the total may exceed what was held by at most the last buffer's bytes
    assert.ok(
      m.liveBytes + m.pooledBytes <= Math.max(held, m.liveBytes) + sizeClass(n),
      `after allocating 8 × ${n} bytes: live ${m.liveBytes} + pooled ${m.pooledBytes}, held before ${held}`,
    );
    for (const t of ts) t.dispose();
  }
  await sync();
  emptyCache();
});

Deno.test(
  "reserved bytes count buffers given back until they are destroyed; a dispatch submits once 64 MiB wait",
  gpuTest,
  async () => {
    await setup();
    await sync();
    emptyCache();
    resetPeakMemory();
    const MiB = 2 ** 20;
    // 24 MiB of free buffers, then a miss of another class: they are given back but wait for a submission
    const small = Array.from({ length: 3 }, () => empty([2 * MiB]));
    for (const t of small) t.dispose();
    let m = memoryStats();
    assert.equal(m.reservedBytes, m.liveBytes + m.pooledBytes);
    const big = empty([5 * MiB]); // 20 MiB: a class no free buffer serves
    m = memoryStats();
    assert.equal(m.pooledBytes, 0, "the free buffers were given back on the miss");
    assert.equal(m.reservedBytes, m.liveBytes + 3 * 8 * MiB, "and stay reserved until destroyed");
    assert.ok(m.peakReservedBytes >= m.reservedBytes);
    flush();
    assert.equal(
      memoryStats().reservedBytes,
      memoryStats().liveBytes,
      "destroyed once the work is submitted",
    );
    big.dispose();
    // more than 64 MiB given back: the next dispatch submits by itself, without a flush() or readback
    const many = Array.from({ length: 9 }, () => empty([2 * MiB])); // 72 MiB
    for (const t of many) t.dispose();
    const other = empty([9 * MiB]); // a miss: 72 MiB given back
    assert.ok(memoryStats().reservedBytes >= memoryStats().liveBytes + 64 * MiB);
    const ones = full([4], 1);
    m = memoryStats();
    assert.equal(m.reservedBytes, m.liveBytes + m.pooledBytes, "the dispatch's submission destroyed them");
    for (const t of [other, ones]) t.dispose();
    await sync();
    emptyCache();
  },
);

Deno.test("trimPool gives back the buffers no acquire took since the previous trim", gpuTest, async () => {
  await setup();
  await sync();
  emptyCache();
  trimPool();
  const a = empty([50_000]);
  const b = empty([3_000]);
  a.dispose();
  b.dispose();
  trimPool(); // both were released in this period: kept
  assert.equal(memoryStats().pooledBuffers, 2);
  const b2 = empty([3_000]); // takes b back
  b2.dispose();
  trimPool(); // a stayed free for a whole period: given back; b was used
  const m = memoryStats();
  assert.equal(m.pooledBuffers, 1);
  assert.equal(m.pooledBytes, sizeClass(3_000 * 4));
  emptyCache();
});

Deno.test(
  "a DPO run over varying lengths holds no more in steps 11-20 than in steps 3-10",
  gpuTest,
  async () => {
    await setup();
    await sync();
    emptyCache();
    const tok = charTokenizer();
    const g = new Generator(5);
    const word = (n: number) => Array.from({ length: n }, () => "abcdefgh"[g.int(8)]).join("");
    // every batch a different length: prompts of 2-40 characters, answers of 1-20
    const rows = Array.from({ length: 40 }, () => ({
      prompt: word(2 + g.int(39)) + "?",
      chosen: word(1 + g.int(20)),
      rejected: word(1 + g.int(20)),
    }));
    const model = await initModel(TINY_LLAMA, { seed: 3 });
    const held: number[] = [];
    const trainer = new DPOTrainer({
      model,
      tokenizer: tok,
      trainDataset: rows,
      args: new DPOConfig({
        outputDir: "outputs/pool_test",
        perDeviceTrainBatchSize: 2,
        maxSteps: 20,
        maxLength: 64,
        maxPromptLength: 48,
        learningRate: 1e-3,
        loggingSteps: 100,
        disableTqdm: true,
        reportTo: ["none"],
        saveStrategy: "no",
      }),
      callbacks: [{
        onStepEnd: async () => {
          await sync();
          const m = memoryStats();
          held.push(m.liveBytes + m.pooledBytes);
        },
      }],
      log: () => {},
    });
    await trainer.train();
    trainer.dispose();
    model.dispose();
    // what a step holds follows its batch's lengths (±12% here); growth with the step count would show as the
    // later steps holding more than the earlier ones did at their most
    const early = Math.max(...held.slice(2, 10));
    const late = Math.max(...held.slice(10));
    assert.ok(
      late <= early * 1.1,
      `live + pooled bytes after each step: ${
        held.join(", ")
      } (most in steps 3–10: ${early}, in 11–20: ${late})`,
    );
    await sync();
    emptyCache();
  },
);
