/**
 * Decoding speed at real scale: greedy `generate` on the SmolLM2-135M-shaped model of dpo_step_real (random init
 * made in-process), batch 1, a 32-token prompt, 64 new tokens (no stop token), after a warm-up call that compiles
 * the pipelines. Reports tokens/s and ms per new token (the prompt's prefill included, as a user waits for it)
 * and dispatches per new token. On CPU adapters, where few-row products go to the row kernel
 * (kernels/matmul_gemv.wgsl), a second row runs the same decode with the register kernel for every product, so
 * the ratio between the two is measured in one process. `--quick` uses the 2-layer, hidden-64 model.
 */
import { dispatchCounter, sync } from "../../mod.ts";
import {
  GEMV_MAX_ROWS,
  isRegisterVariant,
  matmulVariant,
  setGemvMaxRows,
} from "../../src/autograd/ops/matmul.ts";
import { generate } from "../../src/models/generate.ts";
import { initModel } from "../../src/models/init.ts";
import type { Tokenizer } from "../../src/tokenizer/tokenizer.ts";
import type { BenchContext, BenchFamily } from "../harness.ts";
import { numberTokenizer } from "./dpo_step.ts";
import { realScaleConfig } from "./dpo_step_real.ts";

async function measureDecode(ctx: BenchContext): Promise<void> {
  const cfg = realScaleConfig(ctx.quick);
  const model = await initModel(cfg, { seed: 3 });
  const tokenizer = numberTokenizer as unknown as Tokenizer;
  const prompt = Array.from({ length: 32 }, (_, i) => 3 + ((i * 7919) % (cfg.vocab_size - 3)));
  const newTokens = ctx.quick ? 8 : 64;
  const run = async () => {
    await sync();
    const d0 = dispatchCounter();
    const t0 = performance.now();
    const r = await generate(model, tokenizer, [prompt], { maxNewTokens: newTokens, eosTokenIds: [] });
    const ms = performance.now() - t0;
    return { ms, n: r.tokens[0].length, dispatches: dispatchCounter() - d0 };
  };
  const variants: [string, number][] = isRegisterVariant(matmulVariant())
    ? [["row_kernel", GEMV_MAX_ROWS], ["register_only", 0]]
    : [["default", GEMV_MAX_ROWS]];
  try {
    for (const [variant, rows] of variants) {
      setGemvMaxRows(rows);
      await generate(model, tokenizer, [prompt], { maxNewTokens: 2, eosTokenIds: [] }); // compile
      const { ms, n, dispatches } = await run();
      ctx.emit({
        bench: "generate",
        variant,
        shape: `h${cfg.hidden_size} L${cfg.num_hidden_layers} V${cfg.vocab_size} prompt32 new${n} batch1`,
        ms: ms / n,
        tokens_per_s: n / (ms / 1000),
        dispatches_per_token: Math.round(dispatches / n),
      });
    }
  } finally {
    setGemvMaxRows(GEMV_MAX_ROWS);
    model.dispose();
  }
}

export const family: BenchFamily = {
  name: "generate",
  run: (ctx) => measureDecode(ctx),
};
