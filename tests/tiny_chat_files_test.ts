/**
 * The structure of examples/tiny-chat: what transformers needs to load it as a LlamaForCausalLM with a fast
 * tokenizer, what webdpo needs, and the data files the demo reads.
 */
import assert from "node:assert/strict";
import { loadModel } from "../src/models/loader.ts";
import { readSafetensorsHeader } from "../src/models/safetensors.ts";
import { loadTokenizer } from "../src/tokenizer/tokenizer.ts";
import { generate } from "../src/models/generate.ts";
import { gpuTest, setup } from "./util.ts";

const DIR = new URL("../examples/tiny-chat", import.meta.url).pathname;
const json = async (name: string) => JSON.parse(await Deno.readTextFile(`${DIR}/${name}`));
const jsonl = async (name: string) =>
  (await Deno.readTextFile(`${DIR}/data/${name}`)).split("\n").filter((l) => l.trim()).map((l) =>
    JSON.parse(l)
  );

Deno.test("config.json has what transformers' LlamaConfig needs", async () => {
  const c = await json("config.json");
  assert.deepEqual(c.architectures, ["LlamaForCausalLM"]);
  assert.equal(c.model_type, "llama");
  for (
    const k of [
      "vocab_size",
      "hidden_size",
      "intermediate_size",
      "num_hidden_layers",
      "num_attention_heads",
      "num_key_value_heads",
      "max_position_embeddings",
    ]
  ) assert.ok(Number.isInteger(c[k]) && c[k] > 0, `${k} = ${c[k]}`);
  assert.equal(c.hidden_act, "silu");
  assert.ok(c.rms_norm_eps > 0 && c.rms_norm_eps < 1e-3);
  assert.ok(c.rope_theta > 0);
  assert.equal(c.hidden_size % c.num_attention_heads, 0);
  assert.equal(c.num_attention_heads % c.num_key_value_heads, 0);
  assert.equal(c.head_dim ?? c.hidden_size / c.num_attention_heads, c.hidden_size / c.num_attention_heads);
  assert.equal(c.tie_word_embeddings, false);
  assert.equal(c.attention_bias, false);
  assert.equal(c.mlp_bias, false);
  assert.equal(c.torch_dtype, "float32");
  assert.ok(Number.isInteger(c.eos_token_id));
  assert.ok(Number.isInteger(c.pad_token_id));
});

Deno.test("model.safetensors holds exactly the Llama state dict, float32, a few MB", async () => {
  const c = await json("config.json");
  const V = c.vocab_size, C = c.hidden_size, I = c.intermediate_size;
  const D = c.hidden_size / c.num_attention_heads, KV = c.num_key_value_heads * D;
  const expected = new Map<string, number[]>([["model.embed_tokens.weight", [V, C]]]);
  for (let l = 0; l < c.num_hidden_layers; l++) {
    const p = `model.layers.${l}`;
    expected.set(`${p}.self_attn.q_proj.weight`, [C, C]);
    expected.set(`${p}.self_attn.k_proj.weight`, [KV, C]);
    expected.set(`${p}.self_attn.v_proj.weight`, [KV, C]);
    expected.set(`${p}.self_attn.o_proj.weight`, [C, C]);
    expected.set(`${p}.mlp.gate_proj.weight`, [I, C]);
    expected.set(`${p}.mlp.up_proj.weight`, [I, C]);
    expected.set(`${p}.mlp.down_proj.weight`, [C, I]);
    expected.set(`${p}.input_layernorm.weight`, [C]);
    expected.set(`${p}.post_attention_layernorm.weight`, [C]);
  }
  expected.set("model.norm.weight", [C]);
  expected.set("lm_head.weight", [V, C]);
  const h = await readSafetensorsHeader(`${DIR}/model.safetensors`);
  assert.deepEqual(h.tensors.map((t) => t.name).sort(), [...expected.keys()].sort());
  let bytes = 0;
  for (const t of h.tensors) {
    assert.equal(t.dtype, "F32", t.name);
    assert.deepEqual(t.shape, expected.get(t.name), t.name);
    bytes += t.end - t.begin;
  }
  const size = (await Deno.stat(`${DIR}/model.safetensors`)).size;
  assert.ok(bytes <= size && size < 4 * 1024 * 1024, `model.safetensors is ${size} bytes`);
});

Deno.test("tokenizer files: standard components, consistent special tokens, ChatML-style template", async () => {
  const t = await json("tokenizer.json");
  const cfg = await json("tokenizer_config.json");
  const map = await json("special_tokens_map.json");
  const gen = await json("generation_config.json");
  const c = await json("config.json");
  assert.equal(t.version, "1.0");
  assert.equal(t.model.type, "BPE");
  assert.deepEqual(t.model.merges, []);
  assert.equal(t.normalizer, null);
  assert.equal(t.pre_tokenizer, null);
  assert.equal(t.post_processor, null);
  assert.deepEqual(t.decoder, { type: "Fuse" });
  const vocab = t.model.vocab as Record<string, number>;
  const ids = Object.values(vocab).sort((a, b) => a - b);
  assert.deepEqual(ids, Array.from({ length: ids.length }, (_, i) => i), "vocabulary ids are 0..n-1");
  assert.equal(ids.length, c.vocab_size);
  for (let code = 32; code < 127; code++) assert.ok(String.fromCharCode(code) in vocab, `char ${code}`);
  assert.ok("\n" in vocab);
  assert.ok(t.model.unk_token in vocab);
  const added = new Map<string, number>();
  for (const a of t.added_tokens) {
    assert.equal(vocab[a.content], a.id, `${a.content} has the same id in the vocabulary`);
    assert.equal(a.special, true);
    assert.equal(a.normalized, false);
    added.set(a.content, a.id);
  }
  for (const s of ["<|im_start|>", "<|im_end|>", "<|pad|>"]) assert.ok(added.has(s), s);

  assert.equal(cfg.tokenizer_class, "PreTrainedTokenizerFast");
  assert.equal(cfg.eos_token, "<|im_end|>");
  assert.equal(cfg.pad_token, "<|pad|>");
  assert.equal(cfg.bos_token, null);
  assert.equal(typeof cfg.chat_template, "string");
  for (const [id, a] of Object.entries(cfg.added_tokens_decoder as Record<string, { content: string }>)) {
    assert.equal(added.get(a.content), Number(id), `added_tokens_decoder ${id}`);
  }
  assert.equal(map.eos_token, "<|im_end|>");
  assert.equal(map.pad_token, "<|pad|>");
  assert.equal(gen.eos_token_id, added.get("<|im_end|>"));
  assert.equal(gen.pad_token_id, added.get("<|pad|>"));
  assert.equal(c.eos_token_id, added.get("<|im_end|>"));
  assert.equal(c.pad_token_id, added.get("<|pad|>"));

  const tok = await loadTokenizer(DIR);
  const conversation = [
    { role: "system", content: "Answer briefly." },
    { role: "user", content: "What is 37 + 5?" },
    { role: "assistant", content: "37 + 5 = 42." },
  ];
  assert.equal(
    tok.applyChatTemplate(conversation),
    "<|im_start|>system\nAnswer briefly.<|im_end|>\n<|im_start|>user\nWhat is 37 + 5?<|im_end|>\n" +
      "<|im_start|>assistant\n37 + 5 = 42.<|im_end|>",
  );
  assert.equal(
    tok.applyChatTemplate(conversation.slice(0, 2), { addGenerationPrompt: true }),
    "<|im_start|>system\nAnswer briefly.<|im_end|>\n<|im_start|>user\nWhat is 37 + 5?<|im_end|>\n" +
      "<|im_start|>assistant\n",
  );
  const text = "<|im_start|>user\nHi {there}~!<|im_end|>";
  const enc = tok.encode(text);
  assert.equal(enc.length, 1 + "user\nHi {there}~!".length + 1, "one token per character, specials whole");
  assert.equal(enc[0], added.get("<|im_start|>"));
  assert.equal(tok.decode(enc), text);
  assert.equal(tok.decode(enc, { skipSpecialTokens: true }), "user\nHi {there}~!");
  assert.equal(tok.eosTokenId, added.get("<|im_end|>"));
  assert.equal(tok.bosTokenId, null);
});

Deno.test("data files: conversational formats, disjoint questions, correct chosen, plausible wrong rejected", async () => {
  const recipe = await json("data/recipe.json");
  const sft = await jsonl("sft_train.jsonl");
  const train = await jsonl("dpo_train.jsonl");
  const test = await jsonl("dpo_test.jsonl");
  assert.equal(sft.length, recipe.counts.sftConversations);
  assert.equal(train.length, recipe.counts.dpoTrainPairs);
  assert.equal(test.length, recipe.counts.dpoTestPairs);
  const q = /^What is (\d+) \+ (\d+)\?$/;
  const a = /^(\d+) \+ (\d+) = (\d+)\.$/;
  let wrong = 0, carries = 0, carriesLow = 0;
  const sftQuestions = new Set<string>();
  for (const r of sft) {
    assert.deepEqual(r.messages.map((m: { role: string }) => m.role), ["user", "assistant"]);
    const [, x, y] = q.exec(r.messages[0].content)!;
    const [, x2, y2, s] = a.exec(r.messages[1].content)!;
    assert.deepEqual([x2, y2], [x, y], "the answer restates the question");
    const d = Number(s) - (Number(x) + Number(y));
    assert.ok(Math.abs(d) <= 2, `SFT answers are off by at most 2, got ${d}`);
    if (d !== 0) wrong++;
    if ((Number(x) % 10) + (Number(y) % 10) >= 10) {
      carries++;
      if (d === -1) carriesLow++;
    }
    sftQuestions.add(r.messages[0].content);
  }
  const share = wrong / sft.length;
  assert.ok(share > 0.25 && share < 0.45, `a sizeable share of noisy SFT answers: ${share}`);
  assert.ok(
    carriesLow / carries > 0.5,
    `most answers that need a carry are one too low: ${carriesLow}/${carries}`,
  );
  const check = (
    rows: { prompt: { role: string; content: string }[]; chosen: never[]; rejected: never[] }[],
    ownMistakes: boolean,
  ) => {
    const questions = new Set<string>();
    const offs = new Map<number, number>();
    for (const r of rows) {
      assert.equal(r.prompt.length, 1);
      assert.equal(r.prompt[0].role, "user");
      const [, x, y] = q.exec(r.prompt[0].content)!;
      const [c] = r.chosen as { role: string; content: string }[];
      const [rj] = r.rejected as { role: string; content: string }[];
      assert.equal(c.role, "assistant");
      assert.equal(rj.role, "assistant");
      const sum = Number(x) + Number(y);
      assert.equal(Number(a.exec(c.content)![3]), sum, "chosen is correct");
      const off = Number(a.exec(rj.content)![3]) - sum;
      assert.notEqual(off, 0, "rejected is wrong");
      offs.set(off, (offs.get(off) ?? 0) + 1);
      questions.add(r.prompt[0].content);
    }
    // near misses are off by 1, 2 or 10; the SFT model's own mistakes may be anything, but are few of those
    const far = [...offs].filter(([d]) => ![-10, -2, -1, 1, 2, 10].includes(d)).reduce(
      (n, [, c]) => n + c,
      0,
    );
    if (!ownMistakes) assert.equal(far, 0, `rejected answers are near misses: ${[...offs]}`);
    else assert.ok(far < 0.02 * rows.length, `mostly plausible rejected answers: ${[...offs]}`);
    return { questions, offs };
  };
  const own = recipe.preferenceData.rejected === "own-mistakes";
  const { questions: trainQ, offs } = check(train, own);
  const { questions: testQ } = check(test, false);
  if (own) {
    // on-policy pairs: the SFT model's typical error (a carry answer one too low) is the most rejected
    const top = [...offs].sort((x, y) => y[1] - x[1])[0][0];
    assert.equal(top, -1, `the most common rejected offset is -1: ${[...offs]}`);
  }
  assert.equal(
    train.length,
    recipe.counts.trainQuestions * recipe.preferenceData.perQuestion,
    `${recipe.preferenceData.perQuestion} pairs per training question`,
  );
  assert.equal(testQ.size, test.length, "one held-out pair per question");
  for (const x of testQ) {
    assert.ok(!trainQ.has(x), `${x} is held out but in the training pairs`);
    assert.ok(!sftQuestions.has(x), `${x} is held out but in the SFT data`);
  }
});

Deno.test("webdpo loads examples/tiny-chat and answers in the trained format", gpuTest, async () => {
  await setup();
  const model = await loadModel(DIR);
  const tok = await loadTokenizer(DIR);
  const res = await generate(model, tok, ["What is 37 + 5?", "What is 80 + 6?"], {
    chat: true,
    maxNewTokens: 20,
  });
  for (const [i, q] of ["37 + 5", "80 + 6"].entries()) {
    assert.match(res.texts[i], new RegExp(`^${q.replace("+", "\\+")} = \\d+\\.$`), res.texts[i]);
    assert.equal(res.tokens[i][res.tokens[i].length - 1], tok.eosTokenId, "stops at <|im_end|>");
  }
  model.dispose();
});
