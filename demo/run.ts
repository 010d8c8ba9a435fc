/**
 * `deno task demo`: DPO changing a tiny chat model's behaviour, end to end, on whatever WebGPU adapter is present.
 *
 * 1. Prints the adapter and the plan.
 * 2. Measures the SFT model of examples/tiny-chat on the held-out questions: exact-answer accuracy of greedy
 *    generations and preference accuracy (log p(chosen) > log p(rejected)).
 * 3. Trains it with DPOTrainer (sigmoid loss plus RPO's NLL term on the chosen answers, the reference a frozen
 *    copy of the start) on the training pairs. Without the NLL term, some SFT models' chosen log-probabilities
 *    fall as DPO pushes the rejected ones down, and their greedy answers break (one went from 58% to 54%; with
 *    rpo_alpha 1, to 88%).
 * 4. Measures again, prints a before/after table and three held-out questions with both answers, and writes
 *    the output folder: the trained model, metrics.jsonl, trainer_state.json, training.svg and demo_results.json.
 *
 * Everything it reads ships in the repository; nothing is fetched at run time.
 */
import { loadDataset } from "../src/data/dataset.ts";
import { DPOConfig } from "../src/dpo/config.ts";
import { DPOTrainer } from "../src/dpo/trainer.ts";
import { hfTrainerState } from "../src/dpo/checkpoint.ts";
import { WebDPOError } from "../src/gpu/errors.ts";
import { init } from "../src/gpu/init.ts";
import { loadModel } from "../src/models/loader.ts";
import { plotTraining } from "../src/plot/training.ts";
import { loadTokenizer } from "../src/tokenizer/tokenizer.ts";
import { accuracy, type Answer, answerQuestions, preferenceAccuracy } from "./measure.ts";
import { parseQuestion, type PreferenceRow, type Question, questionText } from "./task.ts";
import { exists } from "../src/util/fs.ts";
import { type OptionSpec, parseCommandLine, UsageError } from "../src/cli/argv.ts";

/** A bad demo command line. */
export class DemoUsageError extends WebDPOError {}

export interface DemoOptions {
  /** DPO optimizer steps. */
  steps: number;
  /** The DPO loss (default sigmoid). */
  lossType: string;
  beta: number;
  learningRate: number;
  /** RPO: weight of the chosen answers' NLL added to the DPO loss (null: off). */
  rpoAlpha: number | null;
  /** Preference pairs per step. */
  batchSize: number;
  /** Where the trained model and logs go. */
  outputDir: string;
  /** The SFT model folder (with data/ holding the preference files). */
  modelDir: string;
  /** Use only the first N held-out questions (0 = all). */
  heldOut: number;
  seed: number;
}

/** The folder of the shipped tiny model (examples/tiny-chat), as a path. */
export const TINY_CHAT_DIR = new URL("../examples/tiny-chat", import.meta.url).pathname;

export const DEMO_DEFAULTS: DemoOptions = {
  steps: 300,
  lossType: "sigmoid",
  beta: 1,
  learningRate: 5e-4,
  rpoAlpha: 1,
  batchSize: 16,
  outputDir: "outputs/demo",
  modelDir: TINY_CHAT_DIR,
  heldOut: 0,
  seed: 42,
};

/** The --help text. */
export function demoUsage(d: DemoOptions = DEMO_DEFAULTS): string {
  return `deno task demo [options]

Fine-tunes the tiny chat model shipped in examples/tiny-chat (an SFT model that often gets short arithmetic
questions wrong) with DPO on preference pairs (chosen = the correct answer, rejected = the SFT model's own wrong
answer or one off by a little), and measures on held-out questions, before and after: the exact-answer accuracy
of greedy answers and the preference accuracy (log p(chosen) > log p(rejected)). Runs on any WebGPU adapter,
the CPU included.

options:
  --steps N          DPO optimizer steps (default ${d.steps})
  --loss_type NAME   DPO loss: sigmoid, ipo, hinge, robust, ... as in TRL (default ${d.lossType})
  --beta X           DPO beta (default ${d.beta})
  --lr X             learning rate, alias --learning_rate (default ${d.learningRate})
  --rpo_alpha X      add X × the chosen answers' NLL to the DPO loss (TRL's RPO; default ${
    d.rpoAlpha ?? "off"
  }; 0 turns it off)
  --batch_size N     preference pairs per step (default ${d.batchSize})
  --output_dir DIR   where the trained model, metrics.jsonl, trainer_state.json and training.svg go
                     (default ${d.outputDir})
  --model DIR        the SFT model folder, with data/dpo_train.jsonl and data/dpo_test.jsonl
                     (default examples/tiny-chat)
  --held_out N       measure on the first N held-out questions only (default all)
  --seed N           training seed (default ${d.seed})
  -h, --help         this help`;
}

/** The options, as the shared command-line parser takes them, and the DemoOptions field each one sets. */
const OPTIONS = {
  steps: { kind: "int" },
  loss_type: { kind: "string" },
  beta: { kind: "number" },
  lr: { kind: "number", aliases: ["learning_rate"] },
  rpo_alpha: { kind: "number" },
  batch_size: { kind: "int" },
  output_dir: { kind: "string" },
  model: { kind: "string" },
  held_out: { kind: "int" },
  seed: { kind: "int" },
} as const satisfies Record<string, OptionSpec>;

const FIELD: Record<keyof typeof OPTIONS, keyof DemoOptions> = {
  steps: "steps",
  loss_type: "lossType",
  beta: "beta",
  lr: "learningRate",
  rpo_alpha: "rpoAlpha",
  batch_size: "batchSize",
  output_dir: "outputDir",
  model: "modelDir",
  held_out: "heldOut",
  seed: "seed",
};

/** Parses the command line; null for --help. */
export function parseDemoArgs(argv: readonly string[]): DemoOptions | null {
  let line;
  try {
    line = parseCommandLine(argv, OPTIONS);
  } catch (e) {
    if (e instanceof UsageError) throw new DemoUsageError(`${e.message} (see --help)`);
    throw e;
  }
  if (line.help) return null;
  const o: DemoOptions = { ...DEMO_DEFAULTS };
  for (const [name, value] of Object.entries(line.values)) {
    (o as unknown as Record<string, unknown>)[FIELD[name as keyof typeof OPTIONS]] = value;
  }
  if (o.steps < 1) throw new DemoUsageError(`--steps must be ≥ 1, got ${o.steps}`);
  if (o.batchSize < 1) throw new DemoUsageError(`--batch_size must be ≥ 1, got ${o.batchSize}`);
  if (o.heldOut < 0) throw new DemoUsageError(`--held_out must be ≥ 0, got ${o.heldOut}`);
  if (o.rpoAlpha !== null && o.rpoAlpha < 0) {
    throw new DemoUsageError(`--rpo_alpha must be ≥ 0, got ${o.rpoAlpha}`);
  }
  return o;
}

/** One measurement of the model on the held-out set. */
export interface Measurement {
  /** Exact-answer accuracy of greedy generations. */
  exactAccuracy: number;
  /** The share of held-out pairs with log p(chosen) > log p(rejected). */
  preferenceAccuracy: number;
  answers: Answer[];
}

export interface DemoResult {
  adapter: string;
  before: Measurement;
  after: Measurement;
  /** The DPO log history (TRL's metric names). */
  logHistory: Record<string, number>[];
  /** Seconds: the whole run, and the DPO training alone. */
  seconds: number;
  trainSeconds: number;
  /** Files written to the output folder. */
  files: string[];
}

async function readRows(path: string): Promise<PreferenceRow[]> {
  return (await (await loadDataset(path)).toArray()) as unknown as PreferenceRow[];
}

function pct(x: number): string {
  return `${(100 * x).toFixed(1)}%`;
}

/** Runs the demo. `print` receives the report's lines (default console.log). */
export async function runDemo(
  options: Partial<DemoOptions> = {},
  { print = (l: string) => console.log(l) }: { print?: (line: string) => void } = {},
): Promise<DemoResult> {
  const o = { ...DEMO_DEFAULTS, ...options };
  const t0 = performance.now();
  const info = await init();
  const dir = o.modelDir.replace(/\/+$/, "");
  const trainPath = `${dir}/data/dpo_train.jsonl`, testPath = `${dir}/data/dpo_test.jsonl`;
  for (const p of [`${dir}/config.json`, trainPath, testPath]) {
    if (!(await exists(p))) {
      throw new DemoUsageError(
        `${p} is missing; regenerate the tiny model with \`deno task make-tiny-model\``,
      );
    }
  }
  let testRows = await readRows(testPath);
  const questions: Question[] = [];
  const seen = new Set<string>();
  for (const [i, r] of testRows.entries()) {
    const q = parseQuestion(r.prompt?.[0]?.content ?? "");
    if (!q) throw new DemoUsageError(`${testPath} row ${i}: the prompt is not a "What is a + b?" question`);
    if (!seen.has(questionText(q))) {
      seen.add(questionText(q));
      questions.push(q);
    }
  }
  const measured = o.heldOut > 0 ? questions.slice(0, o.heldOut) : questions;
  const keep = new Set(measured.map(questionText));
  testRows = testRows.filter((r) => keep.has(r.prompt[0].content));
  const model = await loadModel(dir);
  const tokenizer = await loadTokenizer(dir);
  const nParams = model.parameters().reduce((n, p) => n + p.size, 0);
  const trainCount = (await readRows(trainPath)).length;
  const c = model.config;

  print(`webdpo demo — DPO on a tiny chat model, end to end`);
  print(`adapter: ${info.adapterName}${info.isFallbackAdapter ? " (fallback/software adapter)" : ""}`);
  print(
    `model:   ${dir} — Llama, ${c.numLayers} layers, hidden ${c.hiddenSize}, ${
      (nParams / 1e6).toFixed(2)
    }M parameters, character-level tokenizer (${c.vocabSize} tokens); SFT-trained on noisy answers`,
  );
  print(`task:    short arithmetic questions ("${questionText(measured[0])}") answered in one sentence`);
  print(
    `plan:    measure on ${measured.length} held-out questions → DPO (${o.lossType} loss${
      o.rpoAlpha ? ` + ${o.rpoAlpha} × chosen NLL (RPO)` : ""
    }, beta ${o.beta}, ` +
      `lr ${o.learningRate}, ${o.steps} steps × ${o.batchSize} pairs from ${trainCount} training pairs, ` +
      `reference = frozen copy) → measure again`,
  );
  print("");

  const measure = async (): Promise<Measurement> => {
    const answers = await answerQuestions(model, tokenizer, measured);
    return {
      exactAccuracy: accuracy(answers),
      preferenceAccuracy: await preferenceAccuracy(model, tokenizer, testRows),
      answers,
    };
  };
  const before = await measure();
  print(
    `before DPO: exact-answer accuracy ${pct(before.exactAccuracy)}, preference accuracy ${
      pct(before.preferenceAccuracy)
    }`,
  );
  print("");

  // the trainer appends to these; start the output folder's logs afresh
  await Deno.mkdir(o.outputDir, { recursive: true });
  for (const f of ["metrics.jsonl", "trainer_state.json", "training.svg", "demo_results.json"]) {
    await Deno.remove(`${o.outputDir}/${f}`).catch(() => {});
  }
  const args = new DPOConfig({
    outputDir: o.outputDir,
    lossType: o.lossType as DPOConfig["lossType"],
    beta: o.beta,
    learningRate: o.learningRate,
    rpoAlpha: o.rpoAlpha || null,
    maxSteps: o.steps,
    perDeviceTrainBatchSize: o.batchSize,
    perDeviceEvalBatchSize: 32,
    lrSchedulerType: "constant",
    loggingSteps: Math.max(1, Math.round(o.steps / 10)),
    maxLength: 96,
    maxPromptLength: 64,
    seed: o.seed,
    saveStrategy: "no",
  });
  const trainer = new DPOTrainer({
    model,
    tokenizer,
    args,
    trainDataset: await loadDataset(trainPath),
    log: print,
  });
  const tTrain = performance.now();
  await trainer.train();
  const trainSeconds = (performance.now() - tTrain) / 1000;
  trainer.dispose();
  print("");

  const after = await measure();
  print(`DPO: ${o.steps} steps in ${trainSeconds.toFixed(1)} s`);
  print("");
  const rows: [string, string, string][] = [
    ["held-out", "before", "after"],
    ["exact-answer accuracy (greedy)", pct(before.exactAccuracy), pct(after.exactAccuracy)],
    ["preference accuracy", pct(before.preferenceAccuracy), pct(after.preferenceAccuracy)],
  ];
  const w0 = Math.max(...rows.map((r) => r[0].length)), w = 8;
  for (const [k, b, a] of rows) print(`  ${k.padEnd(w0)}  ${b.padStart(w)}  ${a.padStart(w)}`);
  print(`  (${measured.length} questions, ${testRows.length} preference pairs, none seen in training)`);
  print("");
  // three held-out questions: those DPO fixed first, then any
  const idx = measured.map((_, i) => i);
  const fixed = idx.filter((i) => !before.answers[i].correct && after.answers[i].correct);
  const shown = [...fixed, ...idx.filter((i) => !fixed.includes(i))].slice(0, 3);
  const mark = (a: Answer) => (a.correct ? "✓" : "✗");
  for (const i of shown) {
    print(`  Q: ${questionText(measured[i])}`);
    print(`     before: ${before.answers[i].text.padEnd(16)} ${mark(before.answers[i])}`);
    print(`     after:  ${after.answers[i].text.padEnd(16)} ${mark(after.answers[i])}`);
  }
  print("");

  await trainer.save(o.outputDir);
  const logHistory = trainer.state.logHistory;
  const out = o.outputDir.replace(/\/+$/, "");
  if (!(await exists(`${out}/metrics.jsonl`))) {
    await Deno.writeTextFile(
      `${out}/metrics.jsonl`,
      logHistory.map((e) => JSON.stringify(e)).join("\n") + "\n",
    );
  }
  if (!(await exists(`${out}/trainer_state.json`))) {
    await Deno.writeTextFile(
      `${out}/trainer_state.json`,
      JSON.stringify(hfTrainerState(trainer.state), null, 2) + "\n",
    );
  }
  await plotTraining(out);
  const seconds = (performance.now() - t0) / 1000;
  const strip = (m: Measurement) => ({
    exact_accuracy: m.exactAccuracy,
    preference_accuracy: m.preferenceAccuracy,
    answers: m.answers.map((a) => ({
      question: questionText(a.question),
      answer: a.text,
      correct: a.correct,
    })),
  });
  await Deno.writeTextFile(
    `${out}/demo_results.json`,
    JSON.stringify(
      {
        adapter: info.adapterName,
        options: o,
        seconds,
        train_seconds: trainSeconds,
        before: strip(before),
        after: strip(after),
      },
      null,
      2,
    ) + "\n",
  );
  const files: string[] = [];
  for await (const e of Deno.readDir(out)) if (e.isFile) files.push(e.name);
  files.sort();
  print(`wrote ${out}/: ${files.join(", ")}`);
  print(`total ${seconds.toFixed(1)} s`);
  model.dispose();
  return { adapter: info.adapterName, before, after, logHistory, seconds, trainSeconds, files };
}
