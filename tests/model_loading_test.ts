import assert from "node:assert/strict";
import { hubCacheDir, loadModel, resolveModelDir } from "../src/models/loader.ts";
import { initModel } from "../src/models/init.ts";
import { readSafetensors, writeSafetensors } from "../src/models/safetensors.ts";
import { gpuTest, setup } from "./util.ts";

const FIX = new URL("./fixtures/", import.meta.url).pathname;

async function copyDir(src: string, dst: string): Promise<void> {
  await Deno.mkdir(dst, { recursive: true });
  for await (const e of Deno.readDir(src)) {
    if (e.isFile) await Deno.copyFile(`${src}/${e.name}`, `${dst}/${e.name}`);
  }
}

async function withTemp(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir();
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("loads a real GPT2Model checkpoint (no prefix, no head, tied embeddings)", gpuTest, async () => {
  await setup();
  const m = await loadModel(`${FIX}tiny-gpt2-transformers`);
  try {
    const names = m.namedParameters().map(([n]) => n);
    assert.ok(names.includes("transformer.wte.weight"));
    assert.ok(!names.includes("lm_head.weight"));
    assert.equal(m.lmHeadWeight(), m.param("transformer.wte.weight"));
    const src = await readSafetensors(`${FIX}tiny-gpt2-transformers/model.safetensors`);
    assert.deepEqual(
      await m.param("transformer.h.0.attn.c_attn.weight").toArray(),
      src.get("h.0.attn.c_attn.weight")!.data,
    );
    assert.equal(m.numParameters(), [...src.values()].reduce((a, t) => a + t.data.length, 0));
  } finally {
    m.dispose();
  }
});

Deno.test("save writes a folder that loads back bit-exact", gpuTest, async () => {
  await setup();
  const m = await loadModel(`${FIX}hf-reference/llama`);
  await withTemp(async (dir) => {
    await m.save(dir);
    const cfg = JSON.parse(await Deno.readTextFile(`${dir}/config.json`));
    assert.equal(cfg.model_type, "llama");
    const again = await readSafetensors(`${dir}/model.safetensors`);
    const orig = await readSafetensors(`${FIX}hf-reference/llama/model.safetensors`);
    assert.deepEqual([...again.keys()].sort(), [...orig.keys()].sort());
    for (const [n, t] of orig) assert.deepEqual(again.get(n)!.data, t.data, n);
    assert.ok((await Deno.stat(`${dir}/generation_config.json`)).isFile);
  });
  m.dispose();
});

Deno.test(
  "save names transformers' model class in config.json when the source config lacks it",
  gpuTest,
  async () => {
    await setup();
    const configs: [Record<string, unknown>, string][] = [
      [{ model_type: "llama" }, "LlamaForCausalLM"],
      [{ model_type: "qwen2" }, "Qwen2ForCausalLM"],
      [{ model_type: "mistral" }, "MistralForCausalLM"],
      [{ model_type: "llama", architectures: ["CustomLlama"] }, "CustomLlama"],
    ];
    for (const [extra, cls] of configs) {
      const m = await initModel({
        vocab_size: 16,
        hidden_size: 8,
        intermediate_size: 16,
        num_hidden_layers: 1,
        num_attention_heads: 2,
        num_key_value_heads: 1,
        ...extra,
      });
      await withTemp(async (dir) => {
        await m.save(dir);
        const cfg = JSON.parse(await Deno.readTextFile(`${dir}/config.json`));
        assert.deepEqual(cfg.architectures, [cls], JSON.stringify(extra));
      });
      m.dispose();
    }
  },
);

Deno.test(
  "missing files, truncated or corrupt weights and shape mismatches name the file and problem",
  gpuTest,
  async () => {
    await setup();
    await withTemp(async (dir) => {
      await copyDir(`${FIX}hf-reference/llama`, dir);
      await Deno.remove(`${dir}/config.json`);
      await assert.rejects(() => loadModel(dir), /config\.json: missing/);
    });
    await withTemp(async (dir) => {
      await copyDir(`${FIX}hf-reference/llama`, dir);
      await Deno.remove(`${dir}/model.safetensors`);
      await assert.rejects(() => loadModel(dir), /no model\.safetensors/);
    });
    await withTemp(async (dir) => {
      await copyDir(`${FIX}hf-reference/llama`, dir);
      const bytes = await Deno.readFile(`${dir}/model.safetensors`);
      await Deno.writeFile(`${dir}/model.safetensors`, bytes.subarray(0, bytes.length - 1000));
      await assert.rejects(() => loadModel(dir), /model\.safetensors: truncated/);
      bytes[20] = 0x7b; // '{' inside the JSON header
      bytes[21] = 0x7b;
      await Deno.writeFile(`${dir}/model.safetensors`, bytes);
      await assert.rejects(() => loadModel(dir), /model\.safetensors: corrupt header/);
    });
    await withTemp(async (dir) => {
      await copyDir(`${FIX}hf-reference/llama`, dir);
      const cfg = JSON.parse(await Deno.readTextFile(`${dir}/config.json`));
      cfg.intermediate_size = 96;
      await Deno.writeTextFile(`${dir}/config.json`, JSON.stringify(cfg));
      await assert.rejects(
        () => loadModel(dir),
        /tensor "model\.layers\.0\.mlp\.gate_proj\.weight" has shape \[128,64\] but the config implies \[96,64\]/,
      );
      cfg.intermediate_size = 128;
      cfg.tie_word_embeddings = true;
      await Deno.writeTextFile(`${dir}/config.json`, JSON.stringify(cfg));
      // tied: lm_head.weight in the checkpoint is the dropped duplicate, so it loads
      const m = await loadModel(dir);
      m.dispose();
      cfg.tie_word_embeddings = false;
      cfg.num_hidden_layers = 3;
      await Deno.writeTextFile(`${dir}/config.json`, JSON.stringify(cfg));
      await assert.rejects(
        () => loadModel(dir),
        /missing tensor "model\.layers\.2\.input_layernorm\.weight"/,
      );
      cfg.num_hidden_layers = 1;
      await Deno.writeTextFile(`${dir}/config.json`, JSON.stringify(cfg));
      await assert.rejects(() => loadModel(dir), /unexpected tensor "model\.layers\.1\./);
    });
  },
);

Deno.test("hub ids resolve from the Hugging Face cache layout; offline misses say how to download", async () => {
  await withTemp(async (home) => {
    const prev = Deno.env.get("HF_HOME");
    const prevCache = Deno.env.get("HF_HUB_CACHE");
    Deno.env.set("HF_HOME", home);
    Deno.env.delete("HF_HUB_CACHE");
    try {
      assert.equal(hubCacheDir(), `${home}/hub`);
      const repo = `${home}/hub/models--tiny-org--tiny-llama`;
      const snap = `${repo}/snapshots/0123456789abcdef`;
      await copyDir(`${FIX}hf-reference/llama`, snap);
      await Deno.mkdir(`${repo}/refs`, { recursive: true });
      await Deno.writeTextFile(`${repo}/refs/main`, "0123456789abcdef");
      assert.equal(await resolveModelDir("tiny-org/tiny-llama"), snap);
      await assert.rejects(
        () => resolveModelDir("tiny-org/absent-model", { localFilesOnly: true }),
        /not in the Hugging Face cache.*huggingface-cli download tiny-org\/absent-model/,
      );
      await assert.rejects(() => resolveModelDir("./no/such/folder/here"), /no such folder/);
    } finally {
      if (prev === undefined) Deno.env.delete("HF_HOME");
      else Deno.env.set("HF_HOME", prev);
      if (prevCache !== undefined) Deno.env.set("HF_HUB_CACHE", prevCache);
    }
  });
});

Deno.test("sharded checkpoints load through model.safetensors.index.json", gpuTest, async () => {
  await setup();
  const src = await readSafetensors(`${FIX}hf-reference/llama/model.safetensors`);
  await withTemp(async (dir) => {
    for (const f of ["config.json", "generation_config.json"]) {
      await Deno.copyFile(`${FIX}hf-reference/llama/${f}`, `${dir}/${f}`);
    }
    const names = [...src.keys()].sort();
    const half = Math.ceil(names.length / 2);
    const shards = [names.slice(0, half), names.slice(half)];
    const weightMap: Record<string, string> = {};
    for (const [i, shard] of shards.entries()) {
      const file = `model-0000${i + 1}-of-00002.safetensors`;
      await writeSafetensors(
        `${dir}/${file}`,
        shard.map((n) => ({ name: n, shape: src.get(n)!.shape, data: src.get(n)!.data })),
      );
      for (const n of shard) weightMap[n] = file;
    }
    await Deno.writeTextFile(
      `${dir}/model.safetensors.index.json`,
      JSON.stringify({ metadata: { total_size: 0 }, weight_map: weightMap }),
    );
    const m = await loadModel(dir);
    for (const n of names) assert.deepEqual(await m.param(n).toArray(), src.get(n)!.data, n);
    m.dispose();
    // a shard listed in the index but absent is named
    await Deno.remove(`${dir}/model-00002-of-00002.safetensors`);
    await assert.rejects(() => loadModel(dir), /model-00002-of-00002\.safetensors: missing shard/);
  });
});
