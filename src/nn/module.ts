/**
 * Module: a named collection of parameters (names are the Hugging Face state-dict names) with train/eval mode.
 * Layers are functions of the module that look their weights up by name, so a LoRA adapter (or any other
 * wrapper) can hook into a layer by its module name without changing the model code.
 */
import type { Tensor } from "../tensor/tensor.ts";
import { type HalfDtype, type PackedWeight, packHalf, unpackHalf } from "./half_weights.ts";

export class Module {
  /** Parameters by full state-dict name, in registration order. */
  protected readonly params: Map<string, Tensor> = new Map();
  /**
   * Frozen parameters stored in 16 bits (half_weights.ts) by state-dict name: not in `params`, so
   * `namedParameters()` leaves them out; `param(name)` gives an f32 copy.
   */
  protected readonly packed: Map<string, PackedWeight> = new Map();
  /** The f32 copy `param()` last unpacked of each packed weight (it lives as long as the scope it was made in). */
  private readonly unpacked: Map<string, Tensor> = new Map();
  /** Train mode. Dropout is not implemented (disabled, as TRL's `disable_dropout`), so the mode only matters to hooks. */
  training = false;

  /** Registers (or replaces) a parameter under its state-dict name. */
  register(name: string, t: Tensor): Tensor {
    t.name = name;
    this.params.set(name, t);
    // an f32 parameter replaces a 16-bit one of the same name
    this.packed.get(name)?.dispose();
    this.packed.delete(name);
    return t;
  }

  /** Removes the parameter `name` from the state dict and returns it (not disposed); an error when absent. */
  unregister(name: string): Tensor {
    const t = this.param(name);
    this.params.delete(name);
    return t;
  }

  /**
   * The parameter `name`; an error naming it when absent. A weight stored in 16 bits comes back as an f32 copy
   * made in the current `scope()` (and shared by later calls while that copy lives): call it where a scope will
   * release the copy, as the no-grad forwards do, or the copy stays until the module is disposed.
   */
  param(name: string): Tensor {
    const t = this.maybeParam(name);
    if (!t) throw new Error(`parameter "${name}" is not part of this model`);
    return t;
  }

  /** The parameter `name` (an f32 copy when it is stored in 16 bits: see `param`), or null. */
  maybeParam(name: string): Tensor | null {
    const t = this.params.get(name);
    if (t) return t;
    const p = this.packed.get(name);
    if (!p) return null;
    let u = this.unpacked.get(name);
    if (!u || u.disposed) {
      u = unpackHalf(p);
      u.name = name;
      this.unpacked.set(name, u);
    }
    return u;
  }

  /**
   * Stores the frozen parameter `name` in 16 bits from now on (its f32 buffer is released). The module's own
   * parameters only: a trained parameter cannot be packed.
   */
  storeHalf(name: string, dtype: HalfDtype): void {
    const t = this.params.get(name);
    if (!t) throw new Error(`parameter "${name}" is not part of this model`);
    if (t.requiresGrad) {
      throw new Error(`parameter "${name}" is trained: only frozen weights are stored in 16 bits`);
    }
    this.registerPacked(name, packHalf(t, dtype));
    t.dispose();
  }

  /**
   * Stores every frozen matrix (a parameter of two or more dimensions: projections, embeddings) in 16 bits, as
   * `cloneModel(model, { dtype })` does for a copy; vectors (norms, biases) stay f32.
   */
  storeMatricesHalf(dtype: HalfDtype): void {
    for (const [name, t] of [...this.params]) if (t.ndim >= 2) this.storeHalf(name, dtype);
  }

  /** Registers (or replaces) a weight stored in 16 bits under its state-dict name. */
  registerPacked(name: string, p: PackedWeight): void {
    this.params.delete(name);
    this.packed.get(name)?.dispose();
    this.packed.set(name, p);
  }

  /** The weights stored in 16 bits, by state-dict name. */
  packedParameters(): [string, PackedWeight][] {
    return [...this.packed.entries()];
  }

  /** The 16-bit format of the packed weights, or null when every parameter is f32. */
  halfDtype(): HalfDtype | null {
    for (const p of this.packed.values()) return p.dtype;
    return null;
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
    for (const p of this.packed.values()) n += p.size;
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
    for (const p of this.packed.values()) p.dispose();
    this.packed.clear();
    for (const u of this.unpacked.values()) u.dispose();
    this.unpacked.clear();
  }
}
