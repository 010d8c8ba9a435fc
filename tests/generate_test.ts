import assert from "node:assert/strict";
import { generate, pickToken, setDeviceGreedy } from "../src/models/generate.ts";
import { loadModel } from "../src/models/loader.ts";
import { Tokenizer } from "../src/tokenizer/tokenizer.ts";
import { Generator } from "../src/tensor/random.ts";
import { noGrad, scope } from "../mod.ts";
import { KVCache } from "../src/models/kv_cache.ts";
import { tensor } from "../src/tensor/create.ts";
import { gpuTest, randomArray, setup } from "./util.ts";

const FIX = new URL("./fixtures/hf-reference/", import.meta.url).pathname;

/** A word-level tokenizer over "t0".."t{V-1}" with BOS 1, EOS 2, PAD 0 (the fixtures' special ids). */
function wordTokenizer(V: number): Tokenizer {
  const vocab: Record<string, number> = {};
  for (let i = 0; i < V; i++) vocab[`t${i}`] = i;
  return new Tokenizer(
    {
      version: "1.0",
      added_tokens: [],
      normalizer: null,
      pre_tokenizer: { type: "WhitespaceSplit" },
      post_processor: null,
      decoder: null,
      model: { type: "WordLevel", vocab, unk_token: "t0" },
    },
    { bos_token: "t1", eos_token: "t2", pad_token: "t0" },
  );
}

for (const name of ["llama", "gpt2"]) {
  Deno.test(
    `${name}: greedy generation with the KV cache reproduces transformers' tokens`,
    gpuTest,
    async () => {
      await setup();
      const ref = JSON.parse(await Deno.readTextFile(`${FIX}${name}/reference.json`));
      const model = await loadModel(`${FIX}${name}`, { requiresGrad: false });
      try {
        const tok = wordTokenizer(model.config.vocabSize);
        const prompt: number[] = ref.greedy.prompt;
        const out = await generate(model, tok, [prompt], {
          maxNewTokens: ref.greedy.new_tokens.length,
          eosTokenIds: [],
        });
        assert.deepEqual(out.tokens[0], ref.greedy.new_tokens);
        // a batch with a shorter, left-padded second prompt gives the same tokens for the first
        const both = await generate(model, tok, [prompt, prompt.slice(5)], {
          maxNewTokens: 4,
          eosTokenIds: [],
        });
        assert.deepEqual(both.tokens[0], ref.greedy.new_tokens.slice(0, 4));
        const alone = await generate(model, tok, [prompt.slice(5)], { maxNewTokens: 4, eosTokenIds: [] });
        assert.deepEqual(both.tokens[1], alone.tokens[0]);
      } finally {
        model.dispose();
      }
    },
  );
}

Deno.test(
  "KV cache: steps write in place; a step past the capacity moves the cache and keeps it",
  gpuTest,
  async () => {
    await setup();
    const [B, H, D] = [2, 3, 5];
    const steps = [4, 1, 1, 3, 1]; // capacity 5: the 4th step (3 positions) does not fit
    const cache = new KVCache(1, 5);
    try {
      const all: number[][] = [];
      let t = 0;
      for (const [i, T] of steps.entries()) {
        const data = randomArray(B * H * T * D, 70 + i, -1, 1);
        all.push(Array.from(data));
        const got = await scope(async () => {
          const k = tensor(data, [B, H, T, D]);
          const v = tensor(data.map((x) => -x), [B, H, T, D]);
          const { k: ck, v: cv, length } = cache.update(0, k, v);
          t += T;
          assert.equal(length, t);
          assert.equal(cache.length, t);
          assert.ok(ck.shape[2] >= t, `capacity ${ck.shape[2]} < ${t} positions`);
          return { k: await ck.toArray(), v: await cv.toArray(), cap: ck.shape[2] };
        });
        // position p of (b, h) holds the step's values that wrote it
        let p = 0;
        for (const [j, S] of steps.slice(0, i + 1).entries()) {
          for (let bh = 0; bh < B * H; bh++) {
            for (let s2 = 0; s2 < S; s2++) {
              for (let d = 0; d < D; d++) {
                const want = all[j][(bh * S + s2) * D + d];
                const at = (bh * got.cap + p + s2) * D + d;
                assert.equal(got.k[at], Math.fround(want), `step ${i}: key (${bh}, ${p + s2}, ${d})`);
                assert.equal(got.v[at], Math.fround(-want), `step ${i}: value (${bh}, ${p + s2}, ${d})`);
              }
            }
          }
          p += S;
        }
      }
    } finally {
      cache.dispose();
    }
  },
);

Deno.test("left and right padding give the unpadded logits for real tokens", gpuTest, async () => {
  await setup();
  const model = await loadModel(`${FIX}llama`, { requiresGrad: false });
  try {
    const seq = [5, 17, 99, 3, 250, 41, 7];
    const V = model.config.vocabSize;
    const run = (ids: number[][], mask: number[][]) =>
      scope(() => noGrad(() => model.forward(ids, { attentionMask: mask }).toArray()));
    const alone = await run([seq], [seq.map(() => 1)]);
    const padded = await run(
      [[...seq, 0, 0, 0], [0, 0, 0, ...seq]],
      [[...seq.map(() => 1), 0, 0, 0], [0, 0, 0, ...seq.map(() => 1)]],
    );
    const T = seq.length + 3;
    let worst = 0;
    for (let t = 0; t < seq.length; t++) {
      for (let v = 0; v < V; v++) {
        const a = alone[t * V + v];
        worst = Math.max(worst, Math.abs(padded[t * V + v] - a), Math.abs(padded[(T + 3 + t) * V + v] - a));
      }
    }
    assert.ok(worst < 2e-5, `max difference ${worst}`);
  } finally {
    model.dispose();
  }
});

Deno.test("sampling: seeded, top-k and top-p restrict the support", () => {
  const logits = new Float32Array([0, 5, 4, -3, 1]);
  const draw = (opts: Parameters<typeof pickToken>[1], seed: number, n = 400) => {
    const g = new Generator(seed);
    return Array.from({ length: n }, () => pickToken(logits, opts, g));
  };
  assert.equal(pickToken(logits, {}, new Generator(0)), 1);
  assert.deepEqual(draw({ doSample: true }, 3), draw({ doSample: true }, 3));
  assert.ok(new Set(draw({ doSample: true, topK: 2 }, 1)).size <= 2);
  assert.ok(draw({ doSample: true, topK: 2 }, 1).every((t) => t === 1 || t === 2));
  // p(1) ≈ 0.72 at temperature 1: top-p 0.5 keeps only token 1
  assert.ok(draw({ doSample: true, topP: 0.5 }, 2).every((t) => t === 1));
  assert.throws(() => pickToken(logits, { doSample: true, temperature: 0 }, new Generator(0)), /temperature/);
});

Deno.test(
  "greedy: picks on the GPU give the host loop's tokens, stop tokens and early ends included",
  gpuTest,
  async () => {
    await setup();
    const model = await loadModel(`${FIX}llama`, { requiresGrad: false });
    const tok = wordTokenizer(model.config.vocabSize);
    const prompts = [[1, 5, 9, 13, 4], [1, 7], [1, 30, 31]];
    const run = async (device: boolean, eos: number[], maxNewTokens = 12) => {
      const prev = setDeviceGreedy(device);
      try {
        return (await generate(model, tok, prompts, { maxNewTokens, eosTokenIds: eos })).tokens;
      } finally {
        setDeviceGreedy(prev);
      }
    };
    try {
      const free = await run(false, []);
      assert.deepEqual(await run(true, []), free);
      // stop tokens taken from the free run: one sequence stops early, then every one does at its first
      const early = free[1][2];
      const all = [...new Set(prompts.map((_, b) => free[b][1]))];
      for (const eos of [[early], all, [free[0][0]]]) {
        const host = await run(false, eos);
        assert.deepEqual(await run(true, eos), host, `stop tokens ${eos}`);
        host.forEach((t, b) => {
          const at = t.findIndex((x) => eos.includes(x));
          assert.equal(at, at < 0 ? -1 : t.length - 1, `sequence ${b} ends at its first stop token`);
        });
      }
      assert.deepEqual(await run(true, [], 1), free.map((t) => t.slice(0, 1)));
      assert.deepEqual(await run(true, [], 0), prompts.map(() => []));
    } finally {
      model.dispose();
    }
  },
);
