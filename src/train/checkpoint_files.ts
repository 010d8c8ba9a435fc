/**
 * The files of a training checkpoint that hold state (src/train/checkpoint.ts has the folder, its layout and its
 * atomic commit): trainer_state.json in Hugging Face's layout, tensors by name in safetensors files, and AdamW's
 * moments and per-parameter steps in optimizer.safetensors.
 *
 * @module
 */
import { settleUploads, upload } from "../gpu/queue.ts";
import {
  gpuValues,
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
import { CheckpointError, countField } from "./checkpoint_json.ts";

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
    named.map(([name, t]) => ({ name, shape: t.shape, data: gpuValues(t) })),
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
      await settleUploads();
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
      { name: `${params[i].key}.exp_avg`, shape: e.expAvg.shape, data: gpuValues(e.expAvg) },
      { name: `${params[i].key}.exp_avg_sq`, shape: e.expAvgSq.shape, data: gpuValues(e.expAvgSq) },
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
        await settleUploads();
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
