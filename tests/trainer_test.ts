import assert from "node:assert/strict";
import { DPOConfig } from "../src/dpo/config.ts";
import { DPOTrainer, type TrainerState } from "../src/dpo/trainer.ts";
import { initModel } from "../src/models/init.ts";
import type { CausalLM } from "../src/models/causal_lm.ts";
import { noGrad, scope } from "../mod.ts";
import { charTokenizer, containsATask, TINY_GPT2, TINY_LLAMA } from "./trainer_helpers.ts";
import { gpuTest, setup } from "./util.ts";

const tok = charTokenizer();
const quiet = { log: (_: string) => {} };
const base = {
  outputDir: "/tmp/webdpo-test-out",
  maxLength: 32,
  maxPromptLength: 16,
  disableTqdm: true,
  lrSchedulerType: "constant" as const,
  // these tests are not about checkpoints or metric files (checkpoint_resume_test.ts, trainer_logging_test.ts)
  saveStrategy: "no" as const,
  reportTo: ["none" as const],
};

/** Fraction of pairs whose chosen completion the model finds more likely than the rejected one. */
async function preferenceAccuracy(
  model: CausalLM,
  rows: { prompt: string; chosen: string; rejected: string }[],
) {
  let right = 0;
  for (const r of rows) {
    const score = async (answer: string) => {
      const ids = [1, ...tok.encode(r.prompt + answer), 2];
      const start = 1 + tok.encode(r.prompt).length;
      const logits = await scope(() => noGrad(() => model.forward([ids]).toArray()));
      const V = model.config.vocabSize;
      let s = 0;
      for (let t = start; t < ids.length; t++) {
        const off = (t - 1) * V;
        let m = -Infinity;
        for (let v = 0; v < V; v++) m = Math.max(m, logits[off + v]);
        let z = 0;
        for (let v = 0; v < V; v++) z += Math.exp(logits[off + v] - m);
        s += logits[off + ids[t]] - m - Math.log(z);
      }
      return s;
    };
    if ((await score(r.chosen)) > (await score(r.rejected))) right++;
  }
  return right / rows.length;
}

Deno.test(
  "DPO learns a held-out preference: accuracy from chance to ≥ 0.9 in 60 steps",
  gpuTest,
  async () => {
    await setup();
    const model = await initModel(TINY_LLAMA, { seed: 1 });
    const heldOut = containsATask(64, 99);
    const before = await preferenceAccuracy(model, heldOut);
    const trainer = new DPOTrainer({
      model,
      tokenizer: tok,
      trainDataset: containsATask(256, 5),
      evalDataset: heldOut,
      args: new DPOConfig({
        ...base,
        learningRate: 3e-3,
        maxSteps: 60,
        perDeviceTrainBatchSize: 8,
        loggingSteps: 10,
      }),
      ...quiet,
    });
    const out = await trainer.train();
    const evalMetrics = await trainer.evaluate();
    const after = await preferenceAccuracy(model, heldOut);
    assert.ok(before > 0.2 && before < 0.8, `accuracy before training ${before} should be near chance`);
    assert.ok(after >= 0.9, `held-out preference accuracy after training ${after}`);
    assert.ok(evalMetrics["eval_rewards/accuracies"] >= 0.9, JSON.stringify(evalMetrics));
    assert.equal(out.globalStep, 60);
    const logs = trainer.state.logHistory.filter((l) => "loss" in l);
    assert.equal(logs.length, 6);
    assert.ok(logs[5].loss < logs[0].loss);
    for (
      const k of [
        "loss",
        "grad_norm",
        "learning_rate",
        "epoch",
        "rewards/chosen",
        "rewards/rejected",
        "rewards/accuracies",
        "rewards/margins",
        "logps/chosen",
        "logps/rejected",
        "logits/chosen",
        "logits/rejected",
      ]
    ) assert.ok(k in logs[0], `metric ${k} is logged`);
    trainer.dispose();
    model.dispose();
  },
);

Deno.test("GPT-2 trains too, with gradient accumulation and checkpointing", gpuTest, async () => {
  await setup();
  const model = await initModel(TINY_GPT2, { seed: 2 });
  const trainer = new DPOTrainer({
    model,
    tokenizer: tok,
    trainDataset: containsATask(64, 5),
    args: new DPOConfig({
      ...base,
      learningRate: 3e-3,
      maxSteps: 12,
      perDeviceTrainBatchSize: 4,
      gradientAccumulationSteps: 2,
      loggingSteps: 4,
      gradientCheckpointing: true,
    }),
    ...quiet,
  });
  await trainer.train();
  const logs = trainer.state.logHistory.filter((l) => "loss" in l);
  assert.equal(logs.length, 3);
  assert.ok(logs[2].loss < logs[0].loss, `loss ${logs[0].loss} → ${logs[2].loss}`);
  trainer.dispose();
  model.dispose();
});

Deno.test(
  "precomputed reference log-probs give the same losses as a frozen reference copy",
  gpuTest,
  async () => {
    await setup();
    const run = async (precompute: boolean) => {
      const model = await initModel(TINY_LLAMA, { seed: 3 });
      const trainer = new DPOTrainer({
        model,
        tokenizer: tok,
        trainDataset: containsATask(32, 8),
        args: new DPOConfig({
          ...base,
          learningRate: 1e-3,
          maxSteps: 4,
          perDeviceTrainBatchSize: 4,
          loggingSteps: 1,
          precomputeRefLogProbs: precompute,
        }),
        ...quiet,
      });
      await trainer.train();
      const hadRef = trainer.refModel !== null;
      trainer.dispose();
      model.dispose();
      return { losses: trainer.state.logHistory.map((l) => l.loss), hadRef };
    };
    const a = await run(false);
    const b = await run(true);
    assert.equal(a.hadRef, true);
    assert.equal(b.hadRef, false, "the reference copy is released after precomputing");
    for (let i = 0; i < a.losses.length; i++) assert.ok(Math.abs(a.losses[i] - b.losses[i]) < 1e-5);
  },
);

Deno.test("reference-free training, callbacks, TR-DPO sync and evaluation", gpuTest, async () => {
  await setup();
  const model = await initModel(TINY_LLAMA, { seed: 4 });
  const seen: string[] = [];
  const cb = {
    onTrainBegin: (s: TrainerState) => void seen.push(`begin:${s.maxSteps}`),
    onStepEnd: (s: TrainerState) => void seen.push(`step:${s.globalStep}`),
    onLog: (_s: TrainerState, l: Record<string, number>) => void seen.push(`log:${l.step}`),
    onEvaluate: (_s: TrainerState, m: Record<string, number>) =>
      void seen.push(`eval:${Object.keys(m).length}`),
    onTrainEnd: () => void seen.push("end"),
  };
  const free = new DPOTrainer({
    model,
    tokenizer: tok,
    trainDataset: containsATask(16, 1),
    evalDataset: containsATask(8, 2),
    callbacks: [cb],
    args: new DPOConfig({
      ...base,
      maxSteps: 2,
      perDeviceTrainBatchSize: 4,
      loggingSteps: 1,
      referenceFree: true,
      evalStrategy: "steps",
      evalSteps: 2,
    }),
    ...quiet,
  });
  await free.train();
  assert.equal(free.refModel, null);
  assert.deepEqual(seen, [
    "begin:2",
    "step:1",
    "log:1",
    "step:2",
    "log:2",
    `eval:${seen[5].split(":")[1]}`,
    "end",
  ]);
  assert.ok(Number(seen[5].split(":")[1]) >= 8);
  free.dispose();

  // TR-DPO: with sync every step and alpha 1 the reference equals the policy after each step
  const tr = new DPOTrainer({
    model,
    tokenizer: tok,
    trainDataset: containsATask(16, 1),
    args: new DPOConfig({
      ...base,
      learningRate: 1e-2,
      maxSteps: 2,
      perDeviceTrainBatchSize: 4,
      loggingSteps: 1,
      syncRefModel: true,
      refModelSyncSteps: 1,
      refModelMixupAlpha: 1,
    }),
    ...quiet,
  });
  await tr.train();
  const name = "model.layers.0.self_attn.q_proj.weight";
  assert.deepEqual(await tr.refModel!.param(name).toArray(), await model.param(name).toArray());
  tr.dispose();
  model.dispose();
});

Deno.test("bad trainer arguments fail with clear errors", gpuTest, async () => {
  await setup();
  const model = await initModel(TINY_LLAMA, { seed: 5 });
  const args = new DPOConfig({ ...base, maxSteps: 1 });
  const rows = containsATask(4, 1);
  assert.throws(
    () => new DPOTrainer({ model, refModel: model, args, trainDataset: rows, tokenizer: tok }),
    /itself/,
  );
  const bad = new DPOTrainer({
    model,
    args,
    trainDataset: [{ prompt: "ab?", chosen: "y" }],
    tokenizer: tok,
    ...quiet,
  });
  await assert.rejects(() => bad.train(), /row 0: the "rejected" column is missing/);
  const noEval = new DPOTrainer({ model, args, trainDataset: rows, tokenizer: tok, ...quiet });
  await assert.rejects(() => noEval.evaluate(), /no evalDataset/);
  noEval.dispose();
  model.dispose();
});
