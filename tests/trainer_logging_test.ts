/**
 * The trainer's outputs besides the weights: console lines, output_dir/metrics.jsonl, log_history, the progress bar
 * (on a terminal only, off with disable_tqdm), callbacks with the checkpoint folder, and generate_during_eval's
 * table and output_dir/generations.jsonl.
 */
import assert from "node:assert/strict";
import { DPOConfig, type DPOConfigInit } from "../src/dpo/config.ts";
import { Progress, type ProgressStream } from "../src/dpo/progress.ts";
import { DPOTrainer, type TrainerState } from "../src/dpo/trainer.ts";
import { generate } from "../src/models/generate.ts";
import { initModel } from "../src/models/init.ts";
import type { Tokenizer } from "../src/tokenizer/tokenizer.ts";
import { charTokenizer, containsATask, TINY_LLAMA } from "./trainer_helpers.ts";
import { gpuTest, setup } from "./util.ts";

const tok = charTokenizer();
const TRAIN = containsATask(16, 31);
const EVAL = containsATask(5, 32);

/** A stand-in for stderr that records what is written; `tty` says whether it claims to be a terminal. */
function fakeStream(tty: boolean): ProgressStream & { text: () => string } {
  const chunks: Uint8Array[] = [];
  return {
    isTerminal: () => tty,
    writeSync: (p: Uint8Array) => {
      chunks.push(p.slice());
      return p.length;
    },
    text: () => new TextDecoder().decode(new Uint8Array(chunks.flatMap((c) => [...c]))),
  };
}

function config(outputDir: string, extra: Partial<DPOConfigInit> = {}): DPOConfig {
  return new DPOConfig({
    outputDir,
    maxLength: 32,
    maxPromptLength: 16,
    perDeviceTrainBatchSize: 4,
    learningRate: 3e-3,
    lrSchedulerType: "constant",
    maxSteps: 4,
    loggingSteps: 2,
    saveSteps: 2,
    evalStrategy: "steps",
    evalSteps: 2,
    ...extra,
  }, { printWarnings: false });
}

async function withDir(prefix: string, f: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix });
  try {
    await f(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

async function readJsonl(path: string): Promise<Record<string, number | string | null>[]> {
  return (await Deno.readTextFile(path)).split("\n").filter(Boolean).map((l) => JSON.parse(l));
}

async function exists(path: string): Promise<boolean> {
  try {
    await Deno.stat(path);
    return true;
  } catch {
    return false;
  }
}

Deno.test(
  "logs go to the console, metrics.jsonl and log_history; callbacks get the checkpoint folder",
  gpuTest,
  async () => {
    await setup();
    await withDir("webdpo-logs-", async (dir) => {
      const model = await initModel(TINY_LLAMA, { seed: 12 });
      const lines: string[] = [];
      const seen: string[] = [];
      const stream = fakeStream(false);
      const trainer = new DPOTrainer({
        model,
        tokenizer: tok,
        trainDataset: TRAIN,
        evalDataset: EVAL,
        args: config(dir),
        log: (l) => lines.push(l),
        progressStream: stream,
        callbacks: [{
          onStepEnd: (s: TrainerState) => void seen.push(`step:${s.globalStep}`),
          onLog: (_s: TrainerState, l: Record<string, number>) => void seen.push(`log:${l.step}`),
          onEvaluate: (s: TrainerState) => void seen.push(`eval:${s.globalStep}`),
          onSave: (s: TrainerState, d: string) => void seen.push(`save:${s.globalStep}:${d}`),
          onTrainEnd: () => void seen.push("end"),
        }],
      });
      const out = await trainer.train();
      assert.deepEqual(seen, [
        "step:1",
        "step:2",
        "log:2",
        "eval:2",
        `save:2:${dir}/checkpoint-2`,
        "step:3",
        "step:4",
        "log:4",
        "eval:4",
        `save:4:${dir}/checkpoint-4`,
        "end",
      ]);
      assert.equal(out.interrupted, false);
      assert.equal(out.checkpoint, `${dir}/checkpoint-4`);
      assert.equal(stream.text(), "", "no progress bar when the stream is not a terminal");
      // metrics.jsonl: the train and eval entries of log_history, in order, then the run's summary
      const entries = await readJsonl(`${dir}/metrics.jsonl`);
      assert.equal(entries.length, 5);
      assert.deepEqual(entries.slice(0, 4), trainer.state.logHistory);
      assert.deepEqual(entries.slice(0, 4).map((e) => [e.step, "loss" in e, "eval_loss" in e]), [
        [2, true, false],
        [2, false, true],
        [4, true, false],
        [4, false, true],
      ]);
      const summary = entries[4];
      assert.equal(summary.step, 4);
      assert.equal(summary.train_loss, out.trainingLoss);
      assert.equal(out.trainingLoss, ((entries[0].loss as number) + (entries[2].loss as number)) / 2);
      assert.ok((summary.train_runtime as number) > 0 && (summary.train_steps_per_second as number) > 0);
      // the console: one plain line per log and evaluation, then the summary
      const logLines = lines.filter((l) => /\bstep=\d/.test(l));
      assert.equal(logLines.length, 4);
      assert.match(
        logLines[0],
        /^loss=0\.\d{4} {2}grad_norm=\S+ {2}learning_rate=0\.0030 .* {2}epoch=0\.5000 {2}step=2$/,
      );
      assert.match(logLines[1], /^eval_loss=\S+ .*eval_rewards\/accuracies=\S+ .* {2}step=2$/);
      assert.match(lines[lines.length - 1], /^train_runtime=\S+ .*train_loss=\S+ {2}epoch=1$/);
      trainer.dispose();

      // report_to none: no file, the console and log_history only
      await Deno.remove(`${dir}/metrics.jsonl`);
      const quiet = new DPOTrainer({
        model,
        tokenizer: tok,
        trainDataset: TRAIN,
        args: config(`${dir}/none`, { reportTo: ["none"], evalStrategy: "no", saveStrategy: "no" }),
        log: () => {},
      });
      await quiet.train();
      assert.equal(quiet.state.logHistory.length, 2);
      assert.ok(!(await exists(`${dir}/none`)), "nothing written to output_dir");
      quiet.dispose();
      model.dispose();
    });
  },
);

Deno.test("a progress bar on a terminal, log lines above it; none with disable_tqdm", gpuTest, async () => {
  await setup();
  await withDir("webdpo-bar-", async (dir) => {
    const model = await initModel(TINY_LLAMA, { seed: 13 });
    const train = async (disableTqdm: boolean) => {
      const lines: string[] = [];
      const stream = fakeStream(true);
      const trainer = new DPOTrainer({
        model,
        tokenizer: tok,
        trainDataset: TRAIN,
        args: config(dir, { disableTqdm, evalStrategy: "no", saveStrategy: "no", reportTo: ["none"] }),
        log: (l) => lines.push(l),
        progressStream: stream,
      });
      await trainer.train();
      trainer.dispose();
      return { lines, text: stream.text().replaceAll("\x1b", "<ESC>") };
    };
    const bar = await train(false);
    // the bar: redrawn in place, step/total, elapsed<ETA, it/s, the latest loss and accuracy
    assert.match(
      bar.text,
      /\r<ESC>\[2K[█░]{24} 4\/4 \[\d+:\d\d<\d+:\d\d, \d+\.\d\d it\/s\] loss=\S+ accuracies=\S+/,
    );
    // log lines go above the bar (on the terminal), not to the plain-line sink
    assert.match(bar.text, /\r<ESC>\[2Kloss=\S+ {2}grad_norm=.* {2}step=2\n[█░]{24} /);
    assert.ok(bar.text.endsWith("\n"), "the bar's line is ended");
    assert.deepEqual(bar.lines, []);
    const plain = await train(true);
    assert.equal(plain.text, "", "disable_tqdm: no bar");
    assert.equal(plain.lines.filter((l) => /\bstep=\d/.test(l)).length, 2);
    model.dispose();
  });
  // the bar alone
  const s = fakeStream(true);
  const p = new Progress(10, true, s, 4);
  p.update(10, { loss: 0.5, "rewards/accuracies": 0.75, "rewards/margins": 0.125 });
  assert.match(
    s.text(),
    /█{24} 10\/10 \[0:00<0:00, \d+\.\d\d it\/s\] loss=0\.5000 accuracies=0\.7500 margins=0\.1250$/,
  );
  assert.equal(p.log("a line"), true);
  assert.ok(s.text().endsWith("\r\x1b[2Ka line\n" + s.text().split("\n").pop()));
  assert.equal(new Progress(10, true, fakeStream(false)).log("x"), false, "no bar off a terminal");
  assert.equal(new Progress(10, false, fakeStream(true)).log("x"), false, "no bar with disable_tqdm");
});

Deno.test(
  "generate_during_eval: policy and reference samples in a table and generations.jsonl",
  gpuTest,
  async () => {
    await setup();
    await withDir("webdpo-gen-", async (dir) => {
      const model = await initModel(TINY_LLAMA, { seed: 14 });
      const lines: string[] = [];
      const trainer = new DPOTrainer({
        model,
        tokenizer: tok,
        trainDataset: TRAIN,
        evalDataset: EVAL,
        args: config(dir, { generateDuringEval: true, learningRate: 2e-2 }),
        log: (l) => lines.push(l),
      });
      await trainer.train();
      const rows = await readJsonl(`${dir}/generations.jsonl`);
      assert.equal(rows.length, 6, "3 prompts at each of the 2 evaluations");
      assert.deepEqual(rows.map((r) => r.step), [2, 2, 2, 4, 4, 4]);
      assert.deepEqual(
        rows.map((r) => r.prompt),
        [...EVAL.slice(0, 3), ...EVAL.slice(0, 3)].map((r) => r.prompt),
      );
      for (const r of rows) {
        assert.equal(typeof r.policy, "string");
        assert.equal(typeof r.reference, "string");
      }
      // the reference is frozen: the same samples at both evaluations
      assert.deepEqual(rows.slice(0, 3).map((r) => r.reference), rows.slice(3).map((r) => r.reference));
      // the samples are greedy completions of the prompts by the model at that step (the final one at step 4)
      const prompts = EVAL.slice(0, 3).map((r) => [1, ...tok.encode(r.prompt)]);
      const now = await generate(model, tok as unknown as Tokenizer, prompts, { maxNewTokens: 32 });
      assert.deepEqual(rows.slice(3).map((r) => r.policy), now.texts);
      assert.ok(rows.slice(3).some((r, i) => r.policy !== rows[i].reference), "training changed some sample");
      // the console table
      const at = lines.findIndex((l) => l.startsWith("generations at step 2"));
      assert.ok(at >= 0, lines.join("\n"));
      assert.match(lines[at + 1], /^\| prompt +\| policy +\| reference +\|$/);
      assert.match(lines[at + 2], /^\|-+\|-+\|-+\|$/);
      assert.ok(lines[at + 3].startsWith(`| ${EVAL[0].prompt} `));
      assert.equal(lines[at + 3].split("|").length, 5);
      trainer.dispose();

      // reference_free: no reference model, the reference column is empty
      const free = new DPOTrainer({
        model,
        tokenizer: tok,
        trainDataset: TRAIN,
        evalDataset: EVAL,
        args: config(`${dir}/free`, { generateDuringEval: true, referenceFree: true, maxSteps: 2 }),
        log: (l) => lines.push(l),
      });
      await free.train();
      const freeRows = await readJsonl(`${dir}/free/generations.jsonl`);
      assert.equal(freeRows.length, 3);
      assert.ok(freeRows.every((r) => r.reference === null && typeof r.policy === "string"));
      assert.ok(lines.some((l) => /^\| prompt +\| policy +\| reference \(no reference model\) \|$/.test(l)));
      free.dispose();

      // a tokenizer without decode() cannot show samples
      const noDecode = {
        ...tok,
        encode: tok.encode.bind(tok),
        applyChatTemplate: tok.applyChatTemplate.bind(tok),
      };
      assert.throws(
        () =>
          new DPOTrainer({
            model,
            tokenizer: noDecode,
            trainDataset: TRAIN,
            evalDataset: EVAL,
            args: config(dir, { generateDuringEval: true }),
          }),
        /generate_during_eval needs a tokenizer with decode/,
      );
      model.dispose();
    });
  },
);
