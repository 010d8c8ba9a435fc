/**
 * A copy of a model's weights made on the GPU (no file read): the frozen reference of a DPO run. With `dtype`
 * (float16 or bfloat16) the copy's matrices (every parameter of two or more dimensions: projections, embeddings)
 * are stored in 16 bits straight from the model's f32 weights, so no f32 copy of them is ever made; vectors (norms,
 * biases) stay f32.
 */
import { type HalfDtype, PackedWeight, packHalf } from "../nn/half_weights.ts";
import { copyBuffer } from "../gpu/queue.ts";
import { empty } from "../tensor/tensor.ts";
import type { CausalLM } from "./causal_lm.ts";
import { modelFor } from "./loader.ts";

export function cloneModel(
  model: CausalLM,
  { requiresGrad = false, dtype = null }: { requiresGrad?: boolean; dtype?: HalfDtype | null } = {},
): CausalLM {
  if (dtype && requiresGrad) {
    throw new Error("cloneModel: a copy stored in 16 bits is frozen (requiresGrad false)");
  }
  const copy = modelFor(model.config);
  for (const [name, p] of model.namedParameters()) {
    if (dtype && p.ndim >= 2) {
      copy.registerPacked(name, packHalf(p, dtype));
      continue;
    }
    const t = empty(p.shape);
    if (p.size > 0) copyBuffer(p.storage.buffer, 0, t.storage.buffer, 0, p.bytes);
    t.requiresGrad = requiresGrad;
    copy.register(name, t.keep());
  }
  // weights the model itself stores in 16 bits are copied as they are
  for (const [name, p] of model.packedParameters()) {
    const data = empty(p.data.shape, "i32");
    copyBuffer(p.data.storage.buffer, 0, data.storage.buffer, 0, p.data.bytes);
    copy.registerPacked(name, new PackedWeight(data.keep(), p.shape, p.dtype));
  }
  copy.sourceDir = model.sourceDir;
  copy.gradientCheckpointing = model.gradientCheckpointing;
  return copy;
}
