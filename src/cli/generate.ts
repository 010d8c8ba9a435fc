/** `webdpo generate --model DIR --prompt TEXT [...]`: continuations from a model folder (or hub id). */
import { parseCommandLine, UsageError } from "./argv.ts";
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

export async function generateCommand(args: string[]): Promise<number> {
  try {
    return await run(args);
  } catch (e) {
    if (e instanceof UsageError || e instanceof WebDPOError) {
      console.error(`webdpo generate: ${e.message}`);
      return e instanceof UsageError ? 2 : 1;
    }
    throw e;
  }
}

async function run(args: string[]): Promise<number> {
  const line = parseCommandLine(args, {
    model: { kind: "string" },
    prompt: { kind: "string", multiple: true },
    chat: { kind: "flag" },
    max_new_tokens: { kind: "int" },
    do_sample: { kind: "flag" },
    temperature: { kind: "number" },
    top_k: { kind: "int" },
    top_p: { kind: "number" },
    seed: { kind: "int" },
  });
  const v = line.values;
  if (line.help) {
    console.log(GENERATE_USAGE);
    return 0;
  }
  if (!v.model || !v.prompt?.length) {
    console.error(`webdpo generate: --model and at least one --prompt are required\n\n${GENERATE_USAGE}`);
    return 2;
  }
  const model = await loadModel(v.model, { requiresGrad: false });
  const tokenizer = await loadTokenizer(model.sourceDir ?? v.model);
  const out = await generate(model, tokenizer, v.prompt, {
    chat: v.chat ?? false,
    maxNewTokens: v.max_new_tokens ?? 32,
    doSample: v.do_sample ?? false,
    temperature: v.temperature ?? 1,
    topK: v.top_k ?? 0,
    topP: v.top_p ?? 1,
    seed: v.seed ?? 0,
  });
  v.prompt.forEach((p, i) => {
    if (v.prompt!.length > 1) console.log(`--- prompt ${i + 1}: ${p}`);
    console.log(out.texts[i]);
  });
  model.dispose();
  return 0;
}
