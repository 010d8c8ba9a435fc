/**
 * The memory guard: a run whose estimated peak exceeds the free memory is refused before the reference copy or
 * any step is allocated, with the estimate and the remedies that would fit; a run that fits starts.
 */
import assert from "node:assert/strict";
import { DPOConfig, DPOTrainer, initModel, memoryStats, sync } from "../mod.ts";
import { parseConfig } from "../src/models/config.ts";
import {
  estimateDpoMemory,
  PROCESS_OVERHEAD,
  setAvailableMemoryOverride,
} from "../src/dpo/memory_estimate.ts";
import { charTokenizer, containsATask, TINY_LLAMA } from "./trainer_helpers.ts";
import { gpuTest, setup } from "./util.ts";

function config() {
  return new DPOConfig({
    outputDir: "outputs/memory_guard_test",
    perDeviceTrainBatchSize: 4,
    maxSteps: 1,
    maxLength: 64,
    maxPromptLength: 48,
    disableTqdm: true,
    reportTo: ["none"],
    saveStrategy: "no",
  });
}

function trainerFor(model: Awaited<ReturnType<typeof initModel>>, rows: ReturnType<typeof containsATask>) {
  return new DPOTrainer({
    model,
    tokenizer: charTokenizer(),
    trainDataset: rows,
    args: config(),
    log: () => {},
  });
}

Deno.test("the estimate adds up its parts and scales with rows, tokens and checkpointing", () => {
  const cfg = parseConfig({ ...TINY_LLAMA, num_hidden_layers: 4 });
  const base = {
    config: cfg,
    params: 10_000,
    trainable: 10_000,
    referenceCopy: true,
    rows: 4,
    tokens: 100,
    gradientCheckpointing: false,
  };
  const e = estimateDpoMemory(base);
  assert.equal(e.total, e.weights + e.reference + e.gradients + e.optimizer + e.activations);
  assert.deepEqual([e.weights, e.reference, e.gradients, e.optimizer], [40_000, 40_000, 40_000, 80_000]);
  const twice = estimateDpoMemory({ ...base, rows: 8 });
  assert.ok(Math.abs(twice.activations - 2 * e.activations) <= 2);
  assert.ok(estimateDpoMemory({ ...base, gradientCheckpointing: true }).activations < e.activations / 2);
  assert.equal(estimateDpoMemory({ ...base, referenceCopy: false }).reference, 0);
});

Deno.test("a run that does not fit is refused before anything large is allocated", gpuTest, async () => {
  await setup();
  const model = await initModel(TINY_LLAMA, { seed: 2 });
  const rows = containsATask(16, 1);
  try {
    await sync();
    const before = memoryStats().liveBytes;
    setAvailableMemoryOverride(64 * 1024); // far below this run's estimate
    const trainer = trainerFor(model, rows);
    let tokens = 0;
    await assert.rejects(() => trainer.train(), (e: unknown) => {
      assert.ok(e instanceof Error && e.name === "TrainingError", String(e));
      tokens = Number(/up to (\d+) tokens/.exec(e.message)?.[1]);
      assert.match(e.message, /needs about [\d.]+ GB at its peak \(weights/);
      assert.match(e.message, /for 8 rows of up to \d+ tokens/);
      assert.match(e.message, /WEBDPO_NO_MEMORY_CHECK=1/);
      return true;
    });
    assert.equal(trainer.refModel, null, "no reference copy was made");
    assert.equal(memoryStats().liveBytes, before, "nothing is left allocated");
    trainer.dispose();

    // between what LoRA needs and what full fine-tuning needs: refused, naming LoRA among what fits
    const params = model.parameters().reduce((n, p) => n + p.size, 0);
    const common = {
      config: model.config,
      params,
      rows: 8,
      tokens,
      gradientCheckpointing: false,
    };
    const full = estimateDpoMemory({ ...common, trainable: params, referenceCopy: true });
    const lora = estimateDpoMemory({ ...common, trainable: Math.ceil(params / 100), referenceCopy: false });
    assert.ok(lora.total < full.total);
    setAvailableMemoryOverride(Math.floor(((lora.total + full.total) / 2 - full.weights) * PROCESS_OVERHEAD));
    const second = trainerFor(model, rows);
    await assert.rejects(() => second.train(), /These would fit: LoRA/);
    second.dispose();

    // plenty free: the run starts and finishes
    setAvailableMemoryOverride(1e12);
    const third = trainerFor(model, rows);
    const out = await third.train();
    assert.equal(out.globalStep, 1);
    third.dispose();
  } finally {
    setAvailableMemoryOverride(null);
    model.dispose();
  }
});
