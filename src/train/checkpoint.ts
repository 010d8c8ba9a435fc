/**
 * Training checkpoints: `output_dir/checkpoint-<step>/`, a Hugging Face model folder plus what an exact resume
 * needs. This file lays out, commits and finds the folders (checkpoint_files.ts writes and reads the state files,
 * checkpoint_json.ts the JSON ones); `checkpoint_state.ts` decides what goes in them.
 *
 * | file | content |
 * |---|---|
 * | `config.json`, `model.safetensors`, tokenizer files | the policy, loadable by `transformers` (saveModel) |
 * | `adapter_config.json`, `adapter_model.safetensors` | instead of the two above in a LoRA run: the trained adapter, a PEFT folder |
 * | `optimizer.safetensors` | AdamW's `<param>.exp_avg` and `<param>.exp_avg_sq` (F32); the `__metadata__` key `webdpo_optimizer` holds each parameter's step and the groups' hyperparameters (JSON) |
 * | `scheduler.json` | the schedule's step count (torch's `last_epoch`) and learning rates |
 * | `rng_state.json` | the data position: the epoch, the examples of it already seen, the seeds of its shuffle |
 * | `trainer_state.json` | Hugging Face's TrainerState layout (global_step, epoch, log_history, best_metric, ...) |
 * | `training_args.json` | the run's config (DPOConfig, SFTConfig) under TRL's snake_case names |
 * | `webdpo_state.json` | the metrics of the logging window in progress and the running training-loss sum |
 * | `bco_state.json` | DPO: bco_pair's running mean (only with bco_pair) |
 * | `ref_model.safetensors` | DPO: the TR-DPO reference weights (only once sync_ref_model has changed them) |
 * | `webdpo_manifest.json` | written last: the size and SHA-256 of every other file, checked before a resume (checkpoint_manifest.ts) |
 *
 * Writes are atomic: everything goes into a hidden temporary folder `.checkpoint-<step>.tmp-<id>`, each file is
 * flushed to disk, and the folder is renamed to `checkpoint-<step>` last. A crash or kill mid-save leaves only the
 * temporary folder, which resume ignores and the next run removes (and, in a save that replaces a checkpoint of
 * the same step, perhaps the old one moved aside, which the next run puts back). A folder named
 * `checkpoint-<step>` that lacks one of the required files (made by something else) is skipped with the list of
 * what is missing.
 */
import * as io from "../io/platform.ts";
import { CheckpointError } from "./checkpoint_json.ts";

export * from "./checkpoint_json.ts";
export * from "./checkpoint_files.ts";

export const CHECKPOINT_PREFIX = "checkpoint-";

/** The files of a checkpoint folder. */
export const CHECKPOINT_FILES = {
  config: "config.json",
  model: "model.safetensors",
  optimizer: "optimizer.safetensors",
  scheduler: "scheduler.json",
  rng: "rng_state.json",
  trainerState: "trainer_state.json",
  args: "training_args.json",
  webdpo: "webdpo_state.json",
  bco: "bco_state.json",
  ref: "ref_model.safetensors",
  adapterConfig: "adapter_config.json",
  adapterModel: "adapter_model.safetensors",
} as const;

/** Every complete checkpoint has these (bco_state.json and ref_model.safetensors only when used). */
export const REQUIRED_CHECKPOINT_FILES: readonly string[] = [
  CHECKPOINT_FILES.config,
  CHECKPOINT_FILES.model,
  CHECKPOINT_FILES.optimizer,
  CHECKPOINT_FILES.scheduler,
  CHECKPOINT_FILES.rng,
  CHECKPOINT_FILES.trainerState,
  CHECKPOINT_FILES.args,
  CHECKPOINT_FILES.webdpo,
];

/** `checkpoint-<step>`. */
export function checkpointDirName(step: number): string {
  return `${CHECKPOINT_PREFIX}${step}`;
}

/** The step of a folder named `checkpoint-<step>`, else null. */
export function checkpointStep(name: string): number | null {
  const m = /^checkpoint-(\d+)$/.exec(name);
  return m ? Number(m[1]) : null;
}

const TEMP_RE = /^\.checkpoint-\d+\.tmp(-[A-Za-z0-9]+)?$/;

async function isFile(path: string): Promise<boolean> {
  return (await io.files().stat(path))?.isFile === true;
}

async function isDir(path: string): Promise<boolean> {
  return (await io.files().stat(path))?.isDirectory === true;
}

/**
 * The required files `dir` lacks (empty for a complete checkpoint). A LoRA run's checkpoint (one with
 * adapter_config.json) holds the adapter's two files in place of config.json and model.safetensors.
 */
export async function missingCheckpointFiles(dir: string): Promise<string[]> {
  const F = CHECKPOINT_FILES;
  const required = (await isFile(`${dir}/${F.adapterConfig}`))
    ? [F.adapterModel, ...REQUIRED_CHECKPOINT_FILES.filter((f) => f !== F.config && f !== F.model)]
    : REQUIRED_CHECKPOINT_FILES;
  const missing: string[] = [];
  for (const f of required) if (!(await isFile(`${dir}/${f}`))) missing.push(f);
  return missing;
}

export interface CheckpointInfo {
  step: number;
  path: string;
}

/** The checkpoints of `outputDir`: complete ones by ascending step, and the incomplete ones with what they lack. */
export async function scanCheckpoints(
  outputDir: string,
): Promise<{ complete: CheckpointInfo[]; incomplete: (CheckpointInfo & { missing: string[] })[] }> {
  const complete: CheckpointInfo[] = [];
  const incomplete: (CheckpointInfo & { missing: string[] })[] = [];
  if (!(await isDir(outputDir))) return { complete, incomplete };
  for (const e of await io.files().list(outputDir)) {
    const step = checkpointStep(e.name);
    if (step === null || !e.isDirectory) continue;
    const path = `${outputDir}/${e.name}`;
    const missing = await missingCheckpointFiles(path);
    if (missing.length) incomplete.push({ step, path, missing });
    else complete.push({ step, path });
  }
  complete.sort((a, b) => a.step - b.step);
  incomplete.sort((a, b) => a.step - b.step);
  return { complete, incomplete };
}

/** The complete checkpoints of `outputDir`, by ascending step. */
export async function listCheckpoints(outputDir: string): Promise<CheckpointInfo[]> {
  return (await scanCheckpoints(outputDir)).complete;
}

/** The complete checkpoint with the highest step in `outputDir`, or null. */
export async function latestCheckpoint(outputDir: string): Promise<string | null> {
  const all = await listCheckpoints(outputDir);
  return all.length ? all[all.length - 1].path : null;
}

/**
 * Cleans up after the saves that were interrupted in `outputDir`: removes their temporary folders, and puts back
 * a checkpoint that a save had moved aside to replace it (`.checkpoint-<step>.tmp-old<id>`, see commitCheckpoint)
 * when the save was killed before the new one took its name. Returns the removed paths.
 */
export async function removeTemporaryCheckpoints(outputDir: string): Promise<string[]> {
  const removed: string[] = [];
  if (!(await isDir(outputDir))) return removed;
  const names: string[] = [];
  for (const e of await io.files().list(outputDir)) {
    if (e.isDirectory && TEMP_RE.test(e.name)) names.push(e.name);
  }
  for (const name of names) {
    const path = `${outputDir}/${name}`;
    const replaced = /^\.(checkpoint-\d+)\.tmp-old/.exec(name)?.[1];
    if (replaced && !(await isDir(`${outputDir}/${replaced}`))) {
      await io.files().rename(path, `${outputDir}/${replaced}`);
      continue;
    }
    await io.files().remove(path);
    removed.push(path);
  }
  return removed;
}

function randomId(): string {
  return crypto.getRandomValues(new Uint32Array(2)).reduce((s, x) => s + x.toString(36), "");
}

/** Flushes a file (or, where the platform allows, a folder's entries) to disk. */
function fsync(path: string, directory: boolean): Promise<void> {
  return io.files().sync(path, directory);
}

/**
 * Writes a checkpoint atomically: `write` fills a fresh temporary folder, its files are flushed, and the folder is
 * renamed to `outputDir/checkpoint-<step>` (replacing an older folder of that name). When `write` throws, the
 * temporary folder is removed and nothing named `checkpoint-<step>` is touched. Returns the checkpoint's path.
 */
export async function commitCheckpoint(
  outputDir: string,
  step: number,
  write: (dir: string) => Promise<void>,
): Promise<string> {
  const fs = io.files();
  await fs.mkdir(outputDir);
  const final = `${outputDir}/${checkpointDirName(step)}`;
  const tmp = `${outputDir}/.${checkpointDirName(step)}.tmp-${randomId()}`;
  await fs.mkdir(tmp);
  try {
    await write(tmp);
    const missing = await missingCheckpointFiles(tmp);
    if (missing.length) {
      throw new CheckpointError(`${final}: the checkpoint writer did not write ${missing.join(", ")}`);
    }
    for (const e of await fs.list(tmp)) if (e.isFile) await fsync(`${tmp}/${e.name}`, false);
    await fsync(tmp, true);
  } catch (e) {
    await fs.remove(tmp).catch(() => {});
    throw e;
  }
  if (await isDir(final)) {
    // a folder of that name exists (an earlier run): move it aside, move the new one in, then delete the old one
    const old = `${outputDir}/.${checkpointDirName(step)}.tmp-old${randomId()}`;
    await fs.rename(final, old);
    await fs.rename(tmp, final);
    await fs.remove(old);
  } else {
    await fs.rename(tmp, final);
  }
  await fsync(outputDir, true);
  return final;
}

/**
 * `save_total_limit`: deletes the oldest complete checkpoints of `outputDir` until `limit` remain, never one of
 * `keep` (the checkpoint just written and the best one, as Hugging Face's Trainer keeps best_model_checkpoint).
 * Returns the deleted paths.
 */
export async function pruneCheckpoints(
  outputDir: string,
  limit: number,
  keep: readonly (string | null)[] = [],
): Promise<string[]> {
  const all = await listCheckpoints(outputDir);
  const protectedPaths = new Set(keep.filter((k): k is string => !!k).map(normalize));
  let count = all.length;
  const deleted: string[] = [];
  for (const c of all) {
    if (count <= limit) break;
    if (protectedPaths.has(normalize(c.path))) continue;
    await io.files().remove(c.path);
    deleted.push(c.path);
    count--;
  }
  return deleted;
}

function normalize(p: string): string {
  return p.replace(/\\/g, "/").replace(/\/+/g, "/").replace(/\/$/, "");
}
