/**
 * What a DPO checkpoint holds besides the loop's files (src/train/checkpoint_state.ts).
 *
 * The policy: a Hugging Face model folder for full fine-tuning, a PEFT adapter folder (adapter_config.json,
 * adapter_model.safetensors) for a LoRA run; resuming loads it in place and refuses a checkpoint of the other
 * kind, saying how the run was trained. The reference side: bco_pair's running mean (bco_state.json), TR-DPO's
 * reference weights once sync_ref_model has changed them (ref_model.safetensors), and otherwise the reference's
 * weight norm (webdpo_state.json's reference_norm), so that resuming with another reference model warns.
 */
import { ADAPTER_CONFIG, ADAPTER_WEIGHTS, saveAdapter } from "../models/adapter_io.ts";
import type { CausalLM } from "../models/causal_lm.ts";
import { saveModel } from "../models/loader.ts";
import type { Tokenizer } from "../tokenizer/tokenizer.ts";
import {
  CHECKPOINT_FILES,
  CheckpointError,
  countField,
  loadTensorsInto,
  numberField,
  readJson,
  writeJson,
  writeTensors,
} from "../train/checkpoint.ts";
import type { CheckpointExtras } from "../train/options.ts";
import { type TensorSource, weightNorm } from "../train/weights.ts";
import type { BcoRunningMean } from "./loss.ts";
import { TrainingError } from "../train/state.ts";
import { exists } from "../util/fs.ts";
import { adapterFileTensors, type LoraSetup } from "./lora_reference.ts";

/** Writes the trained policy to `dir`: the model, or the trained adapter; the tokenizer files alongside. */
export async function writePolicy(
  model: CausalLM,
  lora: LoraSetup | null,
  dir: string,
  tokenizer: Tokenizer | undefined,
): Promise<void> {
  if (lora) {
    await saveAdapter(model, dir, lora.trainAdapter);
    if (tokenizer) await tokenizer.save(dir);
  } else {
    await saveModel(model, dir, { tokenizer });
  }
}

/** Loads a checkpoint's policy weights in place: the model, or for a LoRA run the trained adapter. */
export async function restorePolicy(
  model: CausalLM,
  lora: LoraSetup | null,
  dir: string,
  print: (line: string) => void,
): Promise<void> {
  const isAdapter = await exists(`${dir}/${ADAPTER_CONFIG}`);
  if (!lora) {
    if (isAdapter) {
      throw new TrainingError(
        `${dir} holds a LoRA adapter (${ADAPTER_CONFIG}), but this run trains the full model; resume it with the ` +
          `same LoRA setup (peftConfig, or use_peft: true and the same lora_* keys)`,
      );
    }
    await loadTensorsInto(`${dir}/${CHECKPOINT_FILES.model}`, model.namedParameters(), "the policy model");
    return;
  }
  if (!isAdapter) {
    throw new TrainingError(
      `${dir} holds a full model, but this run trains a LoRA adapter; resume it without LoRA (no peftConfig / ` +
        `use_peft), as it was trained`,
    );
  }
  const saved = await readJson(`${dir}/${ADAPTER_CONFIG}`);
  const cfg = lora.lora.adapter(lora.trainAdapter).config;
  const now: Record<string, unknown> = {
    lora_alpha: cfg.loraAlpha,
    lora_dropout: cfg.loraDropout,
    use_rslora: cfg.useRslora,
    rank_pattern: cfg.rankPattern,
    alpha_pattern: cfg.alphaPattern,
  };
  const differ = Object.keys(now).filter((k) =>
    k in saved && JSON.stringify(saved[k]) !== JSON.stringify(now[k])
  );
  if (differ.length) {
    print(
      `webdpo: warning: the adapter being trained has a different ${
        differ.join(", ")
      } than the checkpoint's ` +
        `(${dir}/${ADAPTER_CONFIG})`,
    );
  }
  await loadTensorsInto(`${dir}/${ADAPTER_WEIGHTS}`, adapterFileTensors(lora), "the LoRA adapter");
}

/** The reference side of a run, as checkpoints see it. */
export interface ReferenceState {
  bco: BcoRunningMean | null;
  refModel: CausalLM | null;
  /** Whether TR-DPO has changed the reference's weights. */
  refChanged: boolean;
  /** The tensors whose norm identifies the reference (null: no reference). */
  referenceParts: TensorSource[] | null;
  print: (line: string) => void;
}

/** bco_pair's running mean, TR-DPO's reference weights once synced, the reference's norm otherwise. */
export async function referenceExtras(r: ReferenceState): Promise<CheckpointExtras> {
  const F = CHECKPOINT_FILES;
  const bco = r.bco ? await r.bco.read() : null;
  const refNorm = r.referenceParts && !r.refChanged ? await weightNorm(r.referenceParts) : null;
  return {
    fields: { reference_norm: refNorm },
    write: async (dir) => {
      if (bco) await writeJson(`${dir}/${F.bco}`, bco);
      if (r.refChanged) await writeTensors(`${dir}/${F.ref}`, r.refModel!.namedParameters());
    },
  };
}

/** bco_state.json: bco_pair's running mean (a finite mean over at most 2^24 pairs, as the loss keeps it). */
export async function readBcoState(path: string): Promise<{ mean: number; count: number }> {
  const b = await readJson(path);
  const mean = numberField(b, "mean", path);
  const count = countField(b, "count", path);
  if (count > 2 ** 24) {
    throw new CheckpointError(`${path}: "count" is ${count}, more than the 2^24 pairs it can hold`);
  }
  return { mean, count };
}

/** Restores the reference side from checkpoint `dir` at `step` (`ws`: its webdpo_state.json). */
export async function restoreReference(
  r: ReferenceState,
  dir: string,
  ws: Record<string, unknown>,
  step: number,
): Promise<void> {
  const F = CHECKPOINT_FILES;
  const path = (f: string) => `${dir}/${f}`;
  const hasBco = await exists(path(F.bco));
  if (r.bco) {
    if (hasBco) {
      r.bco.load(await readBcoState(path(F.bco)));
    } else if (step > 0) {
      throw new TrainingError(`${dir}: loss_type uses bco_pair but the checkpoint has no ${F.bco}`);
    }
  }
  if (await exists(path(F.ref))) {
    if (!r.refModel) {
      throw new TrainingError(
        `${dir} holds TR-DPO reference weights (${F.ref}) but this run has no reference model ` +
          `(reference_free or precompute_ref_log_probs)`,
      );
    }
    await loadTensorsInto(path(F.ref), r.refModel.namedParameters(), "the reference model");
  } else if (r.referenceParts && typeof ws.reference_norm === "number") {
    const norm = await weightNorm(r.referenceParts);
    if (norm !== ws.reference_norm) {
      r.print(
        `webdpo: warning: the reference model differs from the checkpoint's run (weight norm ${norm}, was ` +
          `${ws.reference_norm}); pass the model the run started from (not the checkpoint's), since the ` +
          `frozen reference is a copy of it`,
      );
    }
  }
}
