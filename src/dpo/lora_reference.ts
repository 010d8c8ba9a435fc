/**
 * DPOTrainer with LoRA adapters (PEFT): how the trainer sets a LoRA run up, and TRL's three reference-model options
 * when the policy carries adapters.
 *
 * | option | what the user passes | the reference log-probs |
 * |---|---|---|
 * | 1 | a `refModel` (another instance, e.g. with the adapter loaded frozen) | that model, as any explicit reference |
 * | 2 | no `refModel`, a model with adapters (or `peftConfig`) | the policy with its adapters disabled (the base) |
 * | 3 | `ref_adapter_name` (the adapter loaded twice under two names) | the policy with that adapter active |
 *
 * Options 2 and 3 hold no second copy of the weights: the reference is a context around the policy's own forward
 * (TRL's `null_ref_context`), run in eval mode (no LoRA dropout) and without recording gradients.
 *
 * The rules, as TRL's DPOTrainer: `peftConfig` together with a `refModel` is an error unless `force_use_ref_model`;
 * TR-DPO (`sync_ref_model`) needs a separate reference model, so options 2 and 3 refuse it (and webdpo refuses
 * it with a LoRA policy altogether: the policy's weights are base + adapter, which do not mix into a reference's
 * parameters one to one). An int8 base (`quantizeBase`) without an adapter has nothing to train.
 *
 * Dropout: `lora_dropout` applies in training unless `disable_dropout` (TRL's default true) turns it off. The masks
 * of each micro-batch come from a seed derived from (seed, global step, micro-batch), drawn in layer order, so a
 * resumed run draws exactly the masks the uninterrupted run drew.
 *
 * For `webdpo train`, `loadPolicy` / `loadReference` read `model_name_or_path` / `ref_model_name_or_path` when
 * they name a PEFT adapter folder (adapter_config.json): the base model its `base_model_name_or_path` names, with
 * the adapter on it — trainable, and loaded a second time as `ref_adapter_name` for option 3 — or frozen for the
 * reference of option 1.
 *
 * @module
 */
import { WebDPOError } from "../gpu/errors.ts";
import { files } from "../io/platform.ts";
import { isNotADirectory, isNotFound } from "../io/types.ts";
import { ADAPTER_CONFIG, loadAdapter } from "../models/adapter_io.ts";
import type { CausalLM } from "../models/causal_lm.ts";
import { loadModel } from "../models/loader.ts";
import {
  applyLora,
  type LoraModel,
  loraOf,
  setAdapter,
  unloadLora,
  withAdapter,
  withAdaptersDisabled,
} from "../nn/lora.ts";
import { type LoraConfig, loraConfig, type LoraConfigInput, LoraError } from "../nn/lora_config.ts";
import { disposeQuantized, quantizeBase, quantizedModules } from "../nn/lora_quant.ts";
import type { Tensor } from "../tensor/tensor.ts";
import type { DPOConfig } from "./config.ts";
import { around } from "../util/around.ts";

/** Where the reference log-probs come from. */
export type ReferenceKind =
  /** reference_free: none (every reference log-prob is 0). */
  | "none"
  /** An explicit `refModel` (LoRA option 1), or the frozen copy the trainer makes of a plain policy. */
  | "model"
  /** LoRA option 2: the policy with its adapters disabled. */
  | "adapters_disabled"
  /** LoRA option 3: the policy with `ref_adapter_name` active. */
  | "adapter";

/** The LoRA side of a trainer: which adapter trains and which (if any) is the reference. */
export interface LoraSetup {
  lora: LoraModel;
  /** The adapter being trained (`model_adapter_name`, else the model's active adapter). */
  trainAdapter: string;
  /** Option 3's reference adapter, or null. */
  refAdapter: string | null;
  /** Whether the trainer put LoRA on the model itself (from `peftConfig`). */
  applied: boolean;
}

/** A LoRA combination the trainer cannot run (thrown from DPOTrainer's constructor). */
export class LoraTrainingError extends WebDPOError {}

/**
 * Validates a run's LoRA options and prepares the model: puts LoRA on it from `peftConfig` (PEFT's initialisation,
 * seeded by `args.seed`), makes `model_adapter_name` active, sets the adapters' dropout from `disable_dropout`.
 * Returns null for a run without LoRA. Throws a LoraTrainingError saying what to change.
 */
export function setupLora(
  model: CausalLM,
  refModel: CausalLM | null,
  peftConfig: LoraConfig | LoraConfigInput | null | undefined,
  args: DPOConfig,
): LoraSetup | null {
  const fail = (msg: string): never => {
    throw new LoraTrainingError(msg);
  };
  const hasPeftConfig = peftConfig !== undefined && peftConfig !== null;
  let config: LoraConfig | null = null;
  if (hasPeftConfig) {
    const existing = loraOf(model);
    if (existing) {
      fail(
        `peftConfig was given, but the model already has LoRA adapters (${
          [...existing.adapters.keys()].join(", ")
        }); ` +
          "pass either a plain model with peftConfig, or the model with its adapters and no peftConfig (to train a " +
          "new adapter on top of the current one, fold it in first with mergeAdapter(model))",
      );
    }
    if (refModel && !args.forceUseRefModel) {
      fail(
        "you passed both a refModel and a peftConfig; a LoRA policy needs no reference model (its adapter-disabled " +
          "self is the reference, without a second copy of the weights): pass no refModel, or set " +
          "force_use_ref_model to use the given one",
      );
    }
    try {
      config = loraConfig(peftConfig as LoraConfigInput);
    } catch (e) {
      throw e instanceof LoraError ? new LoraTrainingError(`peftConfig: ${e.message}`) : e;
    }
  }
  const quantized = quantizedModules(model);
  if (!hasPeftConfig && !loraOf(model)) {
    if (quantized.length) {
      fail(
        `the model's base is int8-quantised (${quantized.length} projections), which is frozen: there is nothing to ` +
          "train without a LoRA adapter; pass peftConfig (or use_peft: true)",
      );
    }
    if (args.modelAdapterName !== null || args.refAdapterName !== null) {
      fail(
        "model_adapter_name / ref_adapter_name name LoRA adapters, but the model has none: load them with " +
          "loadAdapter(model, dir, name), or pass peftConfig",
      );
    }
    return null;
  }
  // checks that do not depend on the adapters come before the model is changed
  if (args.syncRefModel) {
    fail(
      refModel
        ? "sync_ref_model (TR-DPO) with a LoRA policy is not supported: the policy's weights are a frozen base plus " +
          "an adapter, which do not mix into the reference model's parameters one to one; train without " +
          "sync_ref_model, or merge the adapter (mergeAdapter) and train the full model"
        : "sync_ref_model (TR-DPO) needs a separate reference model, and a LoRA policy without refModel uses " +
          "itself (adapters disabled, or ref_adapter_name) as the reference, as in TRL; turn sync_ref_model off",
    );
  }
  if (args.refAdapterName !== null && refModel) {
    fail(
      `ref_adapter_name '${args.refAdapterName}' and a refModel both name the reference; pass one of them`,
    );
  }
  if (args.refAdapterName !== null && args.referenceFree) {
    fail(
      `reference_free uses no reference, so ref_adapter_name '${args.refAdapterName}' has no use; remove one`,
    );
  }
  let applied = false;
  if (config) {
    try {
      applyLora(model, config, { seed: args.seed, adapterName: args.modelAdapterName ?? "default" });
    } catch (e) {
      throw e instanceof LoraError ? new LoraTrainingError(`peftConfig: ${e.message}`) : e;
    }
    applied = true;
  }
  const lora = loraOf(model)!;
  const names = () => [...lora.adapters.keys()].join(", ");
  try {
    if (args.modelAdapterName !== null && !lora.adapters.has(args.modelAdapterName)) {
      fail(`model_adapter_name: the model has no adapter '${args.modelAdapterName}' (adapters: ${names()})`);
    }
    const trainAdapter = args.modelAdapterName ?? lora.activeAdapter;
    if (trainAdapter === null) fail("the model's LoRA holds no adapter to train");
    const refAdapter = args.refAdapterName;
    if (refAdapter !== null) {
      if (!lora.adapters.has(refAdapter)) {
        fail(`ref_adapter_name: the model has no adapter '${refAdapter}' (adapters: ${names()})`);
      }
      if (refAdapter === trainAdapter) {
        fail(
          `ref_adapter_name and the trained adapter are both '${refAdapter}'; load the reference adapter a second ` +
            `time under another name (loadAdapter(model, dir, "reference"))`,
        );
      }
    }
    if (!lora.adapter(trainAdapter).trainable) {
      fail(
        `the adapter '${trainAdapter}' being trained is frozen; load it with loadAdapter(model, dir, ` +
          `'${trainAdapter}', { isTrainable: true })`,
      );
    }
    // every check passed: only now is the model changed
    setAdapter(lora, trainAdapter!);
    lora.enableAdapters();
    // TRL's disable_dropout sets every dropout to 0, LoRA's included
    lora.dropoutEnabled = !args.disableDropout;
    return { lora, trainAdapter: trainAdapter!, refAdapter, applied };
  } catch (e) {
    if (applied) lora.unload();
    throw e;
  }
}

/**
 * Runs fn (sync or async) with the policy acting as the reference of options 2 / 3: eval mode (no dropout), and its
 * adapters disabled (refAdapter null) or `refAdapter` active. Everything is restored afterwards.
 */
export function inReference<T>(model: CausalLM, refAdapter: string | null, fn: () => T): T {
  const wasTraining = model.training;
  model.eval();
  return around(
    () => (refAdapter === null ? withAdaptersDisabled(model, fn) : withAdapter(model, refAdapter, fn)),
    () => model.train(wasTraining),
  );
}

/** A u32 from a few integers (a counter-based hash, so the same inputs always give the same seed). */
export function mixSeed(...xs: number[]): number {
  let h = 0x811c9dc5;
  for (const x of xs) {
    let v = Math.floor(x) >>> 0;
    for (let k = 0; k < 2; k++) {
      h = Math.imul(h ^ v, 0x01000193) >>> 0;
      h = (h ^ (h >>> 15)) >>> 0;
      h = Math.imul(h, 0x2c1b3c6d) >>> 0;
      h = (h ^ (h >>> 12)) >>> 0;
      v = Math.floor(x / 0x100000000) >>> 0;
    }
  }
  return h >>> 0;
}

/**
 * Seeds the trained adapter's dropout masks for one training micro-batch: a function of (seed, global step,
 * micro-batch), each layer drawing its mask seed in order from it — the same masks on a resumed run.
 */
export function seedLoraDropout(s: LoraSetup, seed: number, globalStep: number, micro: number): void {
  s.lora.adapter(s.trainAdapter).rng.seed(mixSeed(seed, globalStep, micro, 0x10a));
}

/**
 * The trained adapter's tensors under the names of its PEFT file (`base_model.model.<module>.lora_A.weight`, ...,
 * `base_model.model.<param>` for modules_to_save): what a checkpoint's adapter_model.safetensors holds.
 */
export function adapterFileTensors(s: LoraSetup): [string, Tensor][] {
  const a = s.lora.adapter(s.trainAdapter);
  const out: [string, Tensor][] = [];
  for (const l of a.layers.values()) {
    out.push([`base_model.model.${l.module}.lora_A.weight`, l.A], [
      `base_model.model.${l.module}.lora_B.weight`,
      l.B,
    ]);
  }
  for (const [p, t] of a.saved) out.push([`base_model.model.${p}`, t]);
  return out;
}

/**
 * The tensors that make up the reference of options 2 / 3 (the frozen base, plus the reference adapter's), whose
 * norm a checkpoint records so that a resume with another base is noticed.
 */
export function referenceTensors(model: CausalLM, s: LoraSetup): Tensor[] {
  const base = model.namedParameters().filter(([, t]) => !t.requiresGrad).map(([, t]) => t);
  if (s.refAdapter === null) return base;
  const a = s.lora.adapter(s.refAdapter);
  return [...base, ...[...a.layers.values()].flatMap((l) => [l.A, l.B]), ...a.saved.values()];
}

/** The base model folder (or hub id) a PEFT adapter folder names, or null when `dir` is not an adapter folder. */
export async function adapterBase(dir: string): Promise<string | null> {
  let text: string;
  try {
    text = await files().readText(`${dir}/${ADAPTER_CONFIG}`);
  } catch (e) {
    if (isNotFound(e) || isNotADirectory(e)) return null;
    throw e;
  }
  let json: Record<string, unknown>;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new LoraTrainingError(
      `${dir}/${ADAPTER_CONFIG}: not valid JSON (${e instanceof Error ? e.message : e})`,
    );
  }
  const base = json.base_model_name_or_path;
  if (typeof base !== "string" || base === "") {
    throw new LoraTrainingError(
      `${dir}/${ADAPTER_CONFIG} names no base model (base_model_name_or_path); set it to the base model's folder ` +
        `or hub id`,
    );
  }
  return base;
}

export interface LoadForTrainingOptions {
  /** Hub revision of the model (or of the adapter's base). */
  revision?: string;
  /** int8_base: quantise the base's projections to int8 (frozen) after loading. */
  int8Base?: boolean;
}

async function loadBase(
  path: string,
  opts: LoadForTrainingOptions,
  requiresGrad: boolean,
): Promise<CausalLM> {
  const model = await loadModel(path, { revision: opts.revision, requiresGrad });
  if (opts.int8Base) {
    try {
      await quantizeBase(model);
    } catch (e) {
      disposeQuantized(model);
      model.dispose();
      throw e;
    }
  }
  return model;
}

function release(model: CausalLM): void {
  unloadLora(model);
  disposeQuantized(model);
  model.dispose();
}

/**
 * The policy of `webdpo train` from `model_name_or_path`: a model folder or hub id as it is, or a PEFT adapter
 * folder — its base with the adapter loaded trainable and active as `model_adapter_name` (default "default"), and
 * loaded again, frozen, as `ref_adapter_name` when that is set (option 3).
 */
export async function loadPolicy(
  path: string,
  args: Pick<DPOConfig, "modelAdapterName" | "refAdapterName">,
  opts: LoadForTrainingOptions = {},
): Promise<CausalLM> {
  const base = await adapterBase(path);
  if (base === null) return await loadBase(path, opts, true);
  const model = await loadBase(base, opts, true);
  try {
    const name = args.modelAdapterName ?? "default";
    await loadAdapter(model, path, name, { isTrainable: true, activate: true });
    if (args.refAdapterName !== null) await loadAdapter(model, path, args.refAdapterName);
  } catch (e) {
    release(model);
    throw e;
  }
  return model;
}

/**
 * The reference of `webdpo train` from `ref_model_name_or_path`: a model folder or hub id, or a PEFT adapter
 * folder — its base with the adapter loaded frozen (option 1). Nothing in it requires gradients.
 */
export async function loadReference(path: string, opts: LoadForTrainingOptions = {}): Promise<CausalLM> {
  const base = await adapterBase(path);
  const model = await loadBase(base ?? path, opts, false);
  if (base === null) return model;
  try {
    await loadAdapter(model, path, "default");
  } catch (e) {
    release(model);
    throw e;
  }
  return model;
}
