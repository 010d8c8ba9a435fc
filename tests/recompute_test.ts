/**
 * Activations recomputed on use (src/autograd/recompute.ts): an evicted storage gives its buffer back at once and
 * makes the same values again when read; a Llama forward/backward gives bit-identical gradients with and without
 * recomputation, and a lower peak of live bytes with it.
 */
import assert from "node:assert/strict";
import { exp, memoryStats, mul, noGrad, scope, sum, tensor } from "../mod.ts";
import { recomputeOnUse, setRecomputeActivations } from "../src/autograd/recompute.ts";
import { initModel } from "../src/models/init.ts";
import { reshape } from "../src/autograd/ops/reshape.ts";
import { gpuTest, peakAndGradients, randomArray, setup } from "./util.ts";

Deno.test(
  "an evicted activation gives its buffer back and is recomputed, identical, when read",
  gpuTest,
  async () => {
    await setup();
    await scope(async () => {
      const x = tensor(randomArray(50_000, 1), [100, 500], { requiresGrad: true });
      const y = exp(x);
      const yv = reshape(y, [500, 100]); // a view shares the storage
      const want = await y.toArray();
      let calls = 0;
      const before = memoryStats().liveBytes;
      recomputeOnUse(y, () => {
        calls++;
        return exp(x);
      });
      assert.equal(y.storage.resident, false);
      assert.ok(before - memoryStats().liveBytes >= 200_000, "the buffer went back to the pool");
      assert.deepEqual(await yv.toArray(), want, "the view reads the recomputed values");
      assert.equal(calls, 1);
      assert.deepEqual(await y.toArray(), want);
      assert.equal(calls, 1, "recomputed once, then resident");
      // the backward through the evicted tensor still works (exp saves its output)
      sum(y).backward();
      assert.deepEqual(await x.grad!.toArray(), want);
      // a recompute that reads the evicted tensor itself is an error, not an endless recursion
      const w = exp(x);
      recomputeOnUse(w, () => exp(w));
      await assert.rejects(() => w.toArray(), /recompute reads the tensor itself/);
      // nothing is evicted outside a recorded graph
      const z = noGrad(() => exp(x));
      recomputeOnUse(z, () => exp(x));
      assert.equal(z.storage.resident, true);
    });
  },
);

const CONFIGS: Record<string, Record<string, unknown>> = {
  llama: {
    model_type: "llama",
    hidden_size: 64,
    intermediate_size: 176,
    num_attention_heads: 4,
    num_key_value_heads: 2,
    num_hidden_layers: 3,
    vocab_size: 300,
    tie_word_embeddings: false,
  },
  gpt2: { model_type: "gpt2", n_embd: 64, n_layer: 3, n_head: 4, vocab_size: 300, n_positions: 64 },
};

for (const [name, config] of Object.entries(CONFIGS)) {
  Deno.test(
    `${name}: recomputed norm and MLP activations give the same gradients at a lower peak`,
    gpuTest,
    async () => {
      await setup();
      const model = await initModel(config, { seed: 7 });
      try {
        const ids = [
          Array.from({ length: 40 }, (_, i) => (i * 37) % 300),
          Array.from({ length: 40 }, (_, i) => i),
        ];
        const R = randomArray(2 * 40 * 300, 5);
        const run = async (recompute: boolean, batch = ids) => {
          const prev = setRecomputeActivations(recompute);
          try {
            return await peakAndGradients(model, () => {
              const logits = model.forward(batch);
              return sum(mul(logits, tensor(R.subarray(0, logits.size), logits.shape)));
            }, { releaseGraph: true });
          } finally {
            setRecomputeActivations(prev);
          }
        };
        const kept = await run(false);
        const recomputed = await run(true);
        for (const [n, g] of kept.grads) {
          assert.deepEqual(recomputed.grads.get(n), g, `${n}: gradients differ`);
        }
        // per layer and token: the norm outputs, the merged heads and the SwiGLU (GELU) output are no longer
        // held at the peak
        assert.ok(
          recomputed.peak < kept.peak,
          `peak with recomputation ${recomputed.peak} ≥ without ${kept.peak}`,
        );
        // one-token rows: merging the heads is a view of the attention output, which is never evicted
        const one = [[5], [7]];
        const keptOne = await run(false, one);
        const recomputedOne = await run(true, one);
        for (const [n, g] of keptOne.grads) {
          assert.deepEqual(recomputedOne.grads.get(n), g, `one-token rows, ${n}: gradients differ`);
        }
      } finally {
        model.dispose();
      }
    },
  );
}
