/** A copy of a model's weights made on the GPU (no file read): the frozen reference of a DPO run. */
import { copyBuffer } from "../gpu/queue.ts";
import { empty } from "../tensor/tensor.ts";
import type { CausalLM } from "./causal_lm.ts";
import { modelFor } from "./loader.ts";

export function cloneModel(
  model: CausalLM,
  { requiresGrad = false }: { requiresGrad?: boolean } = {},
): CausalLM {
  const copy = modelFor(model.config);
  for (const [name, p] of model.namedParameters()) {
    const t = empty(p.shape);
    if (p.size > 0) copyBuffer(p.storage.buffer, 0, t.storage.buffer, 0, p.bytes);
    t.requiresGrad = requiresGrad;
    copy.register(name, t.keep());
  }
  copy.sourceDir = model.sourceDir;
  copy.gradientCheckpointing = model.gradientCheckpointing;
  return copy;
}
