/**
 * A training process for faults_test.ts: `deno run -A tests/faults_child.ts '<Spec as JSON>'`.
 *
 * It trains the tiny Llama with DPO on 10 pairs, 2 a step (bco_pair with TR-DPO's reference sync, so a
 * checkpoint holds every kind of file the DPO trainer writes, tokenizer files included), and the spec can make it
 * fail the way a machine does:
 * - `pauseWriting`: when a write to a file whose path matches this regular expression has written its first
 *   bytes, print `PAUSED <path>` and wait, so the parent can `kill -9` the process inside that write (a
 *   deterministic kill); `pauseRenaming`: the same after a rename to a path that matches;
 * - `diskBytes`: the disk under `outputDir` holds this many bytes: a write past them fails with ENOSPC, as Deno
 *   reports a full disk (a plain Error with code "ENOSPC");
 * - `loseDeviceAfterStep`: destroys the WebGPU device after that optimizer step (as a driver reset would);
 *   `loseDeviceWriting`: the same after the first write to a file whose path matches this regular expression;
 * - `attempts`: instead of one run, one resume per checkpoint path given, each on a fresh model, reported in turn.
 *
 * Prints `RESULT <json>` (the step, the losses, a SHA-256 of the final weights) and exits 0, or prints
 * `ERROR <json>` (the error's class, whether it is a WebDPOError, its message and stack) and exits 1.
 */
import { createHash } from "node:crypto";
import { DPOConfig } from "../src/dpo/config.ts";
import { DPOTrainer } from "../src/dpo/trainer.ts";
import { WebDPOError } from "../src/gpu/errors.ts";
import { gpu } from "../src/gpu/device.ts";
import type { CausalLM } from "../src/models/causal_lm.ts";
import { initModel } from "../src/models/init.ts";
import { charTokenizerFiles, containsATask, TINY_LLAMA } from "./trainer_helpers.ts";

export interface Spec {
  outputDir: string;
  maxSteps: number;
  saveSteps: number;
  resume?: boolean | string;
  pauseWriting?: string;
  pauseRenaming?: string;
  diskBytes?: number;
  loseDeviceAfterStep?: number;
  loseDeviceWriting?: string;
  attempts?: string[];
}

const spec: Spec = JSON.parse(Deno.args[0]);

// ---------------------------------------------------------------------------------------------------------------
// the file-system faults: Deno's write functions wrapped for paths under outputDir

let diskUsed = 0;

function enospc(): Error {
  return Object.assign(new Error("No space left on device (os error 28)"), { code: "ENOSPC" });
}

/** Before `bytes` more bytes go to `path`: the full disk's error, if the budget is spent. */
function beforeWrite(path: string, bytes: number): void {
  if (spec.diskBytes === undefined || !path.startsWith(spec.outputDir)) return;
  if (diskUsed + bytes > spec.diskBytes) throw enospc();
  diskUsed += bytes;
}

let deviceLost = false;

/** Prints PAUSED and waits (to be killed) when `path` matches the regular expression `pattern`. */
async function pauseAt(pattern: string | undefined, path: string): Promise<void> {
  if (pattern === undefined || !new RegExp(pattern).test(path)) return;
  console.log(`PAUSED ${path}`);
  await new Promise((resolve) => setTimeout(resolve, 600_000));
}

/** After a write to `path`: lose the device, or pause there, when the spec names the file. */
async function afterWrite(path: string): Promise<void> {
  if (!deviceLost && spec.loseDeviceWriting !== undefined && new RegExp(spec.loseDeviceWriting).test(path)) {
    deviceLost = true;
    gpu().device.destroy();
  }
  await pauseAt(spec.pauseWriting, path);
}

const open = Deno.open;
Deno.open = (async (path: string | URL, options?: Deno.OpenOptions) => {
  const file = await open(path, options);
  if (!options?.write && !options?.append) return file;
  const write = file.write.bind(file);
  file.write = async (p: Uint8Array) => {
    beforeWrite(String(path), p.length);
    const n = await write(p);
    await afterWrite(String(path));
    return n;
  };
  return file;
}) as typeof Deno.open;
const writeFile = Deno.writeFile;
Deno.writeFile = (async (path: string | URL, data: Uint8Array, options?: Deno.WriteFileOptions) => {
  beforeWrite(String(path), data.length);
  await writeFile(path, data, options);
  await afterWrite(String(path));
}) as typeof Deno.writeFile;
const writeTextFile = Deno.writeTextFile;
Deno.writeTextFile = (async (path: string | URL, data: string, options?: Deno.WriteFileOptions) => {
  beforeWrite(String(path), new TextEncoder().encode(data).length);
  await writeTextFile(path, data, options);
  await afterWrite(String(path));
}) as typeof Deno.writeTextFile;

const rename = Deno.rename;
Deno.rename = (async (from: string | URL, to: string | URL) => {
  await rename(from, to);
  await pauseAt(spec.pauseRenaming, String(to));
}) as typeof Deno.rename;

// ---------------------------------------------------------------------------------------------------------------
// the run

/** A digest of every parameter's bytes, in name order. */
async function weightsDigest(model: CausalLM): Promise<string> {
  const h = createHash("sha256");
  for (const [name, t] of model.namedParameters()) {
    h.update(name);
    h.update(new Uint8Array((await t.toArray()).buffer));
  }
  return h.digest("hex");
}

async function train(resume: boolean | string | null): Promise<Record<string, unknown>> {
  const model = await initModel(TINY_LLAMA, { seed: 7 });
  const trainer = new DPOTrainer({
    model,
    tokenizer: charTokenizerFiles(),
    trainDataset: containsATask(10, 21),
    args: new DPOConfig({
      outputDir: spec.outputDir,
      maxLength: 32,
      maxPromptLength: 16,
      disableTqdm: true,
      perDeviceTrainBatchSize: 2,
      learningRate: 5e-3,
      maxSteps: spec.maxSteps,
      lrSchedulerType: "linear",
      warmupSteps: 2,
      saveSteps: spec.saveSteps,
      loggingSteps: 1,
      lossType: "bco_pair",
      syncRefModel: true,
      refModelSyncSteps: 2,
      refModelMixupAlpha: 0.5,
      resumeFromCheckpoint: resume,
    }, { printWarnings: false }),
    callbacks: [{
      onStepEnd: (s) => {
        if (s.globalStep === spec.loseDeviceAfterStep) gpu().device.destroy();
      },
    }],
    log: (line) => console.log(line),
  });
  try {
    const out = await trainer.train();
    return {
      globalStep: out.globalStep,
      trainingLoss: out.trainingLoss,
      history: trainer.state.logHistory,
      weights: await weightsDigest(model),
    };
  } finally {
    trainer.dispose();
    model.dispose();
  }
}

function describe(e: unknown): Record<string, unknown> {
  return e instanceof Error
    ? { name: e.name, webdpo: e instanceof WebDPOError, message: e.message, stack: e.stack }
    : { name: typeof e, webdpo: false, message: String(e) };
}

if (spec.attempts) {
  const results = [];
  for (const path of spec.attempts) {
    try {
      results.push({ path, ok: await train(path) });
    } catch (e) {
      results.push({ path, error: describe(e) });
    }
  }
  console.log(`RESULT ${JSON.stringify(results)}`);
} else {
  try {
    console.log(`RESULT ${JSON.stringify(await train(spec.resume ?? null))}`);
  } catch (e) {
    console.log(`ERROR ${JSON.stringify(describe(e))}`);
    Deno.exit(1);
  }
}
