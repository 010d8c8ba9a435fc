/**
 * Module: a named collection of parameters (names are the Hugging Face state-dict names) with train/eval mode.
 * Layers are functions of the module that look their weights up by name, so a LoRA adapter (or any other
 * wrapper) can hook into a layer by its module name without changing the model code.
 */
import type { Tensor } from "../tensor/tensor.ts";

export class Module {
  /** Parameters by full state-dict name, in registration order. */
  protected readonly params: Map<string, Tensor> = new Map();
  /** Train mode. Dropout is not implemented (disabled, as TRL's `disable_dropout`), so the mode only matters to hooks. */
  training = false;

  /** Registers (or replaces) a parameter under its state-dict name. */
  register(name: string, t: Tensor): Tensor {
    t.name = name;
    this.params.set(name, t);
    return t;
  }

  /** Removes the parameter `name` from the state dict and returns it (not disposed); an error when absent. */
  unregister(name: string): Tensor {
    const t = this.param(name);
    this.params.delete(name);
    return t;
  }

  /** The parameter `name`; an error naming it when absent. */
  param(name: string): Tensor {
    const t = this.params.get(name);
    if (!t) throw new Error(`parameter "${name}" is not part of this model`);
    return t;
  }

  /** The parameter `name`, or null. */
  maybeParam(name: string): Tensor | null {
    return this.params.get(name) ?? null;
  }

  namedParameters(): [string, Tensor][] {
    return [...this.params.entries()];
  }

  parameters(): Tensor[] {
    return [...this.params.values()];
  }

  /** Parameters that will receive gradients. */
  trainableParameters(): Tensor[] {
    return this.parameters().filter((p) => p.requiresGrad);
  }

  /** Sets requiresGrad on every parameter. */
  requiresGrad(on: boolean): this {
    for (const p of this.params.values()) p.requiresGrad = on;
    return this;
  }

  train(on = true): this {
    this.training = on;
    return this;
  }

  eval(): this {
    return this.train(false);
  }

  /** Total number of parameter elements. */
  numParameters(): number {
    let n = 0;
    for (const p of this.params.values()) n += p.size;
    return n;
  }

  /** Releases every parameter's GPU memory (and gradients). */
  dispose(): void {
    for (const p of this.params.values()) {
      p.grad?.dispose();
      p.grad = null;
      p.dispose();
    }
    this.params.clear();
  }
}
