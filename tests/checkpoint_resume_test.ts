/**
 * Checkpoints and resume: a run stopped at step k and resumed continues bit for bit like the uninterrupted run;
 * checkpoints are Hugging Face folders written atomically, pruned by save_total_limit; a NaN leaves the last good
 * checkpoint; Ctrl-C (a real SIGINT, in a subprocess) saves and exits cleanly.
 */
import assert from "node:assert/strict";
import {
  CHECKPOINT_FILES,
  commitCheckpoint,
  latestCheckpoint,
  listCheckpoints,
  pruneCheckpoints,
  REQUIRED_CHECKPOINT_FILES,
  scanCheckpoints,
} from "../src/dpo/checkpoint.ts";
import { DPOConfig, type DPOConfigInit } from "../src/dpo/config.ts";
import { DPOTrainer, type TrainerState } from "../src/dpo/trainer.ts";
import { upload } from "../src/gpu/queue.ts";
import type { CausalLM } from "../src/models/causal_lm.ts";
import { initModel } from "../src/models/init.ts";
import { loadModel } from "../src/models/loader.ts";
import { readSafetensors, readSafetensorsHeader } from "../src/models/safetensors.ts";
import { charTokenizer, containsATask, TINY_LLAMA } from "./trainer_helpers.ts";
import { gpuTest, setup } from "./util.ts";

const tok = charTokenizer();
// 10 pairs in micro-batches of 2 with 2 accumulation steps: an epoch is 3 optimizer steps, the third with one
// micro-batch, so 8 steps cross two epoch boundaries and a partial accumulation
const ROWS = containsATask(10, 21);
const EVAL_ROWS = containsATask(4, 3);

function config(outputDir: string, extra: Partial<DPOConfigInit>): DPOConfig {
  return new DPOConfig({
    outputDir,
    maxLength: 32,
    maxPromptLength: 16,
    disableTqdm: true,
    perDeviceTrainBatchSize: 2,
    gradientAccumulationSteps: 2,
    learningRate: 5e-3,
    maxSteps: 8,
    lrSchedulerType: "linear",
    warmupSteps: 2,
    saveSteps: 4,
    loggingSteps: 1,
    ...extra,
  }, { printWarnings: false });
}

interface RunResult {
  out: Awaited<ReturnType<DPOTrainer["train"]>>;
  history: Record<string, number>[];
  weights: Map<string, Uint8Array>;
  lines: string[];
  saved: string[];
}

/** One training run on a fresh tiny Llama (always the same initial weights). */
async function run(
  dir: string,
  extra: Partial<DPOConfigInit>,
  opts: {
    stopAt?: number;
    via?: "requestStop" | "signal";
    eval?: boolean;
    onStepEnd?: (s: TrainerState) => void;
  } = {},
): Promise<RunResult> {
  const model = await initModel(TINY_LLAMA, { seed: 7 });
  const lines: string[] = [];
  const saved: string[] = [];
  const abort = new AbortController();
  const trainer: DPOTrainer = new DPOTrainer({
    model,
    tokenizer: tok,
    trainDataset: ROWS,
    evalDataset: opts.eval ? EVAL_ROWS : undefined,
    args: config(dir, extra),
    callbacks: [{
      onStepEnd: (s) => {
        opts.onStepEnd?.(s);
        if (s.globalStep !== opts.stopAt) return;
        if (opts.via === "signal") abort.abort();
        else trainer.requestStop();
      },
      onSave: (_s, d) => void saved.push(d),
    }],
    log: (l) => lines.push(l),
    stopSignal: abort.signal,
  });
  try {
    const out = await trainer.train();
    const weights = new Map<string, Uint8Array>();
    for (const [n, t] of model.namedParameters()) weights.set(n, new Uint8Array((await t.toArray()).buffer));
    return { out, history: trainer.state.logHistory, weights, lines, saved };
  } finally {
    trainer.dispose();
    model.dispose();
  }
}

async function bytes(path: string): Promise<Uint8Array> {
  return await Deno.readFile(path);
}

async function sameFiles(a: string, b: string, files: string[]): Promise<void> {
  for (const f of files) {
    assert.deepEqual(await bytes(`${b}/${f}`), await bytes(`${a}/${f}`), `${f} of ${b} and ${a} differ`);
  }
}

function trainLines(text: string): string[] {
  return text.split("\n").filter((l) => l && !l.includes("train_runtime"));
}

async function resumeCase(
  name: string,
  extra: Partial<DPOConfigInit>,
  stopAt: number,
  via: "requestStop" | "signal",
  files: string[],
  evaluate: boolean,
) {
  await setup();
  const root = await Deno.makeTempDir({ prefix: `webdpo-resume-${name}-` });
  try {
    const full = await run(`${root}/full`, extra, { eval: evaluate });
    const first = await run(`${root}/split`, extra, { stopAt, via, eval: evaluate });
    assert.equal(first.out.interrupted, true);
    assert.equal(first.out.globalStep, stopAt);
    assert.equal(first.out.checkpoint, `${root}/split/checkpoint-${stopAt}`);
    assert.deepEqual(first.saved, [...new Set([4, stopAt])].map((k) => `${root}/split/checkpoint-${k}`));
    assert.ok(
      first.lines.some((l) => l.includes(`--resume_from_checkpoint ${root}/split/checkpoint-${stopAt}`)),
      `a line says how to resume:\n${first.lines.join("\n")}`,
    );
    const second = await run(`${root}/split`, { ...extra, resumeFromCheckpoint: true }, { eval: evaluate });
    assert.equal(second.out.interrupted, false);
    assert.equal(second.out.globalStep, 8);
    assert.ok(
      second.lines.some((l) =>
        l.includes(`resuming from ${root}/split/checkpoint-${stopAt} at step ${stopAt}`)
      ),
    );
    // every logged value (losses, grad norms, learning rates, rewards, eval metrics) and the run's mean loss
    assert.ok(full.history.filter((e) => "loss" in e).length >= 3);
    assert.deepEqual(second.history, full.history);
    assert.equal(second.out.trainingLoss, full.out.trainingLoss);
    // every parameter bit for bit
    assert.deepEqual([...second.weights.keys()], [...full.weights.keys()]);
    for (const [n, w] of full.weights) assert.deepEqual(second.weights.get(n), w, `parameter ${n}`);
    // the final checkpoints agree byte for byte, and so do the metrics files (but for the run time line)
    await sameFiles(`${root}/full/checkpoint-8`, `${root}/split/checkpoint-8`, files);
    const fullMetrics = await Deno.readTextFile(`${root}/full/metrics.jsonl`);
    const splitMetrics = await Deno.readTextFile(`${root}/split/metrics.jsonl`);
    assert.deepEqual(trainLines(splitMetrics), trainLines(fullMetrics));
    return { root, full, first, second };
  } catch (e) {
    await Deno.remove(root, { recursive: true });
    throw e;
  }
}

Deno.test(
  "bco_pair, accumulation 2, warmup + linear: 8 steps = 4 steps + interrupt + resume 4, bit for bit",
  gpuTest,
  async () => {
    const files = [
      CHECKPOINT_FILES.model,
      CHECKPOINT_FILES.optimizer,
      CHECKPOINT_FILES.bco,
      CHECKPOINT_FILES.scheduler,
      CHECKPOINT_FILES.rng,
      CHECKPOINT_FILES.trainerState,
    ];
    // logging every 3 steps: the log window (steps 4-6) spans the interruption
    const { root } = await resumeCase(
      "bco",
      { lossType: "bco_pair", loggingSteps: 3 },
      4,
      "requestStop",
      files,
      false,
    );
    try {
      // both runs wrote the same step-4 checkpoint: one at save_steps, one at the interrupt
      await sameFiles(`${root}/full/checkpoint-4`, `${root}/split/checkpoint-4`, files);
      const bco = JSON.parse(await Deno.readTextFile(`${root}/split/checkpoint-8/${CHECKPOINT_FILES.bco}`));
      assert.equal(bco.count, 14, "14 micro-batches updated the running mean (steps 3 and 6 have one)");
      assert.ok(Number.isFinite(bco.mean) && bco.mean !== 0);
    } finally {
      await Deno.remove(root, { recursive: true });
    }
  },
);

Deno.test(
  "sigmoid with TR-DPO sync and evaluation: stopped by an AbortSignal at step 5 and resumed, bit for bit",
  gpuTest,
  async () => {
    const extra: Partial<DPOConfigInit> = {
      lossType: "sigmoid",
      syncRefModel: true,
      refModelSyncSteps: 3,
      refModelMixupAlpha: 0.5,
      evalStrategy: "steps",
      evalSteps: 2,
    };
    const files = [
      CHECKPOINT_FILES.model,
      CHECKPOINT_FILES.optimizer,
      CHECKPOINT_FILES.ref,
      CHECKPOINT_FILES.rng,
    ];
    const { root, full } = await resumeCase("sync", extra, 5, "signal", files, true);
    try {
      assert.equal(full.history.filter((e) => "loss" in e).length, 8, "a loss at every step");
      assert.equal(full.history.filter((e) => "eval_loss" in e).length, 4);
      // the reference weights are saved once sync_ref_model has changed them (step 3 onwards)
      assert.ok(await exists(`${root}/split/checkpoint-5/${CHECKPOINT_FILES.ref}`));
      assert.ok(await exists(`${root}/full/checkpoint-4/${CHECKPOINT_FILES.ref}`));
      const state = JSON.parse(
        await Deno.readTextFile(`${root}/split/checkpoint-8/${CHECKPOINT_FILES.trainerState}`),
      );
      const evals = full.history.filter((e) => "eval_loss" in e);
      const best = Math.min(...evals.map((e) => e.eval_loss));
      assert.equal(state.best_metric, best);
      assert.deepEqual(state.log_history, full.history);
      // best_model_checkpoint: the checkpoint saved at the step of the best evaluation so far, as Hugging Face
      // keeps it (the split run saved 4, 5 and 8; evaluations at 2, 4, 6, 8)
      let bestSoFar = Infinity, expected: string | null = null;
      for (const e of evals) {
        if (e.eval_loss < bestSoFar) {
          bestSoFar = e.eval_loss;
          if (e.step % 4 === 0) expected = `${root}/split/checkpoint-${e.step}`;
        }
      }
      assert.equal(state.best_model_checkpoint, expected);
    } finally {
      await Deno.remove(root, { recursive: true });
    }
  },
);

async function exists(path: string): Promise<boolean> {
  try {
    await Deno.stat(path);
    return true;
  } catch {
    return false;
  }
}

Deno.test(
  "a checkpoint is a Hugging Face model folder plus the resume state; save_total_limit prunes",
  gpuTest,
  async () => {
    await setup();
    const dir = await Deno.makeTempDir({ prefix: "webdpo-ckpt-" });
    try {
      const model = await initModel(TINY_LLAMA, { seed: 8 });
      const saved: string[] = [];
      const args = config(dir, {
        maxSteps: 6,
        saveSteps: 2,
        saveTotalLimit: 1,
        evalStrategy: "steps",
        evalSteps: 2,
      });
      const trainer = new DPOTrainer({
        model,
        tokenizer: tok,
        trainDataset: ROWS,
        evalDataset: EVAL_ROWS,
        args,
        callbacks: [{ onSave: (s, d) => void saved.push(`${s.globalStep}:${d}`) }],
        log: () => {},
      });
      await trainer.train();
      assert.deepEqual(saved, [2, 4, 6].map((s) => `${s}:${dir}/checkpoint-${s}`));
      const ck = `${dir}/checkpoint-6`;
      const state = JSON.parse(await Deno.readTextFile(`${ck}/${CHECKPOINT_FILES.trainerState}`));
      // save_total_limit 1 keeps the newest, and the best checkpoint as Hugging Face does
      const left = (await listCheckpoints(dir)).map((c) => c.path);
      const expected = [...new Set([state.best_model_checkpoint, ck].filter(Boolean))].sort();
      assert.deepEqual(left.sort(), expected);
      // trainer_state.json: Hugging Face's layout, sorted keys
      assert.deepEqual(Object.keys(state), [...Object.keys(state)].sort());
      for (
        const k of [
          "best_metric",
          "best_model_checkpoint",
          "epoch",
          "eval_steps",
          "global_step",
          "log_history",
          "logging_steps",
          "max_steps",
          "num_train_epochs",
          "save_steps",
          "train_batch_size",
        ]
      ) assert.ok(k in state, `trainer_state.json has ${k}`);
      assert.equal(state.global_step, 6);
      assert.equal(state.epoch, 2);
      assert.equal(state.max_steps, 6);
      assert.equal(state.save_steps, 2);
      assert.equal(state.train_batch_size, 2);
      assert.equal(state.log_history.length, 6 + 3);
      for (const e of state.log_history) assert.equal(typeof e.step, "number");
      assert.deepEqual(state.log_history, trainer.state.logHistory);
      const evalLosses = state.log_history.filter((e: Record<string, number>) => "eval_loss" in e);
      assert.equal(
        state.best_metric,
        Math.min(...evalLosses.map((e: Record<string, number>) => e.eval_loss)),
      );
      // training_args.json: the config in snake_case
      assert.deepEqual(
        JSON.parse(await Deno.readTextFile(`${ck}/${CHECKPOINT_FILES.args}`)),
        args.toSnakeCase(),
      );
      // the model folder loads, with the trained weights
      const loaded = await loadModel(ck);
      for (const [n, t] of model.namedParameters()) {
        assert.deepEqual(await loaded.param(n).toArray(), await t.toArray(), n);
      }
      loaded.dispose();
      // optimizer.safetensors: exp_avg and exp_avg_sq under each parameter's name, and the step
      const opt = await readSafetensors(`${ck}/${CHECKPOINT_FILES.optimizer}`);
      const header = await readSafetensorsHeader(`${ck}/${CHECKPOINT_FILES.optimizer}`);
      assert.equal(header.metadata.step, "6");
      for (const e of trainer.optimizer!.state().params) {
        assert.deepEqual(opt.get(`${e.name}.exp_avg`)!.data, await e.expAvg.toArray());
        assert.deepEqual(opt.get(`${e.name}.exp_avg_sq`)!.data, await e.expAvgSq.toArray());
      }
      assert.equal(opt.size, 2 * model.parameters().length);
      const sched = JSON.parse(await Deno.readTextFile(`${ck}/${CHECKPOINT_FILES.scheduler}`));
      assert.equal(sched.step_count, 6);
      const rng = JSON.parse(await Deno.readTextFile(`${ck}/${CHECKPOINT_FILES.rng}`));
      assert.deepEqual([rng.epoch, rng.examples_seen_in_epoch, rng.num_train_examples, rng.shuffle_seed], [
        1,
        10,
        10,
        42,
      ]);
      assert.ok(!(await exists(`${ck}/${CHECKPOINT_FILES.bco}`)), "no bco state without bco_pair");
      assert.ok(
        !(await exists(`${ck}/${CHECKPOINT_FILES.ref}`)),
        "no reference weights without sync_ref_model",
      );
      trainer.dispose();
      model.dispose();
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
);

/** Writes every required file (placeholder contents) into a checkpoint folder being written. */
async function dummyCheckpoint(dir: string, tag: string): Promise<void> {
  for (const f of REQUIRED_CHECKPOINT_FILES) await Deno.writeTextFile(`${dir}/${f}`, tag);
}

Deno.test("checkpoint writes are atomic; resume skips incomplete and temporary folders", async () => {
  const dir = await Deno.makeTempDir({ prefix: "webdpo-atomic-" });
  try {
    const ck3 = await commitCheckpoint(dir, 3, (d) => dummyCheckpoint(d, "first"));
    assert.equal(ck3, `${dir}/checkpoint-3`);
    // a save that fails half way leaves the old checkpoint as it was and no folder behind
    await assert.rejects(
      () =>
        commitCheckpoint(dir, 3, async (d) => {
          await Deno.writeTextFile(`${d}/${CHECKPOINT_FILES.model}`, "half");
          throw new Error("disk full");
        }),
      /disk full/,
    );
    await assert.rejects(
      () => commitCheckpoint(dir, 5, (d) => Deno.writeTextFile(`${d}/config.json`, "{}")),
      /did not write/,
    );
    const names = [];
    for await (const e of Deno.readDir(dir)) names.push(e.name);
    assert.deepEqual(names, ["checkpoint-3"]);
    assert.equal(await Deno.readTextFile(`${ck3}/${CHECKPOINT_FILES.model}`), "first");
    // a later save of the same step replaces it whole
    await commitCheckpoint(dir, 3, (d) => dummyCheckpoint(d, "second"));
    assert.equal(await Deno.readTextFile(`${ck3}/${CHECKPOINT_FILES.model}`), "second");
    // what a killed save leaves (a temporary folder), and a checkpoint-like folder that is not whole
    await Deno.mkdir(`${dir}/.checkpoint-9.tmp-abc123`);
    await dummyCheckpoint(`${dir}/.checkpoint-9.tmp-abc123`, "tmp");
    await Deno.mkdir(`${dir}/checkpoint-7`);
    await Deno.writeTextFile(`${dir}/checkpoint-7/${CHECKPOINT_FILES.model}`, "partial");
    assert.equal(await latestCheckpoint(dir), ck3);
    const scan = await scanCheckpoints(dir);
    assert.deepEqual(scan.incomplete.map((c) => c.step), [7]);
    assert.ok(scan.incomplete[0].missing.includes(CHECKPOINT_FILES.trainerState));
    // save_total_limit's pruning keeps the protected (best) checkpoint
    for (const s of [5, 11, 13]) await commitCheckpoint(dir, s, (d) => dummyCheckpoint(d, String(s)));
    const deleted = await pruneCheckpoints(dir, 2, [`${dir}/checkpoint-3`]);
    assert.deepEqual(deleted, [`${dir}/checkpoint-5`, `${dir}/checkpoint-11`]);
    assert.deepEqual((await listCheckpoints(dir)).map((c) => c.step), [3, 13]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test(
  "resume_from_checkpoint: true takes the latest complete checkpoint, skipping broken ones",
  gpuTest,
  async () => {
    await setup();
    const dir = await Deno.makeTempDir({ prefix: "webdpo-skip-" });
    try {
      await run(dir, { maxSteps: 4, saveSteps: 2, lrSchedulerType: "constant" });
      await Deno.mkdir(`${dir}/checkpoint-6`); // a folder that looks like a checkpoint but is not whole
      await Deno.writeTextFile(`${dir}/checkpoint-6/config.json`, "{}");
      await Deno.mkdir(`${dir}/.checkpoint-8.tmp-x1`); // what a kill during a save leaves
      const r = await run(dir, {
        maxSteps: 6,
        saveSteps: 2,
        lrSchedulerType: "constant",
        resumeFromCheckpoint: true,
      });
      assert.ok(
        r.lines.some((l) => l.includes(`resuming from ${dir}/checkpoint-4 at step 4`)),
        r.lines.join("\n"),
      );
      assert.ok(r.lines.some((l) => l.includes(`skipping ${dir}/checkpoint-6: incomplete`)));
      assert.equal(r.out.globalStep, 6);
      assert.ok(!(await exists(`${dir}/.checkpoint-8.tmp-x1`)), "the leftover temporary folder is removed");
      assert.ok(
        await exists(`${dir}/checkpoint-6/${CHECKPOINT_FILES.trainerState}`),
        "checkpoint-6 is written whole",
      );
      // errors a user can cause
      await assert.rejects(
        () => run(`${dir}/empty`, { resumeFromCheckpoint: true }),
        /holds no complete checkpoint/,
      );
      await assert.rejects(
        () => run(dir, { resumeFromCheckpoint: `${dir}/checkpoint-99` }),
        /not a complete checkpoint/,
      );
      await assert.rejects(
        () => run(`${dir}/x`, { resumeFromCheckpoint: dir }),
        /is an output folder, not a checkpoint/,
      );
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
);

/** Fills one parameter of the model with NaN (a spoiled update). */
function poison(model: CausalLM): void {
  const p = model.param("model.layers.1.mlp.up_proj.weight");
  upload(p.storage.buffer, new Float32Array(p.size).fill(NaN));
}

Deno.test(
  "a NaN stops training with the step and the metric, and leaves the last good checkpoint",
  gpuTest,
  async () => {
    await setup();
    const dir = await Deno.makeTempDir({ prefix: "webdpo-nan-" });
    try {
      const train = async (sub: string, at: number, extra: Partial<DPOConfigInit>) => {
        const model = await initModel(TINY_LLAMA, { seed: 7 });
        const trainer = new DPOTrainer({
          model,
          tokenizer: tok,
          trainDataset: ROWS,
          args: config(`${dir}/${sub}`, { saveSteps: 2, ...extra }),
          callbacks: [{ onStepEnd: (s) => void (s.globalStep === at && poison(model)) }],
          log: () => {},
        });
        try {
          await trainer.train();
        } finally {
          trainer.dispose();
          model.dispose();
        }
      };
      // weights spoiled after step 3: step 4's loss is NaN (logged every step)
      await assert.rejects(
        () => train("a", 3, {}),
        (e: Error) => /step 4: loss is NaN/.test(e.message) && e.message.includes(`${dir}/a/checkpoint-2`),
      );
      // not logged at step 4: the check before saving catches it (the loss or the gradient norm)
      await assert.rejects(() => train("b", 3, { loggingSteps: 100 }), /step 4: (loss|grad_norm) is NaN/);
      // weights spoiled right before a save: that checkpoint is refused
      await assert.rejects(
        () => train("c", 4, {}),
        /step 4: the weights hold non-finite values \(model\.layers\.1\.mlp/,
      );
      for (const sub of ["a", "b", "c"]) {
        const names = [];
        for await (const e of Deno.readDir(`${dir}/${sub}`)) if (e.isDirectory) names.push(e.name);
        assert.deepEqual(
          names,
          ["checkpoint-2"],
          `${sub}: only the last good checkpoint, no temporary folder`,
        );
      }
      // and that checkpoint resumes
      const r = await run(`${dir}/a`, { saveSteps: 2, resumeFromCheckpoint: true });
      assert.equal(r.out.globalStep, 8);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
);

Deno.test(
  "Ctrl-C (a real SIGINT) saves a checkpoint, prints how to resume and exits 0",
  gpuTest,
  async () => {
    const dir = await Deno.makeTempDir({ prefix: "webdpo-sigint-" });
    const child = new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", new URL("./train_interrupt_child.ts", import.meta.url).pathname, dir],
      stdout: "piped",
      stderr: "piped",
      env: { XDG_RUNTIME_DIR: "/tmp" },
    }).spawn();
    const stderr = new Response(child.stderr).text();
    try {
      let out = "";
      let sent = false;
      const decoder = new TextDecoder();
      for await (const chunk of child.stdout) {
        out += decoder.decode(chunk, { stream: true });
        if (!sent && /step=1\b/.test(out)) {
          child.kill("SIGINT");
          sent = true;
        }
      }
      const status = await child.status;
      assert.equal(status.code, 0, `exit code; stdout:\n${out}\nstderr:\n${await stderr}`);
      const result = JSON.parse(out.split("\n").find((l) => l.startsWith("RESULT "))!.slice(7));
      assert.equal(result.interrupted, true);
      assert.ok(result.globalStep >= 1 && result.globalStep < 10000);
      assert.equal(result.checkpoint, `${dir}/checkpoint-${result.globalStep}`);
      assert.match(out, /interrupt received/);
      assert.ok(out.includes(`training interrupted at step ${result.globalStep}/10000`));
      assert.ok(out.includes(`--resume_from_checkpoint ${result.checkpoint}`));
      assert.equal(await latestCheckpoint(dir), result.checkpoint);
    } finally {
      try {
        child.kill("SIGKILL");
      } catch { /* already exited */ }
      await stderr;
      await Deno.remove(dir, { recursive: true });
    }
  },
);
