import assert from "node:assert/strict";
import { ConfigError, parseConfig, readConfig } from "../src/models/config.ts";

const FIX = new URL("./fixtures/", import.meta.url).pathname;
const readJson = async (p: string) => JSON.parse(await Deno.readTextFile(`${FIX}${p}`));

Deno.test("llama config in the transformers 4 and 5 layouts parse the same", async () => {
  const v4 = parseConfig(await readJson("hf-reference/llama/config.json"));
  const v5 = parseConfig(await readJson("hf-reference/llama/config.transformers_v5.json"));
  for (const c of [v4, v5]) {
    assert.equal(c.architecture, "llama");
    assert.equal(c.numHeads, 4);
    assert.equal(c.numKvHeads, 2);
    assert.equal(c.headDim, 16);
    assert.equal(c.ropeTheta, 500000);
    assert.equal(c.normEps, 1e-5);
    assert.equal(c.tieWordEmbeddings, false);
    assert.equal(c.ropeScaling, null);
    assert.deepEqual(c.layerSlidingWindow, [null, null]);
  }
});

Deno.test("gpt2 configs: defaults for n_inner and tied embeddings", async () => {
  const c = await readConfig(`${FIX}hf-reference/gpt2`);
  assert.equal(c.architecture, "gpt2");
  assert.equal(c.intermediateSize, 256);
  assert.equal(c.tieWordEmbeddings, true);
  assert.equal(c.hiddenAct, "gelu_new");
  assert.equal(c.headDim, 16);
  const tiny = await readConfig(`${FIX}tiny-gpt2-transformers`);
  assert.equal(tiny.hiddenSize, 2);
  assert.equal(tiny.vocabSize, 21);
});

Deno.test("llama3 rope scaling from both layouts; other types are refused", () => {
  const base = {
    model_type: "llama",
    hidden_size: 64,
    intermediate_size: 128,
    num_attention_heads: 4,
    num_hidden_layers: 1,
    vocab_size: 10,
  };
  const scaling = {
    rope_type: "llama3",
    factor: 8,
    low_freq_factor: 1,
    high_freq_factor: 4,
    original_max_position_embeddings: 8192,
  };
  const a = parseConfig({ ...base, rope_theta: 500000, rope_scaling: scaling });
  const b = parseConfig({ ...base, rope_parameters: { ...scaling, rope_theta: 500000 } });
  assert.deepEqual(a.ropeScaling, b.ropeScaling);
  assert.equal(a.ropeScaling!.factor, 8);
  assert.equal(b.ropeTheta, 500000);
  assert.throws(
    () => parseConfig({ ...base, rope_scaling: { type: "yarn", factor: 2 } }),
    /"yarn" is not supported.*llama3/,
  );
});

Deno.test("mistral and qwen2 sliding windows, qwen2 biases", () => {
  const base = {
    hidden_size: 64,
    intermediate_size: 128,
    num_attention_heads: 4,
    num_hidden_layers: 4,
    vocab_size: 10,
  };
  const m = parseConfig({ ...base, model_type: "mistral", sliding_window: 16 });
  assert.deepEqual(m.layerSlidingWindow, [16, 16, 16, 16]);
  const q = parseConfig({ ...base, model_type: "qwen2", sliding_window: 32, use_sliding_window: false });
  assert.deepEqual(q.layerSlidingWindow, [null, null, null, null]);
  assert.equal(q.qkvBias, true);
  assert.equal(q.oBias, false);
  const q2 = parseConfig({
    ...base,
    model_type: "qwen2",
    sliding_window: 32,
    use_sliding_window: true,
    max_window_layers: 2,
  });
  assert.deepEqual(q2.layerSlidingWindow, [null, null, 32, 32]);
});

Deno.test("unsupported or broken configs name the problem", async () => {
  assert.throws(
    () => parseConfig({ model_type: "bert", architectures: ["BertModel"] }),
    (e: unknown) =>
      e instanceof ConfigError && /"bert".*not supported/.test(e.message) &&
      /llama, mistral, qwen2, gpt2/.test(e.message),
  );
  assert.throws(
    () => parseConfig({ model_type: "llama", hidden_size: 64 }),
    /"num_attention_heads" is missing/,
  );
  assert.throws(
    () =>
      parseConfig({
        model_type: "llama",
        hidden_size: 64,
        intermediate_size: 1,
        num_attention_heads: 4,
        num_key_value_heads: 3,
        num_hidden_layers: 1,
        vocab_size: 5,
      }),
    /not a multiple/,
  );
  await assert.rejects(() => readConfig("/nonexistent-dir"), /nonexistent-dir\/config\.json: cannot read/);
});
