/**
 * A process that trains twice: after `trainer.dispose()` nothing the trainer allocated stays on the GPU (the
 * optimizer state it built, the reference copy, the metric packs), and a second trainer on the same model ends
 * where the first did.
 */
import assert from "node:assert/strict";
import { memoryStats } from "../src/gpu/pool.ts";
import { sync } from "../src/gpu/queue.ts";
import { DPOConfig } from "../src/dpo/config.ts";
import { DPOTrainer } from "../src/dpo/trainer.ts";
import { initModel } from "../src/models/init.ts";
import { AdamW } from "../src/optim/adamw.ts";
import { ropeInvFreqTensor } from "../src/autograd/ops/rope.ts";
import { charTokenizer, containsATask, TINY_LLAMA } from "./trainer_helpers.ts";
import { gpuTest, setup } from "./util.ts";

function config(options: Record<string, unknown>): DPOConfig {
  return new DPOConfig({
    outputDir: "/tmp/webdpo-dispose",
    maxLength: 32,
    maxPromptLength: 16,
    perDeviceTrainBatchSize: 2,
    maxSteps: 3,
    loggingSteps: 2, // the last step's pack is still in the logging window when the run ends
    disableTqdm: true,
    reportTo: ["none"],
    saveStrategy: "no",
    ...options,
  });
}

Deno.test("DPOTrainer.dispose releases what the run allocated, run after run", gpuTest, async () => {
  await setup();
  const model = await initModel(TINY_LLAMA, { seed: 4 });
  ropeInvFreqTensor(model.config); // the process-wide RoPE table the first forward uploads, kept by design
  await sync();
  const start = memoryStats().liveBytes;
  const paramBytes = model.parameters().reduce((s, t) => s + t.bytes, 0);
  for (
    const options of [{}, {}, { precomputeRefLogProbs: true }, {
      rpoAlpha: 0.5,
      lossType: ["sigmoid", "bco_pair"],
    }]
  ) {
    const t = new DPOTrainer({
      model,
      tokenizer: charTokenizer(),
      trainDataset: containsATask(6, 1),
      args: config(options),
      log: () => {},
    });
    await t.train();
    await sync();
    // the frozen reference copy and AdamW's two moments are live until dispose
    assert.ok(memoryStats().liveBytes - start >= 2 * paramBytes, JSON.stringify(options));
    t.dispose();
    await sync();
    assert.equal(
      memoryStats().liveBytes,
      start,
      `live bytes after dispose, options ${JSON.stringify(options)}`,
    );
  }
  model.dispose();
});

Deno.test("DPOTrainer.dispose leaves an optimizer passed by the caller alone", gpuTest, async () => {
  await setup();
  const model = await initModel(TINY_LLAMA, { seed: 5 });
  ropeInvFreqTensor(model.config);
  await sync();
  const start = memoryStats().liveBytes;
  const paramBytes = model.parameters().reduce((s, t) => s + t.bytes, 0);
  const opt = new AdamW(model.parameters(), { lr: 1e-3 });
  const t = new DPOTrainer({
    model,
    tokenizer: charTokenizer(),
    trainDataset: containsATask(4, 2),
    args: config({ maxSteps: 1 }),
    optimizers: [opt, null],
    log: () => {},
  });
  await t.train();
  t.dispose();
  await sync();
  // the reference copy is gone; the caller's AdamW still holds its two moments
  assert.ok(memoryStats().liveBytes - start >= 2 * paramBytes);
  opt.dispose();
  await sync();
  assert.equal(memoryStats().liveBytes, start);
  model.dispose();
});
