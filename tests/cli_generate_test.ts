/** `webdpo generate` end to end: a model folder written by the test, greedy decoding, errors. */
import assert from "node:assert/strict";
import { initModel } from "../src/models/init.ts";
import { saveModel } from "../src/models/loader.ts";
import { generate } from "../src/models/generate.ts";
import { loadTokenizer } from "../src/tokenizer/tokenizer.ts";
import { charTokenizerFiles, TINY_LLAMA } from "./trainer_helpers.ts";
import { gpuTest, setup } from "./util.ts";

const mainTs = new URL("../src/cli/main.ts", import.meta.url).pathname;

async function cli(...args: string[]) {
  const r = await new Deno.Command(Deno.execPath(), { args: ["run", "-A", mainTs, ...args] }).output();
  const d = new TextDecoder();
  return { code: r.code, out: d.decode(r.stdout), err: d.decode(r.stderr) };
}

Deno.test("webdpo generate prints the same greedy continuation as the API", gpuTest, async () => {
  await setup();
  const dir = await Deno.makeTempDir();
  try {
    const model = await initModel(TINY_LLAMA, { seed: 7, std: 0.3 });
    await saveModel(model, dir, { tokenizer: charTokenizerFiles() });
    const tok = await loadTokenizer(dir);
    const api = await generate(model, tok, ["abc?", "hgf="], { maxNewTokens: 6 });
    model.dispose();
    const r = await cli(
      "generate",
      "--model",
      dir,
      "--prompt",
      "abc?",
      "--prompt",
      "hgf=",
      "--max_new_tokens",
      "6",
    );
    assert.equal(r.code, 0, r.err);
    assert.match(r.out, /--- prompt 1: abc\?\n/);
    const outputs = r.out.split(/--- prompt \d: .*\n/).slice(1).map((s) => s.replace(/\n$/, ""));
    assert.deepEqual(outputs, api.texts);
    const bad = await cli("generate", "--model", dir);
    assert.equal(bad.code, 2);
    assert.match(bad.err, /--model and at least one --prompt are required/);
    const typo = await cli("generate", "--model", dir, "--prompt", "a", "--max_new_tokens", "x");
    assert.equal(typo.code, 2);
    assert.match(typo.err, /^webdpo generate: --max_new_tokens must be an integer, got "x"\n$/);
    const missing = await cli("generate", "--model", `${dir}/nope`, "--prompt", "a");
    assert.equal(missing.code, 1);
    assert.match(missing.err, /^webdpo generate: .*nope.*no such folder/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
