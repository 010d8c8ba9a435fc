import assert from "node:assert/strict";
import { dpoStepFlops, forwardFlops, peakTflops, productWeights } from "../bench/mfu.ts";
import { initModel } from "../src/models/init.ts";
import { gpuTest, setup } from "./util.ts";

const SMOLLM2_135M = {
  hidden_size: 576,
  intermediate_size: 1536,
  num_attention_heads: 9,
  num_key_value_heads: 3,
  num_hidden_layers: 30,
  vocab_size: 49152,
};

Deno.test(
  "MFU: the product weights are the model's projections and its (tied) LM head",
  gpuTest,
  async () => {
    await setup();
    const cfg = {
      model_type: "llama",
      hidden_size: 24,
      intermediate_size: 40,
      num_attention_heads: 4,
      num_key_value_heads: 2,
      num_hidden_layers: 3,
      vocab_size: 50,
      tie_word_embeddings: true,
    };
    const model = await initModel(cfg);
    try {
      const weights = model.namedParameters()
        .filter(([n]) => n.endsWith("proj.weight") || n === "model.embed_tokens.weight")
        .reduce((s, [, t]) => s + t.size, 0);
      assert.equal(productWeights(cfg), weights);
    } finally {
      model.dispose();
    }
    // SmolLM2-135M: its published 134,515,008 parameters less the 61 norms' 576 weights each
    assert.equal(productWeights(SMOLLM2_135M), 134_515_008 - 61 * 576);
  },
);

Deno.test("MFU: forward and DPO-step FLOPs count causal attention pairs and 4 forwards a sequence", () => {
  const c = SMOLLM2_135M;
  const P = productWeights(c);
  // one token: its products and one (query, key) pair per head and layer, QKᵀ and PV at 2 FLOPs a multiply-add
  assert.equal(forwardFlops(c, 1), 2 * P + 4 * 30 * 9 * 64);
  assert.equal(forwardFlops(c, 3) - 3 * 2 * P, 6 * 4 * 30 * 9 * 64);
  assert.equal(dpoStepFlops(c, [1, 3]), 4 * (forwardFlops(c, 1) + forwardFlops(c, 3)));
});

Deno.test("MFU: peaks from the data-sheet table, WEBDPO_PEAK_TFLOPS first, none for CPU adapters", () => {
  const prev = Deno.env.get("WEBDPO_PEAK_TFLOPS");
  Deno.env.delete("WEBDPO_PEAK_TFLOPS");
  try {
    assert.deepEqual(peakTflops("NVIDIA H100 80GB HBM3"), { tflops: 66.9, source: "data sheet" });
    assert.equal(peakTflops("NVIDIA H100 PCIe")?.tflops, 51.2);
    assert.equal(peakTflops("NVIDIA L40S")?.tflops, 91.6);
    assert.equal(peakTflops("NVIDIA L4")?.tflops, 30.3);
    assert.equal(peakTflops("llvmpipe (LLVM 15.0.6, 256 bits)"), null);
    Deno.env.set("WEBDPO_PEAK_TFLOPS", "2.5");
    assert.deepEqual(peakTflops("llvmpipe (LLVM 15.0.6, 256 bits)"), {
      tflops: 2.5,
      source: "WEBDPO_PEAK_TFLOPS",
    });
    Deno.env.set("WEBDPO_PEAK_TFLOPS", "fast");
    assert.throws(() => peakTflops("NVIDIA H100"), /positive number/);
  } finally {
    if (prev === undefined) Deno.env.delete("WEBDPO_PEAK_TFLOPS");
    else Deno.env.set("WEBDPO_PEAK_TFLOPS", prev);
  }
});
