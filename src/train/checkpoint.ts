/**
 * Training checkpoints: `output_dir/checkpoint-<step>/`, a Hugging Face model folder plus what an exact resume
 * needs. This file reads and writes the files; `checkpoint_state.ts` decides what goes in them.
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
import { WebDPOError } from "../gpu/errors.ts";
import { upload } from "../gpu/queue.ts";
import * as io from "../io/platform.ts";
import {
  openSafetensors,
  readSafetensorsHeader,
  readTensor,
  type SafetensorsHeader,
  writeSafetensors,
} from "../models/safetensors.ts";
import type { AdamW, AdamWGroupState, AdamWParamState } from "../optim/adamw.ts";
import { tensor } from "../tensor/create.ts";
import type { Tensor } from "../tensor/tensor.ts";
import { jsonExcerpt } from "../util/json_excerpt.ts";
import { jsonNumbers } from "./metrics_log.ts";

/** A checkpoint that cannot be written or read (missing files, mismatched shapes, ...). */
export class CheckpointError extends WebDPOError {}

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

// ----------------------------------------------------------------------------------------------------------------
// JSON files

/** Writes pretty JSON (keys in the given order; NaN/Infinity as strings). */
export async function writeJson(path: string, value: unknown): Promise<void> {
  await io.files().writeText(path, JSON.stringify(value, jsonNumbers, 2) + "\n");
}

/** Reads a JSON object, with an error naming the file when it is missing or malformed. */
export async function readJson(path: string): Promise<Record<string, unknown>> {
  let text: string;
  try {
    text = await io.files().readText(path);
  } catch (e) {
    throw new CheckpointError(`${path}: cannot read (${e instanceof Error ? e.message : e})`);
  }
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch (e) {
    throw new CheckpointError(`${path}: not valid JSON (${e instanceof Error ? e.message : e})`);
  }
  if (!v || typeof v !== "object" || Array.isArray(v)) {
    throw new CheckpointError(`${path}: expected a JSON object`);
  }
  return v as Record<string, unknown>;
}

/** A field of a checkpoint JSON file that counts something (a step, an epoch, examples): an integer ≥ 0. */
export function countField(o: Record<string, unknown>, key: string, where: string): number {
  const v = o[key];
  if (!Number.isSafeInteger(v) || (v as number) < 0) {
    throw new CheckpointError(`${where}: "${key}" must be an integer ≥ 0, got ${jsonExcerpt(v)}`);
  }
  return v as number;
}

/** A field of a checkpoint JSON file that must be a number (an integer when `integer`). */
export function numberField(o: Record<string, unknown>, key: string, where: string, integer = false): number {
  const v = o[key];
  if (typeof v !== "number" || !Number.isFinite(v) || (integer && !Number.isInteger(v))) {
    throw new CheckpointError(
      `${where}: "${key}" must be ${integer ? "an integer" : "a number"}, got ${jsonExcerpt(v)}`,
    );
  }
  return v;
}

// ----------------------------------------------------------------------------------------------------------------
// trainer_state.json

/** The fields of the trainer's state that trainer_state.json holds (camelCase, as `TrainerState`). */
export interface SavedTrainerState {
  globalStep: number;
  epoch: number;
  maxSteps: number;
  numTrainEpochs: number;
  loggingSteps: number;
  evalSteps: number;
  saveSteps: number;
  trainBatchSize: number;
  logHistory: Record<string, number>[];
  bestMetric: number | null;
  bestModelCheckpoint: string | null;
}

/**
 * Hugging Face's trainer_state.json (TrainerState.save_to_json: sorted keys). Only fields every recent
 * transformers version knows are written, since TrainerState.load_from_json rejects unknown ones.
 */
export function hfTrainerState(s: SavedTrainerState): Record<string, unknown> {
  const o: Record<string, unknown> = {
    best_metric: s.bestMetric,
    best_model_checkpoint: s.bestModelCheckpoint,
    epoch: s.epoch,
    eval_steps: s.evalSteps,
    global_step: s.globalStep,
    is_hyper_param_search: false,
    is_local_process_zero: true,
    is_world_process_zero: true,
    log_history: s.logHistory.map((e) => ({ ...e })),
    logging_steps: s.loggingSteps,
    max_steps: s.maxSteps,
    num_input_tokens_seen: 0,
    num_train_epochs: s.numTrainEpochs,
    save_steps: s.saveSteps,
    total_flos: 0,
    train_batch_size: s.trainBatchSize,
    trial_name: null,
    trial_params: null,
  };
  return o;
}

/** Reads what a resume restores from trainer_state.json: the step, the log history and the best metric. */
export function parseHfTrainerState(
  o: Record<string, unknown>,
  where: string,
): Pick<SavedTrainerState, "globalStep" | "logHistory" | "bestMetric" | "bestModelCheckpoint"> {
  const globalStep = countField(o, "global_step", where);
  const history = o.log_history;
  if (!Array.isArray(history)) throw new CheckpointError(`${where}: "log_history" must be a list`);
  const logHistory = history.map((e, i) => {
    if (!e || typeof e !== "object" || Array.isArray(e)) {
      throw new CheckpointError(`${where}: log_history[${i}] must be an object`);
    }
    const out: Record<string, number> = {};
    for (const [k, v] of Object.entries(e as Record<string, unknown>)) {
      out[k] = typeof v === "string" && /^(NaN|-?Infinity)$/.test(v) ? Number(v) : (v as number);
    }
    return out;
  });
  const best = o.best_metric;
  const bestCk = o.best_model_checkpoint;
  return {
    globalStep,
    logHistory,
    bestMetric: typeof best === "number" ? best : null,
    bestModelCheckpoint: typeof bestCk === "string" ? bestCk : null,
  };
}

// ----------------------------------------------------------------------------------------------------------------
// tensors

/** Writes named GPU tensors (e.g. the TR-DPO reference's weights) to a safetensors file, F32. */
export async function writeTensors(
  path: string,
  named: readonly (readonly [string, Tensor])[],
): Promise<void> {
  await writeSafetensors(
    path,
    named.map(([name, t]) => ({ name, shape: t.shape, data: () => t.toArray() })),
  );
}

/**
 * Overwrites the values of the tensors `named` in place (their GPU buffers) with the tensors of the same names in
 * a safetensors file: every name and shape is checked before anything is written; the file must hold exactly
 * these names. Tensors keep their identity (an optimizer holding them keeps working).
 */
export async function loadTensorsInto(
  path: string,
  named: readonly (readonly [string, Tensor])[],
  what: string,
): Promise<void> {
  let header;
  try {
    header = await readSafetensorsHeader(path);
  } catch (e) {
    throw new CheckpointError(`${what}: ${e instanceof Error ? e.message : e}`);
  }
  const want = new Map(named.map(([n, t]) => [n, t]));
  for (const e of header.tensors) {
    if (!want.has(e.name)) {
      throw new CheckpointError(`${path}: tensor "${e.name}" is not a parameter of ${what}`);
    }
  }
  for (const [n, t] of want) {
    const e = header.byName.get(n);
    if (!e) throw new CheckpointError(`${path}: the tensor "${n}" of ${what} is missing`);
    if (e.shape.join() !== t.shape.join()) {
      throw new CheckpointError(`${path}: tensor "${n}" has shape [${e.shape}], ${what} has [${t.shape}]`);
    }
  }
  const file = await openSafetensors(path);
  try {
    for (const [n, t] of want) {
      const host = await readTensor(file, header, header.byName.get(n)!);
      if (t.size > 0) upload(t.storage.buffer, host.data);
    }
  } finally {
    await file.close();
  }
}

interface OptimizerMeta {
  version: 1;
  params: { index: number; name: string | null; step: number; key: string }[];
  groups: AdamWGroupState[];
}

/**
 * optimizer.safetensors: `<name>.exp_avg` and `<name>.exp_avg_sq` for each parameter with a state (parameters
 * without a name are `param.<index>`), and in `__metadata__` the JSON `webdpo_optimizer` (each parameter's
 * index, name, key and step; the groups' hyperparameters and parameter indices) and `step` (the largest step).
 */
export async function writeOptimizer(path: string, opt: AdamW): Promise<void> {
  const st = opt.state();
  const keys = new Set<string>();
  const params = st.params.map((e) => {
    const key = e.name ?? `param.${e.index}`;
    if (keys.has(key)) throw new CheckpointError(`${path}: two optimizer parameters are both named "${key}"`);
    keys.add(key);
    return { index: e.index, name: e.name ?? null, step: e.step, key };
  });
  const meta: OptimizerMeta = { version: 1, params, groups: st.groups };
  await writeSafetensors(
    path,
    st.params.flatMap((e, i) => [
      { name: `${params[i].key}.exp_avg`, shape: e.expAvg.shape, data: () => e.expAvg.toArray() },
      { name: `${params[i].key}.exp_avg_sq`, shape: e.expAvgSq.shape, data: () => e.expAvgSq.toArray() },
    ]),
    {
      metadata: {
        webdpo_optimizer: JSON.stringify(meta),
        step: String(params.reduce((m, p) => Math.max(m, p.step), 0)),
      },
    },
  );
}

const isCount = (v: unknown) => Number.isSafeInteger(v) && (v as number) >= 0;
const isObject = (v: unknown): v is Record<string, unknown> =>
  !!v && typeof v === "object" && !Array.isArray(v);

/** What is wrong with the entries of `writeOptimizer`'s metadata, or null. */
function badOptimizerMeta(meta: { params: unknown[]; groups: unknown[] }): string | null {
  for (const [i, p] of meta.params.entries()) {
    if (!isObject(p)) return `params[${i}] is ${jsonExcerpt(p)}, not an object`;
    if (!isCount(p.index) || !isCount(p.step)) return `params[${i}] has index ${p.index} and step ${p.step}`;
    if (typeof p.key !== "string" || p.key === "") return `params[${i}] has the key ${jsonExcerpt(p.key)}`;
    if (p.name !== null && typeof p.name !== "string") {
      return `params[${i}] has the name ${jsonExcerpt(p.name)}`;
    }
  }
  for (const [i, g] of meta.groups.entries()) {
    if (!isObject(g)) return `groups[${i}] is ${jsonExcerpt(g)}, not an object`;
    const numbers = [g.lr, g.initialLr, g.eps, g.weightDecay, ...(Array.isArray(g.betas) ? g.betas : [NaN])];
    if (!numbers.every(Number.isFinite) || (g.betas as unknown[]).length !== 2) {
      return `groups[${i}] has lr, initialLr, betas, eps or weightDecay that are not finite numbers`;
    }
    if (!Array.isArray(g.params) || !g.params.every(isCount)) {
      return `groups[${i}].params is not a list of indices`;
    }
  }
  return null;
}

/** optimizer.safetensors as read: the header and the metadata of `writeOptimizer`, checked. */
export interface OptimizerFile {
  header: SafetensorsHeader;
  meta: OptimizerMeta;
}

/** Reads optimizer.safetensors' header and metadata, and checks them, before anything is loaded. */
export async function readOptimizerFile(path: string): Promise<OptimizerFile> {
  let header;
  try {
    header = await readSafetensorsHeader(path);
  } catch (e) {
    throw new CheckpointError(`optimizer state: ${e instanceof Error ? e.message : e}`);
  }
  let meta: OptimizerMeta;
  try {
    meta = JSON.parse(header.metadata.webdpo_optimizer ?? "null");
  } catch {
    meta = null as unknown as OptimizerMeta;
  }
  if (!meta || meta.version !== 1 || !Array.isArray(meta.params) || !Array.isArray(meta.groups)) {
    throw new CheckpointError(`${path}: no webdpo optimizer metadata (__metadata__.webdpo_optimizer)`);
  }
  const bad = badOptimizerMeta(meta);
  if (bad !== null) throw new CheckpointError(`${path}: __metadata__.webdpo_optimizer: ${bad}`);
  for (const p of meta.params) {
    for (const suffix of ["exp_avg", "exp_avg_sq"]) {
      if (!header.byName.get(`${p.key}.${suffix}`)) {
        throw new CheckpointError(`${path}: tensor "${p.key}.${suffix}" is missing`);
      }
    }
  }
  return { header, meta };
}

/** Restores an optimizer from `writeOptimizer`'s file, one parameter at a time (little extra GPU memory). */
export async function loadOptimizer(path: string, opt: AdamW): Promise<void> {
  const { header, meta } = await readOptimizerFile(path);
  const file = await openSafetensors(path);
  try {
    for (const p of meta.params) {
      const read = async (suffix: string) => {
        const host = await readTensor(file, header, header.byName.get(`${p.key}.${suffix}`)!);
        return tensor(host.data, host.shape);
      };
      const expAvg = await read("exp_avg");
      const expAvgSq = await read("exp_avg_sq");
      try {
        const entry: AdamWParamState = { index: p.index, step: p.step, expAvg, expAvgSq };
        if (p.name !== null) entry.name = p.name;
        opt.loadState({ params: [entry], groups: [] });
      } catch (e) {
        throw new CheckpointError(`${path}: ${e instanceof Error ? e.message : e}`);
      } finally {
        expAvg.dispose();
        expAvgSq.dispose();
      }
    }
  } finally {
    await file.close();
  }
  try {
    opt.loadState({ params: [], groups: meta.groups });
  } catch (e) {
    throw new CheckpointError(`${path}: ${e instanceof Error ? e.message : e}`);
  }
}
