/** Tensors: the GPU array type, creation, random generators. */
export { type BackwardOptions, type DType, empty, type GradNode, Storage, Tensor, view } from "./tensor.ts";
export {
  arange,
  full,
  ones,
  rand,
  randn,
  tensor,
  type TensorData,
  type TensorOptions,
  zeros,
} from "./create.ts";
export { defaultGenerator, Generator, manualSeed } from "./random.ts";
