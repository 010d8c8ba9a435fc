/** Models: checkpoints, configs, architectures, loading/saving, generation. */
export { CausalLM, type ForwardOptions, type IdBatch, type LinearHook, ModelError } from "./causal_lm.ts";
export {
  ConfigError as ModelConfigError,
  type ModelConfig,
  parseConfig,
  readConfig,
  SUPPORTED_MODEL_TYPES,
} from "./config.ts";
export { LlamaModel } from "./llama.ts";
export { GPT2Model } from "./gpt2.ts";
export {
  hubCacheDir,
  loadModel,
  type LoadModelOptions,
  modelFor,
  resolveModelDir,
  saveModel,
  type SaveModelOptions,
} from "./loader.ts";
export { initModel, type InitModelOptions } from "./init.ts";
export { cloneModel } from "./clone.ts";
export { KVCache } from "./kv_cache.ts";
export { generate, type GenerateOptions, type GenerateResult } from "./generate.ts";
export {
  readSafetensors,
  readSafetensorsHeader,
  SafetensorsError,
  streamSafetensors,
  writeSafetensors,
} from "./safetensors.ts";
export {
  ADAPTER_CONFIG,
  ADAPTER_WEIGHTS,
  loadAdapter,
  type LoadAdapterOptions,
  saveAdapter,
  type SaveAdapterOptions,
} from "./adapter_io.ts";
