/**
 * A quantised frozen base (QLoRA's idea with 8 bits): `quantizeBase(model, {modules})` replaces the f32 weights of
 * projection modules by int8 values with per-output-channel scales (lora_int8.ts), computed through the int8
 * kernel from then on (through the same hook as LoRA). Quantised weights are frozen; biases stay f32.
 * `dequantizeBase` puts f32 weights (the dequantised values) back, e.g. before merging an adapter and saving.
 *
 * The f32 weight leaves the model's parameters while quantised, so `saveModel` must not be called on a model with
 * quantised modules (`quantizedModules(model)` tells); dequantize first.
 */
import type { CausalLM } from "../models/causal_lm.ts";
import { tensor } from "../tensor/create.ts";
import type { Tensor } from "../tensor/tensor.ts";
import { installHook, LoraError, maybeRemoveHook, modelExt, moduleDims, weightLayout } from "./lora.ts";
import { matchesModules } from "./lora_config.ts";
import { dequantizeInt8, quantizeInt8, unpackInt8, uploadQuantized } from "./lora_int8.ts";

/** Removes a parameter from a model's state dict (Module has no public way; see the report). */
function unregister(model: CausalLM, name: string): void {
  (model as unknown as { params: Map<string, Tensor> }).params.delete(name);
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
  const ext = modelExt(model);
  const layout = weightLayout(model);
  const report: QuantizeReport = { modules: [], f32Bytes: 0, int8Bytes: 0 };
  installHook(model);
  for (const m of select(model, opts.modules)) {
    if (ext.quant.has(m)) continue;
    const { inF, outF } = moduleDims(model, m);
    const w = model.param(`${m}.weight`);
    const h = quantizeInt8(await w.toArray(), outF, inF, layout);
    const qw = uploadQuantized(h, outF, inF);
    qw.packed.keep();
    qw.scales.keep();
    ext.quant.set(m, qw);
    unregister(model, `${m}.weight`);
    w.grad?.dispose();
    w.grad = null;
    w.dispose();
    report.modules.push(m);
    report.f32Bytes += outF * inF * 4;
    report.int8Bytes += qw.packed.bytes + qw.scales.bytes;
  }
  return report;
}

/** Restores f32 weights (the dequantised values s·q, frozen) for quantised modules (default: all of them). */
export async function dequantizeBase(model: CausalLM, opts: QuantizeOptions = {}): Promise<string[]> {
  const ext = modelExt(model);
  const layout = weightLayout(model);
  const names = opts.modules === undefined ? [...ext.quant.keys()] : select(model, opts.modules);
  const done: string[] = [];
  for (const m of names) {
    const qw = ext.quant.get(m);
    if (!qw) continue;
    const { inFeatures: inF, outFeatures: outF } = qw;
    const packed = new Uint32Array((await qw.packed.toInt32Array()).buffer);
    const scales = await qw.scales.toArray();
    const w = dequantizeInt8({ q: unpackInt8(packed, outF, inF), scales }, outF, inF, layout);
    const t = tensor(w, layout === "out_in" ? [outF, inF] : [inF, outF]).keep();
    model.register(`${m}.weight`, t);
    ext.quant.delete(m);
    qw.packed.dispose();
    qw.scales.dispose();
    done.push(m);
  }
  maybeRemoveHook(model);
  return done;
}

/** The modules whose base weight is int8-quantised. */
export function quantizedModules(model: CausalLM): string[] {
  return [...modelExt(model).quant.keys()];
}

/** Frees the int8 weights of a model (call before `model.dispose()`; the model is unusable afterwards). */
export function disposeQuantized(model: CausalLM): void {
  const ext = modelExt(model);
  for (const q of ext.quant.values()) {
    q.packed.dispose();
    q.scales.dispose();
  }
  ext.quant.clear();
  maybeRemoveHook(model);
}
