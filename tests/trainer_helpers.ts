/** Shared pieces of the trainer tests: a character tokenizer and a synthetic preference task. */
import { Generator } from "../src/tensor/random.ts";
import { ToyTokenizer } from "./toy_tokenizer.ts";
import { Tokenizer } from "../src/tokenizer/tokenizer.ts";
import assert from "node:assert/strict";
import { DPOConfig } from "../src/dpo/config.ts";
import { DPOTrainer } from "../src/dpo/trainer.ts";
import { initModel } from "../src/models/init.ts";
import { assertClose } from "./util.ts";

export const CHARS = "abcdefghyn?= ";

/** A character-level tokenizer: <pad> 0, <s> 1, </s> 2, then one id per character of CHARS. */
export function charTokenizer(): ToyTokenizer {
  return new ToyTokenizer({
    vocab: ["<pad>", "<s>", "</s>", ...CHARS],
    pad_token_id: 0,
    bos_token_id: 1,
    eos_token_id: 2,
    bos_token: "<s>",
    eos_token: "</s>",
  });
}

/**
 * Pairs whose preferred answer depends on the prompt's content: "y" when the prompt contains an "a", else "n".
 * The rejected answer is the other one.
 */
export function containsATask(
  n: number,
  seed: number,
): { prompt: string; chosen: string; rejected: string }[] {
  const g = new Generator(seed);
  const letters = "abcdefgh";
  const rows = [];
  for (let i = 0; i < n; i++) {
    const len = 3 + g.int(5);
    let s = "";
    for (let k = 0; k < len; k++) s += letters[g.int(letters.length)];
    // balance the classes: half the prompts get an "a" forced in, half get every "a" removed
    if (i % 2 === 0) {
      const at = g.int(len);
      s = s.slice(0, at) + "a" + s.slice(at + 1);
    } else s = s.replaceAll("a", letters[1 + g.int(letters.length - 1)]);
    const yes = s.includes("a");
    rows.push({ prompt: `${s}?`, chosen: yes ? "y" : "n", rejected: yes ? "n" : "y" });
  }
  return rows;
}

export const TINY_LLAMA = {
  model_type: "llama",
  hidden_size: 32,
  intermediate_size: 64,
  num_attention_heads: 4,
  num_key_value_heads: 2,
  num_hidden_layers: 2,
  vocab_size: 3 + CHARS.length,
  max_position_embeddings: 64,
  rms_norm_eps: 1e-5,
  rope_theta: 10000,
  tie_word_embeddings: false,
  bos_token_id: 1,
  eos_token_id: 2,
  pad_token_id: 0,
};

export const TINY_GPT2 = {
  model_type: "gpt2",
  n_embd: 32,
  n_head: 4,
  n_layer: 2,
  n_positions: 64,
  vocab_size: 3 + CHARS.length,
  layer_norm_epsilon: 1e-5,
  activation_function: "gelu_new",
  bos_token_id: 1,
  eos_token_id: 2,
};

/** A character-level tokenizer.json (BPE without merges, one token per character) for TINY_LLAMA's vocabulary. */
export function charTokenizerFiles(): Tokenizer {
  const specials = ["<pad>", "<s>", "</s>"];
  const vocab: Record<string, number> = {};
  [...specials, ...CHARS].forEach((t, i) => (vocab[t] = i));
  return new Tokenizer(
    {
      version: "1.0",
      truncation: null,
      padding: null,
      added_tokens: specials.map((content, id) => ({
        id,
        content,
        single_word: false,
        lstrip: false,
        rstrip: false,
        normalized: false,
        special: true,
      })),
      normalizer: null,
      pre_tokenizer: { type: "Split", pattern: { Regex: "." }, behavior: "Isolated", invert: false },
      post_processor: null,
      decoder: { type: "Fuse" },
      model: {
        type: "BPE",
        dropout: null,
        unk_token: null,
        continuing_subword_prefix: null,
        end_of_word_suffix: null,
        fuse_unk: false,
        byte_fallback: false,
        vocab,
        merges: [],
      },
    },
    { bos_token: "<s>", eos_token: "</s>", pad_token: "<pad>" },
  );
}

/**
 * Two optimizer steps of DPO on six containsATask pairs (batch 3, RPO and WPO on, one log line a step) with
 * `options` added to DPOConfig: the first two log lines and the first parameter after training. For tests that
 * compare two ways of computing the same run.
 */
export async function twoStepDpoRun(
  cfg: Record<string, unknown>,
  options: Record<string, unknown>,
): Promise<{ history: Record<string, unknown>[]; weights: Float32Array }> {
  const model = await initModel(cfg, { seed: 2, std: 0.1 });
  const trainer = new DPOTrainer({
    model,
    tokenizer: charTokenizer(),
    trainDataset: containsATask(6, 3),
    args: new DPOConfig({
      outputDir: "/tmp/webdpo-two-step-dpo",
      maxLength: 32,
      maxPromptLength: 16,
      perDeviceTrainBatchSize: 3,
      maxSteps: 2,
      loggingSteps: 1,
      learningRate: 1e-3,
      rpoAlpha: 0.5,
      useWeighting: true,
      disableTqdm: true,
      reportTo: ["none"],
      saveStrategy: "no",
      ...options,
    }),
    log: () => {},
  });
  await trainer.train();
  const weights = await model.namedParameters()[0][1].toArray();
  const history = trainer.state.logHistory.slice(0, 2) as Record<string, unknown>[];
  trainer.dispose();
  return { history, weights };
}

/** Every numeric log value of two runs within 1e-5 (relative above 1), and their updated weights within `tol`. */
export function assertSameDpoRun(
  got: { history: Record<string, unknown>[]; weights: Float32Array },
  want: { history: Record<string, unknown>[]; weights: Float32Array },
  tol: { atol: number; rtol: number },
): void {
  for (let s = 0; s < 2; s++) {
    for (const [k, v] of Object.entries(want.history[s])) {
      if (typeof v !== "number" || k === "epoch" || k === "step") continue;
      const g = got.history[s][k] as number;
      assert.ok(Math.abs(g - v) <= 1e-5 * Math.max(1, Math.abs(v)), `step ${s + 1} ${k}: ${g} vs ${v}`);
    }
  }
  assertClose(got.weights, want.weights, tol, "updated weights");
}
