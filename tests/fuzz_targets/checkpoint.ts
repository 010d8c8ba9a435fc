/**
 * Fuzz targets (run in the sandbox worker) for a checkpoint's files: the loop's JSON files (trainer_state.json,
 * rng_state.json, scheduler.json, webdpo_state.json, training_args.json) as a resume reads them, and
 * optimizer.safetensors' header and metadata, bco_state.json, and webdpo_manifest.json with the files it lists. A
 * result a resume cannot use throws a plain Error.
 */
import { CheckpointError, readOptimizerFile } from "../../src/train/checkpoint.ts";
import { readLoopFiles } from "../../src/train/checkpoint_state.ts";
import { verifyCheckpoint } from "../../src/train/checkpoint_manifest.ts";
import { readBcoState } from "../../src/dpo/checkpoint_parts.ts";
import type { TrainingArgs } from "../../src/train/args.ts";

/** What the fuzzed checkpoints were written with (see fuzz_checkpoint_test.ts). */
export const TRAIN_EXAMPLES = 12;
export const METRIC_SLOTS = 3;

function invalid(why: string): never {
  throw new Error(`invalid result: ${why}`);
}

const count = (x: unknown) => Number.isSafeInteger(x) && (x as number) >= 0;

/** Reads the loop's files of the checkpoint folder `dir` as a resume of a run on TRAIN_EXAMPLES examples. */
export async function loopFiles(dir: string): Promise<unknown> {
  const files = await readLoopFiles(dir, {
    args: { seed: 42, dataSeed: null } as TrainingArgs,
    argsJson: { beta: 0.1 },
    warnKeys: ["beta"],
    metricSlots: METRIC_SLOTS,
    trainExamples: TRAIN_EXAMPLES,
    print: () => {},
    fail: (message) => new CheckpointError(message),
  });
  const { trainerState: ts, loop } = files;
  if (!count(ts.globalStep)) invalid(`global step ${ts.globalStep}`);
  if (!count(files.schedulerSteps)) invalid(`scheduler step count ${files.schedulerSteps}`);
  const { epoch, cursor } = loop.position;
  if (!count(epoch) || !count(cursor) || cursor > TRAIN_EXAMPLES) {
    invalid(`data position ${epoch}, ${cursor}`);
  }
  if (!count(loop.lossCount) || !Number.isFinite(loop.lossSum)) {
    invalid(`loss ${loop.lossSum} / ${loop.lossCount}`);
  }
  return { step: ts.globalStep };
}

/** Reads `dir/optimizer.safetensors` as a resume does before loading it. */
export async function optimizerFile(dir: string): Promise<unknown> {
  const { header, meta } = await readOptimizerFile(`${dir}/optimizer.safetensors`);
  for (const p of meta.params) {
    if (!count(p.index) || !count(p.step)) invalid(`parameter ${p.key}: index ${p.index}, step ${p.step}`);
    const [m, v] = [header.byName.get(`${p.key}.exp_avg`)!, header.byName.get(`${p.key}.exp_avg_sq`)!];
    if (m.shape.join() !== v.shape.join()) {
      invalid(`parameter ${p.key}: shapes [${m.shape}] and [${v.shape}]`);
    }
  }
  return { params: meta.params.length };
}

/** Reads `dir/bco_state.json` (bco_pair's running mean). */
export async function bcoState(dir: string): Promise<unknown> {
  const { mean, count: n } = await readBcoState(`${dir}/bco_state.json`);
  if (!Number.isFinite(mean) || !count(n) || n > 2 ** 24) invalid(`mean ${mean} over ${n}`);
  return { mean, count: n };
}

/** Checks the checkpoint folder `dir` against its webdpo_manifest.json, as a resume does before reading it. */
export async function manifest(dir: string): Promise<unknown> {
  if (!await verifyCheckpoint(dir)) invalid("the manifest was not read");
  return { verified: true };
}
