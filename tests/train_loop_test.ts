/**
 * The training loop of src/train on its own: the step plan and data order (pure), a trainer written in one small
 * class over the loop (checkpoint and bit-for-bit resume come with it), and SFT's behaviour now that it runs on
 * the same loop as DPO (DPO's log line format and progress bar, the run summary, the one-step-late NaN check).
 */
import assert from "node:assert/strict";
import { noGrad } from "../src/autograd/grad_mode.ts";
import { crossEntropy } from "../src/autograd/ops/cross_entropy.ts";
import { shiftLabels } from "../src/autograd/ops/labels.ts";
import { reshape } from "../src/autograd/ops/reshape.ts";
import { init } from "../src/gpu/init.ts";
import type { CausalLM } from "../src/models/causal_lm.ts";
import { initModel } from "../src/models/init.ts";
import { SFTConfig, type SFTConfigInit } from "../src/sft/config.ts";
import { SFTTrainer, SFTTrainingError } from "../src/sft/trainer.ts";
import { Generator } from "../src/tensor/random.ts";
import { Tokenizer } from "../src/tokenizer/tokenizer.ts";
import type { TrainingArgs } from "../src/train/args.ts";
import { CHECKPOINT_FILES, missingCheckpointFiles } from "../src/train/checkpoint.ts";
import { meanRows } from "../src/train/metric_window.ts";
import type { MicroBatchOutput } from "../src/train/options.ts";
import { epochOrder, planSteps, positionAt, StepSampler } from "../src/train/plan.ts";
import type { ProgressStream } from "../src/train/progress.ts";
import { initialTrainerState, TrainingError } from "../src/train/state.ts";
import { Trainer } from "../src/train/trainer.ts";
import {
  tinyModelConfig,
  tinySpecialTokensMap,
  tinyTokenizerConfig,
  tinyTokenizerJson,
} from "../demo/tiny_chat.ts";
import { TINY_LLAMA } from "./trainer_helpers.ts";
import { gpuTest, setup } from "./util.ts";

/** The loop's options with nothing scheduled; `extra` overrides. */
function loopArgs(extra: Partial<TrainingArgs> = {}): TrainingArgs {
  return {
    outputDir: "unused",
    seed: 42,
    dataSeed: null,
    perDeviceTrainBatchSize: 1,
    perDeviceEvalBatchSize: 1,
    gradientAccumulationSteps: 1,
    learningRate: 1e-3,
    weightDecay: 0,
    adamBeta1: 0.9,
    adamBeta2: 0.999,
    adamEpsilon: 1e-8,
    maxGradNorm: 1,
    numTrainEpochs: 1,
    maxSteps: -1,
    lrSchedulerType: "constant",
    lrSchedulerKwargs: {},
    warmupRatio: 0,
    warmupSteps: 0,
    loggingSteps: 1,
    loggingFirstStep: false,
    disableTqdm: true,
    reportTo: ["none"],
    evalStrategy: "no",
    evalSteps: null,
    saveStrategy: "no",
    saveSteps: 500,
    saveTotalLimit: null,
    resumeFromCheckpoint: null,
    ...extra,
  };
}

Deno.test("an epoch uses every example once; its last step may take fewer micro-batches", () => {
  // 10 examples in micro-batches of 1, 4 per step: 4 + 4 + 2 (floor would train 8 and call it an epoch)
  const a = loopArgs({ gradientAccumulationSteps: 4, numTrainEpochs: 2 });
  const plan = planSteps(10, a);
  assert.deepEqual(
    { stepsPerEpoch: plan.stepsPerEpoch, maxSteps: plan.maxSteps, numTrainEpochs: plan.numTrainEpochs },
    { stepsPerEpoch: 3, maxSteps: 6, numTrainEpochs: 2 },
  );
  const sampler = new StepSampler({ epoch: 0, cursor: 0 }, 10, 42, 1, 4);
  const steps = Array.from({ length: plan.maxSteps }, () => sampler.next());
  assert.deepEqual(steps.map((s) => s.length), [4, 4, 2, 4, 4, 2]);
  for (const epoch of [0, 1]) {
    const seen = steps.slice(3 * epoch, 3 * epoch + 3).flat(2);
    assert.deepEqual(seen, epochOrder(42, epoch, 10), `epoch ${epoch} follows its seeded order`);
  }
  assert.notDeepEqual(epochOrder(42, 0, 10), epochOrder(42, 1, 10));
});

Deno.test("the data position after k steps is known without replaying them (what resume relies on)", () => {
  for (const [n, bs, gas] of [[10, 2, 2], [7, 3, 1], [9, 1, 4], [5, 8, 2]]) {
    const a = loopArgs({ perDeviceTrainBatchSize: bs, gradientAccumulationSteps: gas, maxSteps: 12 });
    const plan = planSteps(n, a);
    const walked = new StepSampler({ epoch: 0, cursor: 0 }, n, 3, bs, gas);
    for (let k = 1; k <= plan.maxSteps; k++) {
      const next = walked.next();
      const resumed = new StepSampler(positionAt(k - 1, plan, a), n, 3, bs, gas);
      assert.deepEqual(resumed.next(), next, `n ${n}, batch ${bs}, accumulation ${gas}: step ${k}`);
    }
  }
});

Deno.test("logging, evaluation and save intervals: steps, or a fraction of the run rounded up", () => {
  const plan = planSteps(100, loopArgs({ maxSteps: 30, loggingSteps: 0.1, saveSteps: 0.25, evalSteps: 7 }));
  assert.deepEqual([plan.loggingSteps, plan.saveSteps, plan.evalSteps], [3, 8, 7]);
  assert.equal(
    planSteps(100, loopArgs({ maxSteps: 30, loggingSteps: 0.1 })).evalSteps,
    3,
    "eval follows logging",
  );
});

// ----------------------------------------------------------------------------------------------------------------
// a trainer in one class

const LETTERS = "abcdefgh";

/** Language modelling of fixed-length letter strings under TINY_LLAMA's character ids (3 + position in CHARS). */
class LetterLmTrainer extends Trainer<number[]> {
  protected readonly metricSlots = ["loss"];

  constructor(model: CausalLM, args: TrainingArgs, rows: string[]) {
    super({
      model,
      tokenizer: {},
      trainingArgs: args,
      trainDataset: rows.map((text) => ({ text })),
      state: initialTrainerState(args.perDeviceTrainBatchSize),
      log: () => {},
      handleSignals: false,
    });
  }

  protected async prepare(forTraining: boolean): Promise<void> {
    await init();
    this.trainExamples ??= (await this.trainData.toArray()).map((r) =>
      [...String(r.text)].map((c) => 3 + LETTERS.indexOf(c))
    );
    if (forTraining) this.setUpModelForTraining(true, false);
  }

  protected computeLoss(examples: number[][]): MicroBatchOutput {
    const B = examples.length, T = examples[0].length;
    const ids = Int32Array.from(examples.flat());
    const h = this.model.hiddenStates({ data: ids, shape: [B, T] });
    const labels = shiftLabels(ids, [B, T], -100);
    const loss = crossEntropy(reshape(h, [B * T, h.shape[2]]), this.model.lmHeadWeight(), labels, {
      ignoreIndex: -100,
    });
    return { loss, packed: noGrad(() => reshape(loss, [1])).keep() };
  }

  protected logMetrics(rows: number[][]): Record<string, number> {
    return { loss: meanRows(rows, 1)[0] };
  }

  protected argsJson(): Record<string, unknown> {
    return { learning_rate: this.trainingArgs.learningRate };
  }
}

function letterRows(n: number, seed: number): string[] {
  const g = new Generator(seed);
  return Array.from({ length: n }, () => Array.from({ length: 6 }, () => LETTERS[g.int(4)]).join(""));
}

Deno.test(
  "a trainer written over the loop gets logs, checkpoints and a bit-for-bit resume",
  gpuTest,
  async () => {
    await setup();
    const root = await Deno.makeTempDir({ prefix: "webdpo-loop-" });
    const rows = letterRows(10, 5);
    const args = (outputDir: string, extra: Partial<TrainingArgs> = {}) =>
      loopArgs({
        outputDir,
        perDeviceTrainBatchSize: 2,
        gradientAccumulationSteps: 2,
        learningRate: 1e-2,
        maxSteps: 7,
        loggingSteps: 2,
        saveStrategy: "steps",
        saveSteps: 3,
        ...extra,
      });
    const run = async (a: TrainingArgs) => {
      const model = await initModel(TINY_LLAMA, { seed: 9 });
      const trainer = new LetterLmTrainer(model, a, rows);
      const out = await trainer.train();
      const weights = await Promise.all(model.parameters().map((p) => p.toArray()));
      trainer.optimizer!.dispose();
      model.dispose();
      return { out, history: trainer.state.logHistory, weights };
    };
    try {
      const full = await run(args(`${root}/full`));
      assert.equal(full.out.globalStep, 7);
      assert.deepEqual(full.history.map((e) => e.step), [2, 4, 6, 7]);
      assert.ok(full.history[3].loss < full.history[0].loss, "it learns");
      for (const k of [3, 6, 7]) {
        assert.deepEqual(await missingCheckpointFiles(`${root}/full/checkpoint-${k}`), [], `checkpoint-${k}`);
      }
      const state = JSON.parse(
        await Deno.readTextFile(`${root}/full/checkpoint-3/${CHECKPOINT_FILES.webdpo}`),
      );
      assert.deepEqual(state.metric_slots, ["loss"]);
      assert.equal(
        state.log_window.length,
        1,
        "step 3, the epoch's last, took one micro-batch; its log is at 4",
      );
      const resumed = await run(
        args(`${root}/resumed`, { resumeFromCheckpoint: `${root}/full/checkpoint-3` }),
      );
      assert.deepEqual(resumed.history, full.history);
      assert.equal(resumed.out.trainingLoss, full.out.trainingLoss);
      resumed.weights.forEach((w, i) => assert.deepEqual(w, full.weights[i], `parameter ${i}`));
    } finally {
      await Deno.remove(root, { recursive: true });
    }
  },
);

// ----------------------------------------------------------------------------------------------------------------
// SFT on the loop

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

/** A stand-in for stderr that records what is written; `tty` says whether it claims to be a terminal. */
function fakeStream(tty: boolean): ProgressStream & { text: () => string } {
  let text = "";
  return {
    isTerminal: () => tty,
    writeSync: (p: Uint8Array) => {
      text += new TextDecoder().decode(p);
      return p.length;
    },
    text: () => text,
  };
}

async function sft(extra: SFTConfigInit, tty: boolean) {
  const model = await initModel(TINY, { seed: 3 });
  const lines: string[] = [];
  const stream = fakeStream(tty);
  const trainer = new SFTTrainer({
    model,
    tokenizer: tok,
    trainDataset: conversations(8, 1),
    args: new SFTConfig({ perDeviceTrainBatchSize: 4, lrSchedulerType: "constant", ...extra }),
    log: (l) => lines.push(l),
    progressStream: stream,
  });
  return { model, trainer, lines, stream };
}

Deno.test(
  "SFT logs as DPO does: its number format, the run summary, the bar on a terminal",
  gpuTest,
  async () => {
    await setup();
    const plain = await sft({ learningRate: 5e-4, maxSteps: 2, loggingSteps: 1, disableTqdm: true }, false);
    const out = await plain.trainer.train();
    assert.equal(plain.lines.length, 3);
    // DPO's format: 4 significant decimals, exponents with 3 (SFT printed 5.0000e-4)
    assert.match(
      plain.lines[0],
      /^loss=\d\.\d{4} {2}grad_norm=\S+ {2}learning_rate=5\.000e-4 {2}num_tokens=\d+ {2}epoch=0\.5000 {2}step=1$/,
    );
    assert.match(
      plain.lines[2],
      /^train_runtime=\S+ {2}train_samples_per_second=\S+ .*train_loss=\S+ {2}epoch=1$/,
    );
    assert.equal(
      out.trainingLoss,
      (plain.trainer.state.logHistory[0].loss + plain.trainer.state.logHistory[1].loss) / 2,
    );
    assert.equal(out.interrupted, false);
    plain.trainer.dispose();
    plain.model.dispose();

    const bar = await sft({ maxSteps: 2, loggingSteps: 1 }, true);
    await bar.trainer.train();
    const text = bar.stream.text().replaceAll("\x1b", "<ESC>");
    assert.match(text, /\r<ESC>\[2Kloss=\S+ {2}grad_norm=.* {2}step=2\n[█░]{24} /, "log lines above the bar");
    assert.match(text, /[█░]{24} 2\/2 \[\d+:\d\d<\d+:\d\d, \d+\.\d\d it\/s\] loss=\S+/);
    assert.deepEqual(bar.lines, [], "on a terminal the lines go above the bar, not to the sink");
    bar.trainer.dispose();
    bar.model.dispose();
  },
);

Deno.test("SFT: a non-finite loss stops the run a step later, not at the next log", gpuTest, async () => {
  await setup();
  const r = await sft({
    learningRate: 1e30,
    maxGradNorm: 0,
    maxSteps: 20,
    loggingSteps: 20,
    disableTqdm: true,
  }, false);
  let steps = 0;
  r.trainer.callbacks.push({ onStepEnd: () => void steps++ });
  const e = await r.trainer.train().catch((e) => e);
  assert.ok(e instanceof SFTTrainingError && e instanceof TrainingError, String(e));
  assert.match(
    e.message,
    /^step \d+: (loss|grad_norm) is (NaN|Infinity); training stopped \(lower learningRate, check the data, or set maxGradNorm\)$/,
  );
  assert.ok(steps < 20, `stopped after ${steps} steps`);
  r.trainer.dispose();
  r.model.dispose();
});

Deno.test("SFT: requestStop saves a complete checkpoint and returns interrupted", gpuTest, async () => {
  await setup();
  const dir = await Deno.makeTempDir({ prefix: "webdpo-sft-stop-" });
  try {
    const r = await sft({ outputDir: dir, maxSteps: 4, loggingSteps: 3, disableTqdm: true }, false);
    r.trainer.callbacks.push({ onStepEnd: (s) => void (s.globalStep === 2 && r.trainer.requestStop()) });
    const out = await r.trainer.train();
    assert.equal(out.interrupted, true);
    assert.equal(out.checkpoint, `${dir}/checkpoint-2`);
    assert.deepEqual(await missingCheckpointFiles(out.checkpoint!), []);
    const args = JSON.parse(await Deno.readTextFile(`${dir}/checkpoint-2/${CHECKPOINT_FILES.args}`));
    assert.equal(args.assistant_only_loss, true);
    const state = JSON.parse(await Deno.readTextFile(`${dir}/checkpoint-2/${CHECKPOINT_FILES.webdpo}`));
    assert.deepEqual(state.metric_slots, ["loss", "tokens"]);
    r.trainer.dispose();
    r.model.dispose();
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
