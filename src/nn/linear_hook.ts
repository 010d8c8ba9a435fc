/**
 * The projection seam. A model computes each projection by module name (`proj(x, module)`: Llama's q_proj …
 * down_proj, GPT-2's Conv1D c_attn …) through its `linearHooks`, so another frozen base and an adapter plug in by
 * module name without changing the model code. Two slots, applied in this order:
 *
 * - `base` replaces a module's plain f32 projection (int8 weights: lora_quant.ts's `Int8Base`);
 * - `adapter` wraps whatever the base gives (LoRA: lora.ts's `LoraModel` adds its branch).
 *
 * A slot holds one hook; its owner installs it and removes it.
 */
import type { Tensor } from "../tensor/tensor.ts";

/** One hook: projection `module` of x, where `base()` computes the projection below this hook. */
export interface LinearHook {
  project(x: Tensor, module: string, base: () => Tensor): Tensor;
}

export type LinearHookSlot = "base" | "adapter";

/** A model's two hook slots. */
export class LinearHooks {
  base: LinearHook | null = null;
  adapter: LinearHook | null = null;

  /** Projection `module` of x through the hooks; `plain()` is the module's own f32 projection. */
  project(x: Tensor, module: string, plain: () => Tensor): Tensor {
    const base = this.base;
    const below = base ? () => base.project(x, module, plain) : plain;
    return this.adapter ? this.adapter.project(x, module, below) : below();
  }

  /** Puts `hook` in `slot` (nothing to do when it is there already); an error when another hook holds the slot. */
  install(slot: LinearHookSlot, hook: LinearHook): void {
    const cur = this[slot];
    if (cur === hook) return;
    if (cur) throw new Error(`the model's ${slot} projection hook is taken by another hook; remove it first`);
    this[slot] = hook;
  }

  /** Empties `slot` if `hook` holds it. */
  remove(slot: LinearHookSlot, hook: LinearHook): void {
    if (this[slot] === hook) this[slot] = null;
  }
}
