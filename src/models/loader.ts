/**
 * loadModel(pathOrHubId): a local Hugging Face model folder, or a hub id resolved in the Hugging Face cache
 * ($HF_HUB_CACHE, else $HF_HOME/hub, else ~/.cache/huggingface/hub: models--org--name/snapshots/<rev>/) and, when
 * absent, downloaded into that cache with @huggingface/hub. Weights stream one tensor at a time from disk to the
 * GPU; names and shapes are checked against the config. `saveModel` writes a folder transformers loads.
 */
import { init } from "../gpu/init.ts";
import { settleUploads } from "../gpu/queue.ts";
import * as io from "../io/platform.ts";
import type { RandomAccessFile } from "../io/types.ts";
import { loraOf } from "../nn/lora.ts";
import { quantizedModules } from "../nn/lora_quant.ts";
import { tensor } from "../tensor/create.ts";
import type { Tokenizer } from "../tokenizer/tokenizer.ts";
import type { CausalLM } from "./causal_lm.ts";
import { ModelError } from "./causal_lm.ts";
import { type ModelConfig, readConfig } from "./config.ts";
import { GPT2Model } from "./gpt2.ts";
import { downloadSnapshot } from "./hub_download.ts";
import { LlamaModel } from "./llama.ts";
import {
  gpuValues,
  openSafetensors,
  readSafetensorsHeader,
  readShardIndex,
  readTensor,
  type SafetensorsHeader,
  writeSafetensors,
} from "./safetensors.ts";
import { exists } from "../util/fs.ts";

export interface LoadModelOptions {
  /** Hub revision (branch, tag or commit) when resolving a hub id (default "main"). */
  revision?: string;
  /** Never download; resolve a hub id only from the local cache. */
  localFilesOnly?: boolean;
  /** Whether the loaded parameters require gradients (default true). */
  requiresGrad?: boolean;
}

/** Builds an (uninitialised) model object for a config. */
export function modelFor(config: ModelConfig): CausalLM {
  return config.architecture === "gpt2" ? new GPT2Model(config) : new LlamaModel(config);
}

/** The Hugging Face hub cache folder. */
export function hubCacheDir(): string {
  const env = (k: string) => io.host().env(k);
  if (env("HF_HUB_CACHE")) return env("HF_HUB_CACHE")!;
  const home = env("HF_HOME") ?? `${env("XDG_CACHE_HOME") ?? `${env("HOME") ?? "."}/.cache`}/huggingface`;
  return `${home}/hub`;
}

/** A hub id's snapshot folder in the local cache, or null. */
export async function resolveCachedSnapshot(repoId: string, revision = "main"): Promise<string | null> {
  const base = `${hubCacheDir()}/models--${repoId.replace(/\//g, "--")}`;
  if (!(await exists(base))) return null;
  let commit = revision;
  try {
    commit = (await io.files().readText(`${base}/refs/${revision}`)).trim();
  } catch { /* revision may be a commit hash */ }
  const snap = `${base}/snapshots/${commit}`;
  if (await exists(`${snap}/config.json`)) return snap;
  return null;
}

const HUB_ID = /^[A-Za-z0-9][\w.-]*\/[\w.-]+$/;

/** A local folder for `pathOrHubId`: the folder itself, a cached snapshot, or a fresh download. */
export async function resolveModelDir(pathOrHubId: string, opts: LoadModelOptions = {}): Promise<string> {
  if (await exists(pathOrHubId)) return pathOrHubId.replace(/\/+$/, "");
  if (!HUB_ID.test(pathOrHubId)) {
    throw new ModelError(`${pathOrHubId}: no such folder (and not a hub id like org/name)`);
  }
  const cached = await resolveCachedSnapshot(pathOrHubId, opts.revision);
  if (cached) return cached;
  const how =
    `download it first, e.g. \`huggingface-cli download ${pathOrHubId}\` (it lands in ${hubCacheDir()}), ` +
    `or pass the path of a local folder holding config.json, model.safetensors and the tokenizer files`;
  if (opts.localFilesOnly) throw new ModelError(`${pathOrHubId} is not in the Hugging Face cache; ${how}`);
  try {
    return await downloadToCache(pathOrHubId, opts.revision ?? "main");
  } catch (e) {
    throw new ModelError(
      `${pathOrHubId} is not in the Hugging Face cache and downloading it failed ` +
        `(${e instanceof Error ? e.message : e}); ${how}`,
    );
  }
}

function downloadToCache(repoId: string, revision: string): Promise<string> {
  return downloadSnapshot(repoId, revision, hubCacheDir(), io.host().env("HF_TOKEN"));
}

/** The safetensors headers of a folder (single file or shards) and which file holds each tensor. */
async function checkpointFiles(dir: string): Promise<Map<string, SafetensorsHeader>> {
  const single = `${dir}/model.safetensors`;
  const index = `${dir}/model.safetensors.index.json`;
  const byTensor = new Map<string, SafetensorsHeader>();
  if (await exists(single)) {
    const h = await readSafetensorsHeader(single);
    for (const t of h.tensors) byTensor.set(t.name, h);
    return byTensor;
  }
  if (await exists(index)) {
    const map = await readShardIndex(index);
    const headers = new Map<string, SafetensorsHeader>();
    for (const [name, file] of map) {
      let h = headers.get(file);
      if (!h) {
        const path = `${dir}/${file}`;
        if (!(await exists(path))) {
          throw new ModelError(`${path}: missing shard (listed in ${index} for "${name}")`);
        }
        h = await readSafetensorsHeader(path);
        headers.set(file, h);
      }
      if (!h.byName.has(name)) {
        throw new ModelError(`${h.path}: has no tensor "${name}" although ${index} says so`);
      }
      byTensor.set(name, h);
    }
    return byTensor;
  }
  const bin = (await exists(`${dir}/pytorch_model.bin`)) ||
    (await exists(`${dir}/pytorch_model.bin.index.json`));
  throw new ModelError(
    `${dir}: no model.safetensors (nor model.safetensors.index.json)` +
      (bin
        ? "; only pytorch_model.bin (pickle) was found: convert it to safetensors with transformers' save_pretrained"
        : ""),
  );
}

/** GPT-2 buffers that old checkpoints store and the model does not use. */
const IGNORED = /^(transformer\.)?h\.\d+\.attn\.(bias|masked_bias)$|(^|\.)rotary_emb\.inv_freq$/;

/** Loads a model folder or hub id onto the GPU. */
export async function loadModel(pathOrHubId: string, opts: LoadModelOptions = {}): Promise<CausalLM> {
  await init();
  const dir = await resolveModelDir(pathOrHubId, opts);
  if (!(await exists(`${dir}/config.json`))) {
    throw new ModelError(`${dir}/config.json: missing (every model folder needs one)`);
  }
  const config = await readConfig(dir);
  const model = modelFor(config);
  const expected = model.expectedShapes();
  const files = await checkpointFiles(dir);
  // map checkpoint names to model names (GPT2Model checkpoints have no "transformer." prefix)
  const rename = new Map<string, string>();
  for (const name of files.keys()) {
    if (IGNORED.test(name)) continue;
    let target = name;
    if (config.architecture === "gpt2" && !name.startsWith("transformer.") && name !== "lm_head.weight") {
      target = `transformer.${name}`;
    }
    if (config.tieWordEmbeddings && name === "lm_head.weight") continue; // tied: the embedding is used
    if (!expected.has(target)) {
      const where = files.get(name)!.path;
      throw new ModelError(
        `${where}: unexpected tensor "${name}" for a ${config.modelType} model with this config`,
      );
    }
    rename.set(target, name);
  }
  for (const name of expected.keys()) {
    if (!rename.has(name)) {
      throw new ModelError(
        `${dir}: the checkpoint is missing tensor "${name}" (shape [${expected.get(name)}])`,
      );
    }
  }
  // every shape is checked before anything is read or uploaded
  for (const [target, shape] of expected) {
    const source = rename.get(target)!;
    const header = files.get(source)!;
    const entry = header.byName.get(source)!;
    if (entry.shape.join() !== shape.join()) {
      throw new ModelError(
        `${header.path}: tensor "${source}" has shape [${entry.shape}] but the config implies [${shape}]`,
      );
    }
  }
  const requiresGrad = opts.requiresGrad ?? true;
  const open = new Map<string, RandomAccessFile>();
  try {
    for (const [target, shape] of expected) {
      const source = rename.get(target)!;
      const header = files.get(source)!;
      const entry = header.byName.get(source)!;
      let f = open.get(header.path);
      if (!f) open.set(header.path, f = await openSafetensors(header.path));
      const host = await readTensor(f, header, entry);
      model.register(target, tensor(host.data, shape, { requiresGrad }));
      await settleUploads();
    }
  } catch (e) {
    model.dispose();
    throw e;
  } finally {
    for (const f of open.values()) await f.close();
  }
  model.sourceDir = dir;
  return model;
}

export interface SaveModelOptions {
  /** Tokenizer files to write alongside. */
  tokenizer?: Tokenizer;
  /** Storage dtype (default F32). */
  dtype?: "F32" | "BF16";
}

/** transformers' model class for each model_type, as `save_pretrained` writes it into config.json. */
const ARCHITECTURE_CLASS: Record<ModelConfig["modelType"], string> = {
  gpt2: "GPT2LMHeadModel",
  llama: "LlamaForCausalLM",
  mistral: "MistralForCausalLM",
  qwen2: "Qwen2ForCausalLM",
};

/** Writes config.json, model.safetensors (one tensor in memory at a time) and, given one, the tokenizer files. */
export async function saveModel(model: CausalLM, dir: string, opts: SaveModelOptions = {}): Promise<void> {
  if (loraOf(model)) {
    throw new ModelError(
      `saveModel(${dir}): the model has LoRA adapters, and its parameters are the frozen base; save the adapter ` +
        `with saveAdapter(model, dir) (a PEFT folder), or fold it in with mergeAdapter(model) and then saveModel`,
    );
  }
  const quantized = quantizedModules(model);
  if (quantized.length) {
    throw new ModelError(
      `saveModel(${dir}): ${quantized.length} projection(s) of the model hold int8 weights (${
        quantized[0]
      }, ...) ` +
        `that are not parameters; call dequantizeBase(model) first (to save a merged adapter: dequantizeBase, then ` +
        `mergeAdapter, then saveModel)`,
    );
  }
  const packed = model.packedParameters();
  if (packed.length) {
    throw new ModelError(
      `saveModel(${dir}): ${packed.length} weight(s) of the model are stored in ${model.halfDtype()} (${
        packed[0][0]
      }, ...): it is a frozen reference copy (ref_model_init_kwargs torch_dtype), not a model to save; save the ` +
        `policy`,
    );
  }
  await io.files().mkdir(dir);
  const raw = { ...model.config.raw };
  raw.torch_dtype = opts.dtype === "BF16" ? "bfloat16" : "float32";
  if ("dtype" in raw) raw.dtype = raw.torch_dtype;
  // transformers' save_pretrained always writes the class; TRL's DPOTrainer builds its reference from it
  if (!Array.isArray(raw.architectures) || raw.architectures.length === 0) {
    raw.architectures = [ARCHITECTURE_CLASS[model.config.modelType]];
  }
  await io.files().writeText(`${dir}/config.json`, JSON.stringify(raw, null, 2) + "\n");
  const src = model.sourceDir;
  if (src && src !== dir && (await exists(`${src}/generation_config.json`))) {
    const text = await io.files().readText(`${src}/generation_config.json`);
    await io.files().writeText(`${dir}/generation_config.json`, text);
  }
  await writeSafetensors(
    `${dir}/model.safetensors`,
    model.namedParameters().map(([name, t]) => ({ name, shape: t.shape, data: gpuValues(t) })),
    { dtype: opts.dtype },
  );
  if (opts.tokenizer) await opts.tokenizer.save(dir);
}
