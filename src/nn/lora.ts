/**
 * LoRA adapters (PEFT's LoRA) on a CausalLM: a `LoraModel` in the model's `adapter` projection hook slot
 * (linear_hook.ts) — no model code changes:
 *
 *   y = base(x) + scaling · (dropout(x)·Aᵀ)·Bᵀ,   A [r, in], B [out, r], scaling = alpha/r (rsLoRA: alpha/√r)
 *
 * for every targeted projection. The shapes are PEFT's for both layer kinds: for nn.Linear (weight [out, in]) and
 * for GPT-2's Conv1D (weight stored [in, out], PEFT's `fan_in_fan_out = True`) alike, lora_A.weight is [r, in] and
 * lora_B.weight is [out, r]; only merging differs — PEFT's delta weight is `transpose(B·A, fan_in_fan_out)`, so a
 * Conv1D weight receives (s·B·A)ᵀ = s·Aᵀ·Bᵀ [in, out].
 *
 * Initialisation as PEFT's default (`init_lora_weights=True`): A by torch's kaiming_uniform_(a=√5) on an [r, in]
 * weight, i.e. U(−bound, bound) with bound = gain·√(3/fan_in), gain = √(2/(1+a²)) = √(1/3), so bound = 1/√in;
 * B zero (the adapted model starts equal to the base). A seeded Generator makes it reproducible.
 *
 * The base is frozen: `applyLora` sets requiresGrad = false on every base parameter, so backward makes no
 * gradient buffers for them and an optimizer built from `trainableParameters()` holds no state for them.
 *
 * Several named adapters can live on one model; one is active (`setAdapter`). `withAdaptersDisabled(model, fn)`
 * runs fn on the bare base (bit-identical to the model without LoRA: the hook returns `base()` untouched) — the
 * reference model of TRL's "no ref_model with a PEFT model" option, without a second copy of the weights.
 * `modules_to_save` (e.g. lm_head, embed_tokens) are trained in full: each adapter owns a copy, registered in the
 * model under the original name while that adapter is active (the original while adapters are disabled).
 *
 * Quantised frozen bases (lora_quant.ts) sit in the `base` slot below: a quantised module's base is the int8 kernel.
 */
import { matmulInto } from "../autograd/ops/matmul.ts";
import { noGrad } from "../autograd/grad_mode.ts";
import { copyBuffer } from "../gpu/queue.ts";
import type { CausalLM } from "../models/causal_lm.ts";
import { tensor, zeros } from "../tensor/create.ts";
import { Generator } from "../tensor/random.ts";
import { empty, type Tensor } from "../tensor/tensor.ts";
import type { LinearHook } from "./linear_hook.ts";
import { type LoraConfig, loraConfig, type LoraConfigInput, LoraError, moduleHyper } from "./lora_config.ts";
import { loraDropout } from "./lora_dropout.ts";
import { loraAddInto } from "./lora_fused.ts";
import { int8BaseOf, moduleDims, weightLayout } from "./lora_quant.ts";
import { resolveModulesToSave, resolveTargets } from "./lora_targets.ts";
import { around } from "../util/around.ts";

export { LoraError } from "./lora_config.ts";
export { loraDelta, loraLinear } from "./lora_fused.ts";
export { moduleDims, type WeightLayout, weightLayout } from "./lora_quant.ts";

/** One adapted module of one adapter. */
export interface LoraLayer {
  /** The module's full name, e.g. "model.layers.0.self_attn.q_proj". */
  module: string;
  /** lora_A.weight [r, in]. */
  A: Tensor;
  /** lora_B.weight [out, r]. */
  B: Tensor;
  r: number;
  alpha: number;
  scaling: number;
}

/** A named adapter. */
export interface LoraAdapter {
  name: string;
  config: LoraConfig;
  /** Whether its tensors require gradients (false for a frozen adapter, e.g. a loaded reference adapter). */
  trainable: boolean;
  /** target_modules as written to adapter_config.json (all-linear expanded to the short module names). */
  savedTargetModules: string[] | string;
  /** By module name, in the model's projection order. */
  layers: Map<string, LoraLayer>;
  /** modules_to_save: parameter name → this adapter's trained copy. */
  saved: Map<string, Tensor>;
  /** Draws the dropout seeds. */
  rng: Generator;
}

export interface AddAdapterOptions {
  /** Seed of A's Kaiming-uniform initialisation and of the dropout masks (default 0). */
  seed?: number;
  /** Whether the adapter is trained (its tensors require gradients; default true). */
  trainable?: boolean;
  /**
   * Skip the random initialisation (A and B zero), for adapters whose values are loaded right after
   * (loadAdapter). Default false.
   */
  uninitialised?: boolean;
}

/**
 * The adapters on one model, and the model's `adapter` projection hook while attached. Get it from `applyLora` or
 * `loraOf(model)`.
 */
export class LoraModel implements LinearHook {
  readonly adapters: Map<string, LoraAdapter> = new Map();
  /** The active adapter's name, or null (base only). */
  activeAdapter: string | null = null;
  /** False inside `disableAdapters()` / `withAdaptersDisabled`: the model computes the bare base. */
  enabled = true;
  /**
   * Whether lora_dropout applies in train mode. TRL's `disable_dropout` (default true) sets every dropout to 0,
   * LoRA's included: the trainer sets this to false then.
   */
  dropoutEnabled = true;
  /** modules_to_save: parameter name → the original (frozen) tensor. */
  private readonly originals = new Map<string, Tensor>();
  /** The requiresGrad flags of the base parameters before `attachLora` froze them. */
  private flags: Map<string, boolean> | null = null;

  constructor(readonly model: CausalLM) {}

  /** The adapter `name` (default: the active one); an error naming the adapters when absent. */
  adapter(name?: string | null): LoraAdapter {
    const n = name ?? this.activeAdapter;
    const a = n === null ? undefined : this.adapters.get(n);
    if (!a) {
      throw new LoraError(
        n === null
          ? "no active adapter"
          : `no adapter named "${n}" (adapters: ${[...this.adapters.keys()].join(", ") || "none"})`,
      );
    }
    return a;
  }

  /** Throws unless `name` can name a new adapter: letters, digits, "_" or "-", and not taken. */
  checkNewAdapterName(name: string): void {
    if (typeof name !== "string" || !/^[A-Za-z0-9_-]+$/.test(name)) {
      throw new LoraError(`adapter name must be letters, digits, "_" or "-", got ${JSON.stringify(name)}`);
    }
    if (this.adapters.has(name)) throw new LoraError(`an adapter named "${name}" already exists`);
  }

  /**
   * The tensors an adapter with `config` puts on this model, by their PEFT saved names (`base_model.model.<module>
   * .lora_A.weight` [r, in], `.lora_B.weight` [out, r], then `base_model.model.<param>` for modules_to_save), with
   * their shapes, in the order `addAdapter` makes them. Nothing is allocated: loadAdapter checks a file against
   * this before it adds the adapter.
   */
  plannedTensors(config: LoraConfig | LoraConfigInput): Map<string, number[]> {
    const c = loraConfig(config as LoraConfigInput);
    const { modules } = resolveTargets(this.model, c);
    const out = new Map<string, number[]>();
    for (const module of modules) {
      const { inF, outF } = moduleDims(this.model, module);
      const { r } = moduleHyper(c, module);
      out.set(`base_model.model.${module}.lora_A.weight`, [r, inF]);
      out.set(`base_model.model.${module}.lora_B.weight`, [outF, r]);
    }
    for (const p of resolveModulesToSave(this.model, c, modules)) {
      out.set(`base_model.model.${p}`, [...(this.originals.get(p) ?? this.model.param(p)).shape]);
    }
    return out;
  }

  /** Adds an adapter (A Kaiming-uniform, B zero, as PEFT). It does not become active unless it is the first. */
  addAdapter(name: string, config: LoraConfig | LoraConfigInput, opts: AddAdapterOptions = {}): LoraAdapter {
    this.checkNewAdapterName(name);
    const c = loraConfig(config as LoraConfigInput);
    const { modules, saved } = resolveTargets(this.model, c);
    const savedParams = resolveModulesToSave(this.model, c, modules);
    const trainable = opts.trainable ?? true;
    const seed = opts.seed ?? 0;
    const gen = new Generator(seed);
    const layers = new Map<string, LoraLayer>();
    const copies = new Map<string, Tensor>();
    try {
      for (const module of modules) {
        const { inF, outF } = moduleDims(this.model, module);
        const h = moduleHyper(c, module);
        let A: Tensor;
        if (opts.uninitialised) A = zeros([h.r, inF], { requiresGrad: trainable });
        else {
          const bound = 1 / Math.sqrt(inF);
          const a = new Float32Array(h.r * inF);
          for (let i = 0; i < a.length; i++) a[i] = (2 * gen.uniform() - 1) * bound;
          A = tensor(a, [h.r, inF], { requiresGrad: trainable });
        }
        const B = zeros([outF, h.r], { requiresGrad: trainable });
        A.name = `base_model.model.${module}.lora_A.${name}.weight`;
        B.name = `base_model.model.${module}.lora_B.${name}.weight`;
        layers.set(module, { module, A: A.keep(), B: B.keep(), ...h });
      }
      for (const p of savedParams) {
        const orig = this.originals.get(p) ?? this.model.param(p);
        const copy = empty(orig.shape).keep();
        copyBuffer(orig.storage.buffer, 0, copy.storage.buffer, 0, orig.bytes);
        copy.requiresGrad = trainable;
        copies.set(p, copy);
      }
    } catch (e) {
      for (const l of layers.values()) {
        l.A.dispose();
        l.B.dispose();
      }
      for (const t of copies.values()) t.dispose();
      throw e;
    }
    for (const p of savedParams) {
      if (!this.originals.has(p)) {
        const orig = this.model.param(p);
        orig.requiresGrad = false;
        this.originals.set(p, orig);
      }
    }
    const adapter: LoraAdapter = {
      name,
      config: c,
      trainable,
      savedTargetModules: saved,
      layers,
      saved: copies,
      rng: new Generator((seed ^ 0x5bd1e995) >>> 0),
    };
    this.adapters.set(name, adapter);
    if (this.activeAdapter === null) this.activeAdapter = name;
    this.syncSaved();
    return adapter;
  }

  /** Makes `name` the active adapter. */
  setAdapter(name: string): void {
    this.adapter(name);
    this.activeAdapter = name;
    this.syncSaved();
  }

  /** The base model alone until `enableAdapters()`. */
  disableAdapters(): void {
    this.enabled = false;
    this.syncSaved();
  }

  enableAdapters(): void {
    this.enabled = true;
    this.syncSaved();
  }

  /** Runs fn (sync or async) with adapters disabled, restoring the previous state afterwards. */
  withAdaptersDisabled<T>(fn: () => T): T {
    const prev = this.enabled;
    this.enabled = false;
    this.syncSaved();
    return around(fn, () => {
      this.enabled = prev;
      this.syncSaved();
    });
  }

  /** Runs fn (sync or async) with adapter `name` active, restoring the previous active adapter afterwards. */
  withAdapter<T>(name: string, fn: () => T): T {
    this.adapter(name);
    const prev = this.activeAdapter;
    const prevEnabled = this.enabled;
    this.activeAdapter = name;
    this.enabled = true;
    this.syncSaved();
    return around(fn, () => {
      this.activeAdapter = prev;
      this.enabled = prevEnabled;
      this.syncSaved();
    });
  }

  /** Removes an adapter and frees its tensors (the active one passes to the first remaining adapter). */
  deleteAdapter(name: string): void {
    const a = this.adapter(name);
    this.adapters.delete(name);
    if (this.activeAdapter === name) this.activeAdapter = this.adapters.keys().next().value ?? null;
    this.syncSaved();
    const free = (t: Tensor) => {
      t.grad?.dispose();
      t.grad = null;
      t.dispose();
    };
    for (const l of a.layers.values()) {
      free(l.A);
      free(l.B);
    }
    for (const t of a.saved.values()) free(t);
    // an original that no adapter copies any more is a plain (registered, frozen) parameter again
    for (const p of [...this.originals.keys()]) {
      if (![...this.adapters.values()].some((x) => x.saved.has(p))) this.originals.delete(p);
    }
  }

  /** Registers, for every modules_to_save parameter, the active adapter's copy or the original. */
  private syncSaved(): void {
    const active = this.enabled && this.activeAdapter !== null
      ? this.adapters.get(this.activeAdapter)
      : undefined;
    for (const [p, orig] of this.originals) this.model.register(p, active?.saved.get(p) ?? orig);
  }

  /** The hook's work for one projection: base, plus the active adapter's branch when it adapts this module. */
  project(x: Tensor, module: string, base: () => Tensor): Tensor {
    if (!this.enabled || this.activeAdapter === null) return base();
    const a = this.adapters.get(this.activeAdapter)!;
    const l = a.layers.get(module);
    if (!l) return base();
    const p = a.config.loraDropout;
    const drop = p > 0 && this.dropoutEnabled && this.model.training;
    if (drop && this.model.gradientCheckpointing) {
      // a checkpointed layer is recomputed in backward, which would draw other masks than the forward used
      throw new LoraError(
        `adapter "${a.name}" has lora_dropout ${p}, which webdpo cannot combine with gradient checkpointing ` +
          `(the recomputed layers would use other dropout masks); set lora_dropout to 0, keep TRL's ` +
          `disable_dropout (dropoutEnabled = false), or turn gradient checkpointing off`,
      );
    }
    const xin = drop ? loraDropout(x, p, a.rng.nextU32()) : x;
    // the branch accumulated into the base output's own buffer (lora_fused.ts): no extra [rows, out] tensors
    return loraAddInto(base(), xin, l.A, l.B, l.scaling);
  }

  /** The active adapter's named trainable tensors (PEFT's in-memory names), plus base parameters left trainable. */
  namedTrainableParameters(): [string, Tensor][] {
    const out: [string, Tensor][] = [];
    const a = this.activeAdapter === null ? undefined : this.adapters.get(this.activeAdapter);
    if (a?.trainable) {
      for (const l of a.layers.values()) out.push([l.A.name!, l.A], [l.B.name!, l.B]);
      for (const [p, t] of a.saved) {
        const mod = p.slice(0, p.lastIndexOf("."));
        out.push([`base_model.model.${mod}.modules_to_save.${a.name}${p.slice(p.lastIndexOf("."))}`, t]);
      }
    }
    const copies = new Set<Tensor>();
    for (const x of this.adapters.values()) for (const t of x.saved.values()) copies.add(t);
    for (const [n, t] of this.model.namedParameters()) if (t.requiresGrad && !copies.has(t)) out.push([n, t]);
    return out;
  }

  /** The tensors an optimizer should update: see namedTrainableParameters. */
  trainableParameters(): Tensor[] {
    return this.namedTrainableParameters().map(([, t]) => t);
  }

  /** Number of trainable elements and of all elements (base + every adapter), as PEFT's print_trainable_parameters. */
  parameterCounts(): { trainable: number; total: number } {
    let total = this.model.numParameters();
    for (const a of this.adapters.values()) for (const l of a.layers.values()) total += l.A.size + l.B.size;
    for (const q of int8BaseOf(this.model)?.weights.values() ?? []) total += q.inFeatures * q.outFeatures;
    const trainable = this.trainableParameters().reduce((s, t) => s + t.size, 0);
    return { trainable, total };
  }

  /**
   * Folds adapter `name` (default: the active one) into the base weights — W += s·B·A for [out, in] weights,
   * W += s·Aᵀ·Bᵀ for Conv1D [in, out] weights — makes its modules_to_save copies the model's parameters, and
   * deletes it. When no adapter remains, LoRA is removed from the model (`unload`).
   */
  merge(name?: string): void {
    const a = this.adapter(name);
    const int8 = int8BaseOf(this.model);
    for (const m of a.layers.keys()) {
      if (int8?.weights.has(m)) {
        throw new LoraError(
          `cannot merge adapter "${a.name}" into ${m}: its base weight is int8-quantised; call dequantizeBase first`,
        );
      }
    }
    const layout = weightLayout(this.model);
    noGrad(() => {
      for (const l of a.layers.values()) {
        const w = this.model.param(`${l.module}.weight`);
        if (layout === "out_in") matmulInto(w, l.B, l.A, { accumulate: true, alpha: l.scaling });
        else matmulInto(w, l.A, l.B, { transA: true, transB: true, accumulate: true, alpha: l.scaling });
      }
    });
    for (const [p, t] of a.saved) {
      const merged = empty(t.shape).keep();
      copyBuffer(t.storage.buffer, 0, merged.storage.buffer, 0, t.bytes);
      merged.requiresGrad = false;
      const old = this.originals.get(p)!;
      this.originals.set(p, merged);
      this.model.register(p, merged);
      old.dispose();
    }
    this.deleteAdapter(a.name);
    if (this.adapters.size === 0) this.unload();
  }

  /**
   * Removes LoRA from the model: every adapter is freed, modules_to_save originals are registered again, the base
   * parameters get back the requiresGrad flags they had before `applyLora`, and the adapter hook slot is
   * emptied. The LoraModel is unusable afterwards.
   */
  unload(): void {
    for (const name of [...this.adapters.keys()]) this.deleteAdapter(name);
    if (this.flags) {
      for (const [n, t] of this.model.namedParameters()) {
        const f = this.flags.get(n);
        if (f !== undefined) t.requiresGrad = f;
      }
    }
    this.flags = null;
    this.model.linearHooks.remove("adapter", this);
  }

  /** Takes the adapter hook slot and freezes the base (attachLora). */
  attach(): void {
    this.model.linearHooks.install("adapter", this);
    this.flags = new Map(this.model.namedParameters().map(([n, t]) => [n, t.requiresGrad]));
    for (const t of this.model.parameters()) t.requiresGrad = false;
  }
}

export interface ApplyLoraOptions extends AddAdapterOptions {
  /** Name of the first adapter (default "default", as PEFT). */
  adapterName?: string;
}

/**
 * Puts LoRA on a model: freezes every base parameter and adds a first adapter (PEFT's get_peft_model). Returns the
 * model's LoraModel (also found later with `loraOf(model)`).
 */
export function applyLora(
  model: CausalLM,
  config: LoraConfig | LoraConfigInput = {},
  opts: ApplyLoraOptions = {},
): LoraModel {
  const lora = attachLora(model);
  try {
    lora.addAdapter(opts.adapterName ?? "default", config, opts);
  } catch (e) {
    lora.unload();
    throw e;
  }
  return lora;
}

/** Attaches an empty LoraModel (base frozen, no adapter yet); used by applyLora and loadAdapter. */
export function attachLora(model: CausalLM): LoraModel {
  if (loraOf(model)) {
    throw new LoraError("this model already has LoRA adapters; use addAdapter / loadAdapter with a new name");
  }
  if (model.linearHooks.adapter) {
    throw new LoraError(
      "the model's adapter projection hook is taken by another hook; remove it before adding LoRA adapters",
    );
  }
  const lora = new LoraModel(model);
  lora.attach();
  return lora;
}

/** The model's LoraModel, or null when it has no LoRA. */
export function loraOf(model: CausalLM): LoraModel | null {
  const a = model.linearHooks.adapter;
  return a instanceof LoraModel ? a : null;
}

function need(model: CausalLM | LoraModel): LoraModel {
  if (model instanceof LoraModel) return model;
  const l = loraOf(model);
  if (!l) throw new LoraError("this model has no LoRA adapters (applyLora or loadAdapter first)");
  return l;
}

/** Runs fn with the model's adapters disabled (the bare base); a model without LoRA just runs fn. */
export function withAdaptersDisabled<T>(model: CausalLM, fn: () => T): T {
  const l = loraOf(model);
  return l ? l.withAdaptersDisabled(fn) : fn();
}

/** Runs fn with adapter `name` active. */
export function withAdapter<T>(model: CausalLM, name: string, fn: () => T): T {
  return need(model).withAdapter(name, fn);
}

/** Makes adapter `name` the active one. */
export function setAdapter(model: CausalLM | LoraModel, name: string): void {
  need(model).setAdapter(name);
}

/** Folds an adapter into the base weights and removes it (see LoraModel.merge). */
export function mergeAdapter(model: CausalLM | LoraModel, name?: string): void {
  need(model).merge(name);
}

/** Removes LoRA from a model (see LoraModel.unload); nothing happens when it has none. */
export function unloadLora(model: CausalLM): void {
  loraOf(model)?.unload();
}

/** The tensors an optimizer should update: the active adapter's (LoRA) or the model's trainable parameters. */
export function trainableParametersOf(model: CausalLM): Tensor[] {
  return loraOf(model)?.trainableParameters() ?? model.trainableParameters();
}

/** Named variant of trainableParametersOf. */
export function namedTrainableParametersOf(model: CausalLM): [string, Tensor][] {
  return loraOf(model)?.namedTrainableParameters() ??
    model.namedParameters().filter(([, t]) => t.requiresGrad);
}
