/** `webdpo generate --model DIR --prompt TEXT [...]`: continuations from a model folder (or hub id). */
import { parseArgs } from "node:util";
import { WebDPOError } from "../gpu/errors.ts";
import { generate } from "../models/generate.ts";
import { loadModel } from "../models/loader.ts";
import { loadTokenizer } from "../tokenizer/tokenizer.ts";

export const GENERATE_USAGE = `usage: webdpo generate --model DIR --prompt TEXT [--prompt TEXT ...] [options]

  --model DIR            model folder (config.json, model.safetensors, tokenizer files) or a cached hub id
  --prompt TEXT          a prompt; repeat for a batch (left-padded)
  --chat                 render each prompt as a user turn with the tokenizer's chat template
  --max_new_tokens N     new tokens per prompt (default 32)
  --do_sample            sample instead of greedy decoding
  --temperature T        sampling temperature (default 1)
  --top_k K              keep the K most likely tokens (default 0 = all)
  --top_p P              nucleus sampling threshold (default 1)
  --seed S               sampler seed (default 0)`;

/** A mistake in the command line (exit code 2). */
class UsageError extends Error {}

export async function generateCommand(args: string[]): Promise<number> {
  try {
    return await run(args);
  } catch (e) {
    if (
      e instanceof UsageError || e instanceof WebDPOError ||
      (e instanceof TypeError && /parseArgs|option/i.test(e.message))
    ) {
      console.error(`webdpo generate: ${e.message}`);
      return e instanceof WebDPOError ? 1 : 2;
    }
    throw e;
  }
}

async function run(args: string[]): Promise<number> {
  const { values: v } = parseArgs({
    args,
    options: {
      model: { type: "string" },
      prompt: { type: "string", multiple: true },
      chat: { type: "boolean", default: false },
      max_new_tokens: { type: "string", default: "32" },
      do_sample: { type: "boolean", default: false },
      temperature: { type: "string", default: "1" },
      top_k: { type: "string", default: "0" },
      top_p: { type: "string", default: "1" },
      seed: { type: "string", default: "0" },
      help: { type: "boolean", short: "h", default: false },
    },
  });
  if (v.help) {
    console.log(GENERATE_USAGE);
    return 0;
  }
  if (!v.model || !v.prompt?.length) {
    console.error(`webdpo generate: --model and at least one --prompt are required\n\n${GENERATE_USAGE}`);
    return 2;
  }
  const num = (name: string, s: string, int = false) => {
    const n = Number(s);
    if (!Number.isFinite(n) || (int && !Number.isInteger(n))) {
      throw new UsageError(`--${name} expects ${int ? "an integer" : "a number"}, got "${s}"`);
    }
    return n;
  };
  const model = await loadModel(v.model, { requiresGrad: false });
  const tokenizer = await loadTokenizer(model.sourceDir ?? v.model);
  const out = await generate(model, tokenizer, v.prompt, {
    chat: v.chat,
    maxNewTokens: num("max_new_tokens", v.max_new_tokens!, true),
    doSample: v.do_sample,
    temperature: num("temperature", v.temperature!),
    topK: num("top_k", v.top_k!, true),
    topP: num("top_p", v.top_p!),
    seed: num("seed", v.seed!, true),
  });
  v.prompt.forEach((p, i) => {
    if (v.prompt!.length > 1) console.log(`--- prompt ${i + 1}: ${p}`);
    console.log(out.texts[i]);
  });
  model.dispose();
  return 0;
}
