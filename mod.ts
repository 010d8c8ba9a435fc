/**
 * webdpo — Direct Preference Optimization for Hugging Face causal language models on WebGPU.
 *
 * @module
 */
export * from "./src/io/mod.ts";
export * from "./src/gpu/mod.ts";
export * from "./src/tensor/mod.ts";
export * from "./src/autograd/mod.ts";
export * from "./src/optim/mod.ts";
export * from "./src/nn/mod.ts";
export * from "./src/models/mod.ts";
export * from "./src/tokenizer/mod.ts";
export * from "./src/data/mod.ts";
export * from "./src/dpo/mod.ts";
export * from "./src/sft/mod.ts";
export * from "./src/train/mod.ts";
export { VERSION } from "./src/version.ts";
export { PlotError, plotTraining, type PlotTrainingOptions, trainingSvg } from "./src/plot/training.ts";
