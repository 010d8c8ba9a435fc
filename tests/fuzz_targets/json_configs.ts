/**
 * Fuzz targets (run in the sandbox worker) for the JSON configuration files of a model folder: `config.json` and
 * a PEFT `adapter_config.json`. A result that breaks what the model code relies on throws a plain Error.
 */
import { readConfig } from "../../src/models/config.ts";
import { readAdapterConfig } from "../../src/models/adapter_io.ts";
import { matchesModules, moduleHyper } from "../../src/nn/lora_config.ts";

function invalid(why: string): never {
  throw new Error(`invalid result: ${why}`);
}

const positiveInt = (x: unknown) => Number.isSafeInteger(x) && (x as number) > 0;
const tokenId = (x: unknown) => x === null || Number.isSafeInteger(x);

/** Reads `dir/config.json` and checks the ModelConfig's sizes, windows and token ids. */
export async function modelConfig(dir: string): Promise<unknown> {
  const c = await readConfig(dir);
  const sizes = {
    vocabSize: c.vocabSize,
    hiddenSize: c.hiddenSize,
    intermediateSize: c.intermediateSize,
    numLayers: c.numLayers,
    numHeads: c.numHeads,
    numKvHeads: c.numKvHeads,
    headDim: c.headDim,
    maxPositionEmbeddings: c.maxPositionEmbeddings,
  };
  for (const [k, v] of Object.entries(sizes)) if (!positiveInt(v)) invalid(`${k} is ${v}`);
  if (c.numHeads % c.numKvHeads !== 0) invalid(`${c.numHeads} heads, ${c.numKvHeads} kv heads`);
  if (c.layerSlidingWindow.length !== c.numLayers) {
    invalid(`${c.layerSlidingWindow.length} sliding windows for ${c.numLayers} layers`);
  }
  for (const w of c.layerSlidingWindow) {
    if (w !== null && !positiveInt(w)) invalid(`a sliding window of ${w}`);
  }
  if (!(c.normEps >= 0) || !Number.isFinite(c.normEps)) invalid(`norm eps ${c.normEps}`);
  if (c.architecture === "llama" && !(c.ropeTheta > 0 && Number.isFinite(c.ropeTheta))) {
    invalid(`rope theta ${c.ropeTheta}`);
  }
  const eos = Array.isArray(c.eosTokenId) ? c.eosTokenId : [c.eosTokenId];
  for (const id of [c.bosTokenId, c.padTokenId, ...eos]) if (!tokenId(id)) invalid(`token id ${id}`);
  return sizes;
}

const MODULES = [
  "model.layers.0.self_attn.q_proj",
  "model.layers.11.mlp.down_proj",
  "transformer.h.0.attn.c_attn",
  "lm_head",
];

/** Reads `dir/adapter_config.json` and matches its targets, exclusions and patterns against module names. */
export async function adapterConfig(dir: string): Promise<unknown> {
  const c = await readAdapterConfig(`${dir}/adapter_config.json`);
  const matched = MODULES.filter((m) =>
    (c.targetModules === null || matchesModules(c.targetModules, m)) &&
    !(c.excludeModules !== null && matchesModules(c.excludeModules, m))
  );
  for (const m of MODULES) {
    const h = moduleHyper(c, m);
    if (!positiveInt(h.r) || !Number.isFinite(h.alpha)) {
      invalid(`module ${m} gets r ${h.r}, alpha ${h.alpha}`);
    }
  }
  return { r: c.r, matched };
}
