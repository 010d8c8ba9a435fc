/**
 * Which modules a LoRA config adapts (PEFT's target_modules, exclude_modules) and which parameters it trains in full
 * (modules_to_save), with errors that name what the model has instead.
 */
import type { CausalLM } from "../models/causal_lm.ts";
import { defaultTargetModules, type LoraConfig, LoraError, matchesModules } from "./lora_config.ts";

/** The modules a config targets (full names, in the model's order), and target_modules as PEFT saves them. */
export function resolveTargets(
  model: CausalLM,
  c: LoraConfig,
): { modules: string[]; saved: string[] | string } {
  const projections = model.projectionModules();
  const shortNames = (ms: string[]) => [...new Set(ms.map((m) => m.slice(m.lastIndexOf(".") + 1)))].sort();
  let spec = c.targetModules ?? defaultTargetModules(model.config.modelType);
  if (Array.isArray(spec) && spec.length === 1 && spec[0] === "all-linear") spec = "all-linear";
  let modules: string[];
  if (spec === "all-linear") modules = [...projections];
  else {
    modules = projections.filter((m) => matchesModules(spec, m));
    const params = model.namedParameters().map(([n]) => n.slice(0, n.lastIndexOf(".")));
    const names = Array.isArray(spec) ? spec : [spec];
    for (const t of names) {
      const one = Array.isArray(spec) ? [t] : t;
      if (projections.some((m) => matchesModules(one, m))) continue;
      const other = params.find((m) => matchesModules(one, m));
      throw new LoraError(
        other
          ? `target_modules: "${t}" names ${other}, which is not a projection; LoRA adapts the projection ` +
            `modules (${
              shortNames(projections).join(", ")
            }); train embeddings or the LM head with modules_to_save`
          : `target_modules: "${t}" matches no module of this ${model.config.modelType} model; its ` +
            `projection modules are ${shortNames(projections).join(", ")} (or use "all-linear")`,
      );
    }
  }
  if (c.excludeModules) modules = modules.filter((m) => !matchesModules(c.excludeModules!, m));
  if (modules.length === 0) throw new LoraError("target_modules: every matched module is excluded");
  const saved = spec === "all-linear"
    ? shortNames(modules)
    : Array.isArray(spec)
    ? [...new Set(spec)].sort()
    : spec;
  return { modules, saved };
}

/** The parameter names of modules_to_save. */
export function resolveModulesToSave(model: CausalLM, c: LoraConfig, targets: string[]): string[] {
  if (!c.modulesToSave || c.modulesToSave.length === 0) return [];
  const names = model.namedParameters().map(([n]) => n);
  const out: string[] = [];
  for (const m of c.modulesToSave) {
    const hit = names.filter((n) => matchesModules([m], n.slice(0, n.lastIndexOf("."))));
    if (hit.length === 0) {
      if (m === "lm_head" && model.config.tieWordEmbeddings) {
        throw new LoraError(
          `modules_to_save: this model's lm_head is tied to the input embedding; list the embedding ` +
            `(${model.config.architecture === "gpt2" ? "wte" : "embed_tokens"}) to train the shared matrix`,
        );
      }
      const mods = [...new Set(names.map((n) => n.slice(0, n.lastIndexOf("."))))];
      throw new LoraError(
        `modules_to_save: "${m}" matches no module of this model (modules: ${
          mods.filter((x) => !/\.\d+\./.test(x)).join(", ")
        }, and per layer ${[...new Set(mods.map((x) => x.replace(/^.*\.\d+\./, "")))].join(", ")})`,
      );
    }
    for (const n of hit) {
      const mod = n.slice(0, n.lastIndexOf("."));
      if (targets.includes(mod)) {
        throw new LoraError(
          `modules_to_save: "${m}" (${mod}) is also a LoRA target; a module is one or the other`,
        );
      }
      if (!out.includes(n)) out.push(n);
    }
  }
  return out;
}
