/**
 * The training arguments SFT gained with the shared config rows, on real runs of a tiny model: evaluation every
 * eval_steps, checkpoints every save_steps with metrics.jsonl and training_args.json, lr_scheduler_kwargs reaching
 * the schedule, and resume_from_checkpoint continuing the run bit for bit (num_tokens included); with the
 * defaults, an SFT run writes nothing to output_dir.
 */
import assert from "node:assert/strict";
import { initModel } from "../src/models/init.ts";
import { SFTConfig, type SFTConfigInit } from "../src/sft/config.ts";
import { SFTTrainer } from "../src/sft/trainer.ts";
import { Generator } from "../src/tensor/random.ts";
import { Tokenizer } from "../src/tokenizer/tokenizer.ts";
import { CHECKPOINT_FILES, missingCheckpointFiles } from "../src/train/checkpoint.ts";
import {
  tinyModelConfig,
  tinySpecialTokensMap,
  tinyTokenizerConfig,
  tinyTokenizerJson,
} from "../demo/tiny_chat.ts";
import { gpuTest, setup } from "./util.ts";

const tok = new Tokenizer(tinyTokenizerJson(), tinyTokenizerConfig(128), tinySpecialTokensMap());
const TINY = tinyModelConfig({
  hiddenSize: 32,
  intermediateSize: 64,
  numLayers: 2,
  numHeads: 4,
  numKvHeads: 2,
  maxPositions: 128,
  ropeTheta: 100,
});

function conversations(n: number, seed: number) {
  const g = new Generator(seed);
  return Array.from({ length: n }, () => {
    const c = "abcd"[g.int(4)];
    return {
      messages: [{ role: "user", content: `x${c}y` }, { role: "assistant", content: c.toUpperCase() }],
    };
  });
}

/** Trains a fresh tiny model with `args`; the log history, the weights and the token count. */
async function run(args: SFTConfigInit) {
  const model = await initModel(TINY, { seed: 3 });
  const trainer = new SFTTrainer({
    model,
    tokenizer: tok,
    trainDataset: conversations(10, 1),
    evalDataset: conversations(4, 2),
    args: new SFTConfig({ disableTqdm: true, ...args }, { printWarnings: false }),
    log: () => {},
  });
  try {
    const out = await trainer.train();
    const weights = await Promise.all(model.parameters().map((p) => p.toArray()));
    return { out, history: trainer.state.logHistory, weights, numTokens: trainer.state.numTokens };
  } finally {
    trainer.dispose();
    model.dispose();
  }
}

Deno.test(
  "SFT: eval_steps, save_steps, report_to and lr_scheduler_kwargs take effect; resume continues bit for bit",
  gpuTest,
  async () => {
    await setup();
    const root = await Deno.makeTempDir({ prefix: "webdpo-sft-args-" });
    const args: SFTConfigInit = {
      perDeviceTrainBatchSize: 2,
      perDeviceEvalBatchSize: 4,
      learningRate: 1e-2,
      maxSteps: 6,
      loggingSteps: 2,
      lrSchedulerType: "cosine_with_min_lr",
      lrSchedulerKwargs: { min_lr_rate: 0.5 },
      evalStrategy: "steps",
      evalSteps: 3,
      saveStrategy: "steps",
      saveSteps: 3,
      reportTo: ["jsonl"],
    };
    try {
      const full = await run({ ...args, outputDir: `${root}/full` });
      assert.equal(full.out.globalStep, 6);
      const evals = full.history.filter((e) => "eval_loss" in e);
      assert.deepEqual(evals.map((e) => e.step), [3, 6], "evaluated every eval_steps");
      const logs = full.history.filter((e) => "loss" in e && "learning_rate" in e);
      assert.deepEqual(logs.map((e) => e.step), [2, 4, 6]);
      // cosine_with_min_lr decays to min_lr_rate × learning_rate, not to 0: the kwargs reached the schedule
      for (const e of logs) {
        assert.ok(e.learning_rate >= 0.5e-2 && e.learning_rate <= 1e-2, `${e.learning_rate}`);
      }
      assert.ok(logs[2].learning_rate < 0.6e-2, "it decays");
      for (const k of [3, 6]) {
        assert.deepEqual(await missingCheckpointFiles(`${root}/full/checkpoint-${k}`), [], `checkpoint-${k}`);
      }
      const saved = JSON.parse(await Deno.readTextFile(`${root}/full/checkpoint-3/${CHECKPOINT_FILES.args}`));
      assert.deepEqual(
        saved,
        new SFTConfig({ disableTqdm: true, ...args, outputDir: `${root}/full` }, { printWarnings: false })
          .toSnakeCase(),
      );
      const state = JSON.parse(
        await Deno.readTextFile(`${root}/full/checkpoint-3/${CHECKPOINT_FILES.webdpo}`),
      );
      assert.ok(state.num_tokens > 0 && state.num_tokens < full.numTokens, `num_tokens ${state.num_tokens}`);
      const jsonl = (await Deno.readTextFile(`${root}/full/metrics.jsonl`)).trim().split("\n").map((l) =>
        JSON.parse(l)
      );
      assert.deepEqual(jsonl.filter((e) => "eval_loss" in e).map((e) => e.step), [3, 6]);

      const resumed = await run({
        ...args,
        outputDir: `${root}/resumed`,
        resumeFromCheckpoint: `${root}/full/checkpoint-3`,
      });
      assert.deepEqual(resumed.history, full.history);
      assert.equal(resumed.numTokens, full.numTokens, "num_tokens went on counting");
      assert.equal(resumed.out.trainingLoss, full.out.trainingLoss);
      resumed.weights.forEach((w, i) => assert.deepEqual(w, full.weights[i], `parameter ${i}`));

      // with the defaults: no checkpoint, no metrics.jsonl
      await run({ outputDir: `${root}/defaults`, maxSteps: 2, loggingSteps: 1 });
      const written = await Array.fromAsync(Deno.readDir(root), (e) => e.name);
      assert.deepEqual(written.sort(), ["full", "resumed"]);
    } finally {
      await Deno.remove(root, { recursive: true });
    }
  },
);
