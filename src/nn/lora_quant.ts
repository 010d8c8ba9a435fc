/**
 * A quantised frozen base (QLoRA's idea with 8 bits): `quantizeBase(model, {modules})` replaces the f32 weights of
 * projection modules by int8 values with per-output-channel scales (lora_int8.ts), computed through the int8
 * kernel from then on: an `Int8Base` in the model's `base` projection hook slot (linear_hook.ts), below LoRA's
 * adapter slot. Quantised weights are frozen; biases stay f32. `dequantizeBase` puts f32 weights (the dequantised
 * values) back, e.g. before merging an adapter and saving.
 *
 * The f32 weight leaves the model's parameters while quantised, so `saveModel` must not be called on a model with
 * quantised modules (`quantizedModules(model)` tells); dequantize first.
 */
import type { CausalLM } from "../models/causal_lm.ts";
import { tensor } from "../tensor/create.ts";
import type { Tensor } from "../tensor/tensor.ts";
import type { LinearHook } from "./linear_hook.ts";
import { LoraError, matchesModules } from "./lora_config.ts";
import {
  dequantizeInt8,
  int8Linear,
  type QuantizedWeight,
  quantizeInt8,
  unpackInt8,
  uploadQuantized,
} from "./lora_int8.ts";

/** Weight layout of a model's projections: nn.Linear [out, in], or GPT-2's Conv1D [in, out]. */
export type WeightLayout = "out_in" | "in_out";

/** The projection weight layout of a model. */
export function weightLayout(model: CausalLM): WeightLayout {
  return model.config.architecture === "gpt2" ? "in_out" : "out_in";
}

/** The int8 weights of a model's quantised modules, computing their projections (the `base` hook). */
export class Int8Base implements LinearHook {
  /** By module name. */
  readonly weights: Map<string, QuantizedWeight> = new Map();

  constructor(readonly model: CausalLM) {}

  project(x: Tensor, module: string, base: () => Tensor): Tensor {
    const q = this.weights.get(module);
    return q ? int8Linear(x, q, this.model.maybeParam(`${module}.bias`)) : base();
  }
}

/** The model's int8 base, or null when no module is quantised. */
export function int8BaseOf(model: CausalLM): Int8Base | null {
  const b = model.linearHooks.base;
  return b instanceof Int8Base ? b : null;
}

/** in/out features of a projection module (from its weight, or its quantised form). */
export function moduleDims(model: CausalLM, module: string): { inF: number; outF: number } {
  const q = int8BaseOf(model)?.weights.get(module);
  if (q) return { inF: q.inFeatures, outF: q.outFeatures };
  const w = model.param(`${module}.weight`);
  return weightLayout(model) === "out_in"
    ? { inF: w.shape[1], outF: w.shape[0] }
    : { inF: w.shape[0], outF: w.shape[1] };
}

/** Takes the int8 base out of its slot once it holds no module. */
function removeIfEmpty(model: CausalLM, base: Int8Base): void {
  if (base.weights.size === 0) model.linearHooks.remove("base", base);
}

export interface QuantizeOptions {
  /**
   * Which projection modules: short or full names (matched as LoRA's target_modules), a regex string, or
   * "all-linear" (default: every projection module; the embeddings and LM head stay f32).
   */
  modules?: string[] | string;
}

export interface QuantizeReport {
  /** The modules quantised by this call. */
  modules: string[];
  /** Bytes of their f32 weights before. */
  f32Bytes: number;
  /** Bytes of their int8 values + f32 scales after. */
  int8Bytes: number;
}

function select(model: CausalLM, spec: string[] | string | undefined): string[] {
  const all = model.projectionModules();
  if (spec === undefined || spec === "all-linear") return all;
  const out = all.filter((m) => matchesModules(spec, m));
  if (out.length === 0) {
    throw new LoraError(
      `quantizeBase: ${JSON.stringify(spec)} matches no projection module (modules: ${
        [...new Set(all.map((m) => m.slice(m.lastIndexOf(".") + 1)))].join(", ")
      })`,
    );
  }
  return out;
}

/** Quantises the weights of projection modules to int8 (per output channel); already quantised ones are skipped. */
export async function quantizeBase(model: CausalLM, opts: QuantizeOptions = {}): Promise<QuantizeReport> {
  const modules = select(model, opts.modules);
  const layout = weightLayout(model);
  const report: QuantizeReport = { modules: [], f32Bytes: 0, int8Bytes: 0 };
  const base = int8BaseOf(model) ?? new Int8Base(model);
  model.linearHooks.install("base", base);
  for (const m of modules) {
    if (base.weights.has(m)) continue;
    const { inF, outF } = moduleDims(model, m);
    const w = model.param(`${m}.weight`);
    const h = quantizeInt8(await w.toArray(), outF, inF, layout);
    const qw = uploadQuantized(h, outF, inF);
    qw.packed.keep();
    qw.scales.keep();
    base.weights.set(m, qw);
    model.unregister(`${m}.weight`);
    w.grad?.dispose();
    w.grad = null;
    w.dispose();
    report.modules.push(m);
    report.f32Bytes += outF * inF * 4;
    report.int8Bytes += qw.packed.bytes + qw.scales.bytes;
  }
  removeIfEmpty(model, base);
  return report;
}

/** Restores f32 weights (the dequantised values s·q, frozen) for quantised modules (default: all of them). */
export async function dequantizeBase(model: CausalLM, opts: QuantizeOptions = {}): Promise<string[]> {
  const base = int8BaseOf(model);
  const layout = weightLayout(model);
  const names = opts.modules === undefined ? [...(base?.weights.keys() ?? [])] : select(model, opts.modules);
  const done: string[] = [];
  for (const m of names) {
    const qw = base?.weights.get(m);
    if (!qw) continue;
    const { inFeatures: inF, outFeatures: outF } = qw;
    const packed = new Uint32Array((await qw.packed.toInt32Array()).buffer);
    const scales = await qw.scales.toArray();
    const w = dequantizeInt8({ q: unpackInt8(packed, outF, inF), scales }, outF, inF, layout);
    const t = tensor(w, layout === "out_in" ? [outF, inF] : [inF, outF]).keep();
    model.register(`${m}.weight`, t);
    base!.weights.delete(m);
    qw.packed.dispose();
    qw.scales.dispose();
    done.push(m);
  }
  if (base) removeIfEmpty(model, base);
  return done;
}

/** The modules whose base weight is int8-quantised. */
export function quantizedModules(model: CausalLM): string[] {
  return [...(int8BaseOf(model)?.weights.keys() ?? [])];
}

/** Frees the int8 weights of a model (call before `model.dispose()`; the model is unusable afterwards). */
export function disposeQuantized(model: CausalLM): void {
  const base = int8BaseOf(model);
  if (!base) return;
  for (const q of base.weights.values()) {
    q.packed.dispose();
    q.scales.dispose();
  }
  base.weights.clear();
  removeIfEmpty(model, base);
}
