/** Layers and LoRA adapters. */
export { linear } from "./layers.ts";
export { type LinearHook, LinearHooks, type LinearHookSlot } from "./linear_hook.ts";
export { Module } from "./module.ts";
export {
  type AddAdapterOptions,
  applyLora,
  type ApplyLoraOptions,
  attachLora,
  type LoraAdapter,
  LoraError,
  type LoraLayer,
  LoraModel,
  loraOf,
  mergeAdapter,
  namedTrainableParametersOf,
  setAdapter,
  trainableParametersOf,
  unloadLora,
  type WeightLayout,
  withAdapter,
  withAdaptersDisabled,
} from "./lora.ts";
export {
  LORA_DEFAULTS,
  type LoraConfig,
  loraConfig,
  loraConfigFromPeft,
  type LoraConfigInput,
} from "./lora_config.ts";
export {
  dequantizeBase,
  disposeQuantized,
  quantizeBase,
  quantizedModules,
  type QuantizeOptions,
  type QuantizeReport,
} from "./lora_quant.ts";
