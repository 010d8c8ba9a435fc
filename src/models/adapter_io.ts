/**
 * LoRA adapters as PEFT folders: `adapter_config.json` + `adapter_model.safetensors`, the files PEFT's
 * `save_pretrained` writes and `PeftModel.from_pretrained` / `load_adapter` reads.
 *
 * Tensor names are PEFT's saved names: `base_model.model.<module>.lora_A.weight` [r, in] and `.lora_B.weight`
 * [out, r] (the adapter name is not part of saved names), and `base_model.model.<param>` for modules_to_save
 * (e.g. `base_model.model.lm_head.weight`). GPT-2's Conv1D modules use the same [r, in] / [out, r] shapes, with
 * `fan_in_fan_out: true` in the config, as PEFT writes it.
 */
import { upload } from "../gpu/queue.ts";
import { files } from "../io/platform.ts";
import { attachLora, LoraError, LoraModel, loraOf, weightLayout } from "../nn/lora.ts";
import { type LoraConfig, loraConfigFromPeft, peftConfigJson } from "../nn/lora_config.ts";
import type { CausalLM } from "./causal_lm.ts";
import {
  checkLoadable,
  openSafetensors,
  readSafetensorsHeader,
  readTensor,
  type WritableTensor,
  writeSafetensors,
} from "./safetensors.ts";
import { exists } from "../util/fs.ts";

export const ADAPTER_CONFIG = "adapter_config.json";
export const ADAPTER_WEIGHTS = "adapter_model.safetensors";

function lora(model: CausalLM | LoraModel): LoraModel {
  if (model instanceof LoraModel) return model;
  const l = loraOf(model);
  if (!l) throw new LoraError("this model has no LoRA adapters to save");
  return l;
}

export interface SaveAdapterOptions {
  /** Storage dtype of the tensors (default F32). */
  dtype?: "F32" | "BF16";
}

/** The saved tensor name → [shape, tensor] of an adapter, as PEFT names them. */
function savedTensors(l: LoraModel, name: string | undefined) {
  const a = l.adapter(name);
  const out = new Map<string, { shape: number[]; get: () => Promise<Float32Array> }>();
  for (const layer of a.layers.values()) {
    out.set(`base_model.model.${layer.module}.lora_A.weight`, {
      shape: [...layer.A.shape],
      get: () => layer.A.toArray(),
    });
    out.set(`base_model.model.${layer.module}.lora_B.weight`, {
      shape: [...layer.B.shape],
      get: () => layer.B.toArray(),
    });
  }
  for (const [p, t] of a.saved) {
    out.set(`base_model.model.${p}`, {
      shape: [...t.shape],
      get: () => t.toArray(),
    });
  }
  return { adapter: a, tensors: out };
}

/**
 * Writes adapter `name` (default: the active one) as a PEFT folder: `dir/adapter_config.json` and
 * `dir/adapter_model.safetensors`.
 */
export async function saveAdapter(
  model: CausalLM | LoraModel,
  dir: string,
  name?: string,
  opts: SaveAdapterOptions = {},
): Promise<void> {
  const l = lora(model);
  const { adapter, tensors } = savedTensors(l, name);
  const m = l.model;
  const raw = m.config.raw as Record<string, unknown>;
  const base = adapter.config.baseModelNameOrPath ??
    (typeof raw._name_or_path === "string" && raw._name_or_path ? raw._name_or_path : null) ??
    m.sourceDir ?? null;
  const json = peftConfigJson(adapter.config, {
    targetModules: adapter.savedTargetModules,
    fanInFanOut: weightLayout(m) === "in_out",
    baseModelNameOrPath: base,
  });
  await files().mkdir(dir);
  await files().writeText(`${dir}/${ADAPTER_CONFIG}`, JSON.stringify(json, null, 2) + "\n");
  const list: WritableTensor[] = [...tensors].map(([n, t]) => ({ name: n, shape: t.shape, data: t.get }));
  await writeSafetensors(`${dir}/${ADAPTER_WEIGHTS}`, list, { dtype: opts.dtype });
}

/** Reads a PEFT `adapter_config.json` into a LoraConfig; errors name the file and the key. */
export async function readAdapterConfig(path: string): Promise<LoraConfig> {
  let json: unknown;
  try {
    json = JSON.parse(await files().readText(path));
  } catch (e) {
    throw new LoraError(`${path}: not valid JSON (${e instanceof Error ? e.message : e})`);
  }
  return loraConfigFromPeft(json as Record<string, unknown>, path);
}

export interface LoadAdapterOptions {
  /** Whether the loaded adapter is trained (requires gradients). Default false, as PEFT's `is_trainable`. */
  isTrainable?: boolean;
  /** Make it the active adapter (default: only when it is the model's first). */
  activate?: boolean;
}

/**
 * Loads a PEFT LoRA folder into a model as adapter `name` (default "default"), putting LoRA on the model first
 * when it has none (base frozen). Every tensor is checked against the model before anything is allocated: a
 * missing, unexpected or misshapen tensor, or one in a dtype webdpo cannot load, is an error naming the tensor
 * and the file, and the model is left as it was.
 */
export async function loadAdapter(
  model: CausalLM | LoraModel,
  dir: string,
  name = "default",
  opts: LoadAdapterOptions = {},
): Promise<LoraModel> {
  const cfgPath = `${dir}/${ADAPTER_CONFIG}`;
  const wPath = `${dir}/${ADAPTER_WEIGHTS}`;
  if (!(await exists(cfgPath))) {
    throw new LoraError(`${cfgPath}: missing (a PEFT adapter folder holds adapter_config.json)`);
  }
  if (!(await exists(wPath))) {
    const bin = await exists(`${dir}/adapter_model.bin`);
    throw new LoraError(
      `${wPath}: missing` +
        (bin
          ? "; only adapter_model.bin (pickle) was found: re-save the adapter with PEFT's " +
            "save_pretrained(safe_serialization=True)"
          : ""),
    );
  }
  const cfg = await readAdapterConfig(cfgPath);
  const header = await readSafetensorsHeader(wPath);
  const m = model instanceof LoraModel ? model.model : model;
  const existing = loraOf(m);
  existing?.checkNewAdapterName(name);
  // every tensor against the model first (names, shapes, dtypes): nothing is allocated for a file that does not
  // fit, and what is allocated after is no more than the file holds (its header was checked against its size)
  let planned: Map<string, number[]>;
  try {
    planned = (existing ?? new LoraModel(m)).plannedTensors(cfg);
  } catch (e) {
    throw e instanceof LoraError ? new LoraError(`${cfgPath}: ${e.message}`) : e;
  }
  for (const [n, shape] of planned) {
    const e = header.byName.get(n);
    if (!e) {
      throw new LoraError(
        `${wPath}: missing tensor "${n}" (shape [${shape}]) that adapter_config.json's target_modules / ` +
          `modules_to_save imply for this model`,
      );
    }
    if (e.shape.join() !== shape.join()) {
      throw new LoraError(
        `${wPath}: tensor "${n}" has shape [${e.shape}], but this model and adapter_config.json (r, ` +
          `rank_pattern) need [${shape}]`,
      );
    }
  }
  for (const e of header.tensors) {
    if (!planned.has(e.name)) {
      throw new LoraError(
        `${wPath}: unexpected tensor "${e.name}" (it matches no LoRA module or modules_to_save entry of ` +
          `adapter_config.json for this model)`,
      );
    }
    checkLoadable(header, e);
  }
  const l = existing ?? attachLora(m);
  let added = false;
  try {
    try {
      l.addAdapter(name, cfg, { trainable: opts.isTrainable ?? false, uninitialised: true });
    } catch (e) {
      throw e instanceof LoraError ? new LoraError(`${cfgPath}: ${e.message}`) : e;
    }
    added = true;
    const a = l.adapter(name);
    const dest = new Map<string, { buffer: GPUBuffer }>();
    for (const layer of a.layers.values()) {
      dest.set(`base_model.model.${layer.module}.lora_A.weight`, layer.A.storage);
      dest.set(`base_model.model.${layer.module}.lora_B.weight`, layer.B.storage);
    }
    for (const [p, t] of a.saved) dest.set(`base_model.model.${p}`, t.storage);
    const f = await openSafetensors(wPath);
    try {
      for (const e of header.tensors) {
        const host = await readTensor(f, header, e);
        upload(dest.get(e.name)!.buffer, host.data);
      }
    } finally {
      await f.close();
    }
  } catch (e) {
    if (added) l.deleteAdapter(name);
    if (!existing) l.unload();
    throw e;
  }
  if (opts.activate) l.setAdapter(name);
  return l;
}
