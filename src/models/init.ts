/**
 * A model with freshly initialised weights, as transformers' `_init_weights` does for these architectures:
 * normal(0, initializer_range) for linear and embedding weights, zeros for biases, ones for norm weights.
 * Seeded, so tests and the demo build the same model every time.
 */
import { Generator } from "../tensor/random.ts";
import { full, randn, zeros } from "../tensor/create.ts";
import type { CausalLM } from "./causal_lm.ts";
import { type ModelConfig, parseConfig } from "./config.ts";
import { modelFor } from "./loader.ts";
import { init } from "../gpu/init.ts";
import { settleUploads } from "../gpu/queue.ts";

export interface InitModelOptions {
  seed?: number;
  /** Standard deviation of weights (default: the config's initializer_range, else 0.02). */
  std?: number;
  requiresGrad?: boolean;
}

/** A new randomly initialised model for a config (a parsed ModelConfig or a config.json object). */
export async function initModel(
  config: ModelConfig | Record<string, unknown>,
  opts: InitModelOptions = {},
): Promise<CausalLM> {
  await init();
  const cfg = "architecture" in config && "raw" in config
    ? config as ModelConfig
    : parseConfig(config as Record<string, unknown>);
  const model = modelFor(cfg);
  const g = new Generator(opts.seed ?? 0);
  const std = opts.std ?? (typeof cfg.raw.initializer_range === "number" ? cfg.raw.initializer_range : 0.02);
  const requiresGrad = opts.requiresGrad ?? true;
  for (const [name, shape] of model.expectedShapes()) {
    const isNorm = /(norm|ln_\d|ln_f)\.weight$/.test(name) || name.endsWith("layernorm.weight");
    const t = name.endsWith(".bias")
      ? zeros(shape)
      : isNorm
      ? full(shape, 1)
      : randn(shape, { generator: g, std });
    t.requiresGrad = requiresGrad;
    model.register(name, t.keep());
    await settleUploads();
  }
  return model;
}
