/**
 * A training process for checkpoint_resume_test.ts: `deno run -A tests/train_interrupt_child.ts <output_dir>`
 * trains the tiny Llama for up to 10000 steps, printing one log line per step to stdout, until the test sends it
 * SIGINT. Then train() must return normally; the script prints `RESULT <json of the TrainOutput>` and exits 0.
 */
import { DPOConfig } from "../src/dpo/config.ts";
import { DPOTrainer } from "../src/dpo/trainer.ts";
import { initModel } from "../src/models/init.ts";
import { charTokenizer, containsATask, TINY_LLAMA } from "./trainer_helpers.ts";

const outputDir = Deno.args[0];
if (!outputDir) throw new Error("usage: train_interrupt_child.ts <output_dir>");
const model = await initModel(TINY_LLAMA, { seed: 11 });
const trainer = new DPOTrainer({
  model,
  tokenizer: charTokenizer(),
  trainDataset: containsATask(16, 4),
  args: new DPOConfig({
    outputDir,
    maxLength: 32,
    maxPromptLength: 16,
    perDeviceTrainBatchSize: 4,
    maxSteps: 10000,
    loggingSteps: 1,
    saveSteps: 5000,
    disableTqdm: true,
    lrSchedulerType: "constant",
  }, { printWarnings: false }),
  log: (line) => console.log(line),
});
const out = await trainer.train();
console.log(`RESULT ${JSON.stringify(out)}`);
trainer.dispose();
model.dispose();
