/** The trainer hands every lr_scheduler_kwargs entry to the schedule (num_cycles was validated, then dropped). */
import assert from "node:assert/strict";
import { DPOConfig, DPOTrainer, initModel } from "../mod.ts";
import { charTokenizer, containsATask, TINY_LLAMA } from "./trainer_helpers.ts";
import { gpuTest, setup } from "./util.ts";

Deno.test(
  "cosine with num_cycles 1 goes down and back up, as transformers' schedule does",
  gpuTest,
  async () => {
    await setup();
    const model = await initModel(TINY_LLAMA, { seed: 4 });
    const lrs: number[] = [];
    const trainer = new DPOTrainer({
      model,
      tokenizer: charTokenizer(),
      trainDataset: containsATask(8, 2),
      args: new DPOConfig({
        outputDir: "outputs/trainer_schedule_test",
        perDeviceTrainBatchSize: 2,
        maxSteps: 4,
        learningRate: 1e-3,
        lrSchedulerType: "cosine",
        lrSchedulerKwargs: { num_cycles: 1 },
        maxLength: 32,
        maxPromptLength: 16,
        loggingSteps: 1,
        disableTqdm: true,
        reportTo: ["none"],
        saveStrategy: "no",
      }),
      callbacks: [{
        onLog: (_s, logs) => void (logs.learning_rate !== undefined && lrs.push(logs.learning_rate)),
      }],
      log: () => {},
    });
    try {
      await trainer.train();
    } finally {
      trainer.dispose();
      model.dispose();
    }
    // lr · ½(1 + cos(2π · cycles · step / 4)) at steps 0..3; with the default 0.5 cycles step 2 would be 5e-4
    const want = [0, 1, 2, 3].map((s) => 1e-3 * 0.5 * (1 + Math.cos(2 * Math.PI * 1 * s / 4)));
    assert.equal(lrs.length, 4);
    lrs.forEach((lr, i) => assert.ok(Math.abs(lr - want[i]) < 1e-9, `step ${i + 1}: ${lr}, want ${want[i]}`));
  },
);
