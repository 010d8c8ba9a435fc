/**
 * Parity with Hugging Face transformers: tiny random checkpoints written by transformers 4.57.6 and the logits,
 * log-probs and greedy tokens it computed for them (tests/fixtures/hf-reference, see its README).
 */
import assert from "node:assert/strict";
import { loadModel } from "../src/models/loader.ts";
import { noGrad, scope } from "../mod.ts";
import { gpuTest, setup } from "./util.ts";

const FIX = new URL("./fixtures/hf-reference/", import.meta.url).pathname;

interface Reference {
  input_ids: number[][];
  attention_mask: number[][];
  logits: number[][][];
  next_token_logprobs: (number | null)[][];
  sum_logprobs: number[];
  greedy: { prompt: number[]; new_tokens: number[] };
}

function logSoftmaxAt(row: ArrayLike<number>, off: number, V: number, label: number): number {
  let m = -Infinity;
  for (let v = 0; v < V; v++) m = Math.max(m, row[off + v]);
  let s = 0;
  for (let v = 0; v < V; v++) s += Math.exp(row[off + v] - m);
  return row[off + label] - m - Math.log(s);
}

for (const name of ["llama", "llama_bf16", "gpt2"]) {
  Deno.test(`${name}: logits, log-probs and greedy tokens match transformers`, gpuTest, async () => {
    await setup();
    const ref: Reference = JSON.parse(await Deno.readTextFile(`${FIX}${name}/reference.json`));
    const model = await loadModel(`${FIX}${name}`, { requiresGrad: false });
    try {
      const B = ref.input_ids.length, T = ref.input_ids[0].length, V = ref.logits[0][0].length;
      const logits = await scope(() =>
        noGrad(() => model.forward(ref.input_ids, { attentionMask: ref.attention_mask }).toArray())
      );
      // logits on valid positions: max abs error ≤ 1e-4 relative to the logits' scale
      let scale = 0;
      for (const b of ref.logits) for (const t of b) for (const v of t) scale = Math.max(scale, Math.abs(v));
      let worst = 0;
      for (let b = 0; b < B; b++) {
        for (let t = 0; t < T; t++) {
          if (!ref.attention_mask[b][t]) continue;
          for (let v = 0; v < V; v++) {
            worst = Math.max(worst, Math.abs(logits[(b * T + t) * V + v] - ref.logits[b][t][v]));
          }
        }
      }
      assert.ok(worst <= 1e-4 * Math.max(1, scale), `max abs logit error ${worst} (scale ${scale})`);
      // per-token and summed log-probs
      for (let b = 0; b < B; b++) {
        let sum = 0;
        for (let t = 0; t + 1 < T; t++) {
          const want = ref.next_token_logprobs[b][t];
          if (want === null) continue;
          const got = logSoftmaxAt(logits, (b * T + t) * V, V, ref.input_ids[b][t + 1]);
          assert.ok(Math.abs(got - want) <= 1e-4, `logprob [${b}][${t}] ${got} vs ${want}`);
          sum += got;
        }
        assert.ok(
          Math.abs(sum - ref.sum_logprobs[b]) <= 1e-3,
          `sum logprob [${b}] ${sum} vs ${ref.sum_logprobs[b]}`,
        );
      }
      // greedy continuation (argmax loop over the full sequence)
      const seq = [...ref.greedy.prompt];
      for (let i = 0; i < ref.greedy.new_tokens.length; i++) {
        const l = await scope(() => noGrad(() => model.forward([seq]).toArray()));
        const off = (seq.length - 1) * V;
        let best = 0;
        for (let v = 1; v < V; v++) if (l[off + v] > l[off + best]) best = v;
        seq.push(best);
      }
      assert.deepEqual(seq.slice(ref.greedy.prompt.length), ref.greedy.new_tokens);
    } finally {
      model.dispose();
    }
  });
}
