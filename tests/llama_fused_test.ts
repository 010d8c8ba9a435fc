/**
 * The joined projections of a Llama layer (llama.ts: q/k/v as one product with RoPE in one dispatch, gate/up as one
 * product; `setFusedProjections`): the same hidden states bit for bit and the same gradients to rounding as the
 * per-module path, in fewer dispatches, under both kernel variants; without a graph, o_proj and down_proj add into
 * the residual stream in place; models with q/k/v biases (qwen2), LoRA adapters or int8 bases keep the per-module
 * path.
 */
import assert from "node:assert/strict";
import { dispatchCounter, mul, noGrad, scope, sum, tensor } from "../mod.ts";
import { initModel } from "../src/models/init.ts";
import { setFusedProjections } from "../src/models/llama.ts";
import { applyLora, unloadLora } from "../src/nn/lora.ts";
import type { CausalLM } from "../src/models/causal_lm.ts";
import type { Tensor } from "../src/tensor/tensor.ts";
import { assertClose, eachKernelVariant, gpuTest, randomArray, setup } from "./util.ts";

const BASE = {
  model_type: "llama",
  hidden_size: 40,
  intermediate_size: 56, // rows of 4 floats: no padding copies in the register kernel, so the counts compare
  num_attention_heads: 4,
  num_key_value_heads: 2, // (one KV head would make its permutes views)
  num_hidden_layers: 2,
  vocab_size: 97,
  tie_word_embeddings: true, // hiddenStates: every parameter gets a gradient
};

const IDS = [
  Array.from({ length: 13 }, (_, i) => (i * 37 + 5) % 97),
  Array.from({ length: 13 }, (_, i) => (i * 11 + 2) % 97),
];
const MASK = [Array(13).fill(1), [...Array(9).fill(1), 0, 0, 0, 0]];

/** Hidden states, gradients of Σ hidden·R and the dispatches of forward + backward, joined or per module. */
async function run(model: CausalLM, fused: boolean, params: [string, Tensor][] = model.namedParameters()) {
  const prev = setFusedProjections(fused);
  try {
    const n0 = dispatchCounter();
    const hidden = await scope(() =>
      noGrad(() => model.hiddenStates(IDS, { attentionMask: MASK }).toArray())
    );
    const noGradDispatches = dispatchCounter() - n0;
    const R = randomArray(hidden.length, 3);
    const trained = params.filter(([, p]) => p.requiresGrad);
    for (const [, p] of trained) {
      p.grad?.dispose();
      p.grad = null;
    }
    const d0 = dispatchCounter();
    await scope(async () => {
      const h = model.hiddenStates(IDS, { attentionMask: MASK });
      const l = sum(mul(h, tensor(R, h.shape)));
      l.backward();
      await l.item();
    });
    const dispatches = dispatchCounter() - d0;
    const grads = new Map<string, Float32Array>();
    for (const [n, p] of trained) grads.set(n, await p.grad!.toArray());
    return { hidden, grads, dispatches, noGradDispatches };
  } finally {
    setFusedProjections(prev);
  }
}

Deno.test(
  "llama: joined projections give the per-module hidden states bit for bit and its gradients, in fewer dispatches",
  gpuTest,
  async () => {
    await setup();
    const model = await initModel(BASE, { seed: 3 });
    try {
      await eachKernelVariant(async () => {
        const a = await run(model, true);
        const b = await run(model, false);
        assert.deepEqual(a.hidden, b.hidden, "hidden states");
        for (const [n, g] of b.grads) {
          // dX of the joined product sums over the three weights in one product: rounding differs
          assertClose(a.grads.get(n)!, g, { atol: 2e-5, rtol: 1e-4 }, n);
        }
        // per layer: forward 8 → 3 (q/k/v) and 3 → 3 (gate/up); backward 13 → 5 and 6 → 5 (see linear_cat.ts,
        // qkv_rope.ts)
        assert.equal(b.dispatches - a.dispatches, 14 * BASE.num_hidden_layers, "dispatches saved");
        // without a graph (the reference's forward): q/k/v 8 → 3, and o_proj and down_proj add into the residual
        // stream in place (2 adds fewer): the hidden states above are those of this path, bit for bit
        assert.equal(b.noGradDispatches - a.noGradDispatches, 7 * BASE.num_hidden_layers, "no-grad forward");
      });
    } finally {
      model.dispose();
    }
  },
);

Deno.test("qwen2 (q/k/v biases) and LoRA adapters keep the per-module path", gpuTest, async () => {
  await setup();
  const qwen = await initModel({ ...BASE, model_type: "qwen2" }, { seed: 4 });
  try {
    assert.ok(qwen.config.qkvBias);
    const a = await run(qwen, true);
    const b = await run(qwen, false);
    assert.deepEqual(a.hidden, b.hidden);
    // only gate/up join: 1 dispatch fewer per layer (backward), q/k/v as before
    assert.equal(b.dispatches - a.dispatches, 1 * BASE.num_hidden_layers);
  } finally {
    qwen.dispose();
  }
  const model = await initModel(BASE, { seed: 5 });
  try {
    const lora = applyLora(model, { r: 4, targetModules: ["q_proj", "up_proj"] });
    const adapters = lora.namedTrainableParameters();
    await run(model, false, adapters); // the first backward after applyLora dispatches less
    const a = await run(model, true, adapters);
    const b = await run(model, false, adapters);
    assert.deepEqual(a.hidden, b.hidden);
    assert.equal(a.dispatches, b.dispatches, "a hook takes every projection the per-module way");
    assert.equal(a.noGradDispatches, b.noGradDispatches, "and the residual adds");
    assert.ok(b.grads.size > 0);
    for (const [n, g] of b.grads) assert.deepEqual(a.grads.get(n), g, n);
    unloadLora(model);
  } finally {
    model.dispose();
  }
});
