/**
 * Padding-free batches (ForwardOptions.packed, DPOConfig.padding_free): the real tokens of a padded batch run as
 * one packed row, each sequence attending only to itself. At every real token the hidden states, and the
 * gradients of every parameter, must be those of the padded batch; the DPO trainer must log the same loss and
 * metrics and reach the same weights with padding_free on and off.
 */
import assert from "node:assert/strict";
import { packBatch, packedRows } from "../src/models/causal_lm.ts";
import { initModel } from "../src/models/init.ts";
import { SFTConfig } from "../src/sft/config.ts";
import { SFTTrainer } from "../src/sft/trainer.ts";
import {
  assertSameDpoRun,
  charTokenizer,
  containsATask,
  TINY_GPT2,
  TINY_LLAMA,
  twoStepDpoRun,
} from "./trainer_helpers.ts";
import {
  assertClose,
  assertSameHiddenAndGrads,
  gpuTest,
  hiddenAndGrads,
  randomArray,
  setup,
} from "./util.ts";

const TOL = { atol: 2e-6, rtol: 1e-5 };
// Gradients: |Δ| ≤ 1e-5 × the tensor's largest entry (observed ≤ 7e-7: sums over tokens grouped differently;
// assertSameHiddenAndGrads).

/** Three rows right-padded to 11 tokens (lengths 11, 4 and 7) and one left-padded row (3 pads, 8 tokens). */
function batch() {
  const B = 4, T = 11;
  const ids = new Int32Array(B * T);
  const mask = new Int32Array(B * T);
  const lengths = [11, 4, 7];
  lengths.forEach((n, b) => {
    for (let t = 0; t < n; t++) {
      ids[b * T + t] = 3 + ((b * 5 + t * 3) % 13);
      mask[b * T + t] = 1;
    }
  });
  for (let t = 3; t < T; t++) {
    ids[3 * T + t] = 3 + ((t * 7) % 13);
    mask[3 * T + t] = 1;
  }
  return { B, T, ids, mask };
}

Deno.test("packBatch: rows, positions and segments of a padded batch", () => {
  const { B, T, ids, mask } = batch();
  const positions = new Int32Array(B * T);
  for (let b = 0; b < B; b++) {
    let c = 0;
    for (let t = 0; t < T; t++) if (mask[b * T + t]) positions[b * T + t] = c++;
  }
  const p = packBatch({ B, T, ids, mask, positions });
  assert.equal(p.B, 1);
  assert.equal(p.T, 11 + 4 + 7 + 8);
  const rows = packedRows(mask, B, T);
  assert.deepEqual(Array.from(rows.subarray(T, 2 * T)), [11, 12, 13, 14, -1, -1, -1, -1, -1, -1, -1]);
  assert.deepEqual(Array.from(rows.subarray(3 * T, 3 * T + 4)), [-1, -1, -1, 22]);
  // the left-padded row keeps its own positions 0.. and one segment [22, 30)
  assert.deepEqual(Array.from(p.positions.subarray(22)), [0, 1, 2, 3, 4, 5, 6, 7]);
  assert.deepEqual(Array.from(p.segments.subarray(2 * 22, 2 * 23)), [22, 30]);
  assert.deepEqual(Array.from(p.segments.subarray(2 * 12, 2 * 13)), [11, 15]);
  for (let i = 0; i < B * T; i++) if (rows[i] >= 0) assert.equal(p.ids[rows[i]], ids[i]);
  assert.throws(
    () =>
      packBatch({
        B: 1,
        T: 2,
        ids: new Int32Array(2),
        mask: new Int32Array(2),
        positions: new Int32Array(2),
      }),
    {
      message: /no real token/,
    },
  );
});

const MISTRAL = { ...TINY_LLAMA, model_type: "mistral", sliding_window: 5 };

for (
  const [name, cfg] of [["llama", TINY_LLAMA], ["mistral (window 5)", MISTRAL], ["gpt2", TINY_GPT2]] as const
) {
  Deno.test(
    `${name}: packed hidden states and gradients equal the padded batch's at real tokens`,
    gpuTest,
    async () => {
      await setup();
      const model = await initModel(cfg, { seed: 5, std: 0.2 });
      const { B, T, ids, mask } = batch();
      // the sliding window counts padded positions in transformers: compare the windowed model on right padding only
      const rowsUsed = name.startsWith("mistral") ? 3 : B;
      const shape: [number, number] = [rowsUsed, T];
      const idBatch = { data: ids.subarray(0, rowsUsed * T), shape };
      const maskBatch = { data: mask.subarray(0, rowsUsed * T), shape };
      const rows = packedRows(maskBatch.data, rowsUsed, T);
      const N = rows.reduce((n, r) => n + (r >= 0 ? 1 : 0), 0);
      const C = model.config.hiddenSize;
      const g = randomArray(N * C, 9);
      const run = (packed: boolean) =>
        hiddenAndGrads(
          model,
          () => model.hiddenStates(idBatch, { attentionMask: maskBatch, packed }),
          // the same upstream gradient at every real token, zero on padding
          (size) => {
            if (packed) return g;
            const up = new Float32Array(size);
            rows.forEach((r, i) => r >= 0 && up.set(g.subarray(r * C, (r + 1) * C), i * C));
            return up;
          },
          (hv) => {
            const real = new Float32Array(N * C);
            if (packed) real.set(hv);
            else rows.forEach((r, i) => r >= 0 && real.set(hv.subarray(i * C, (i + 1) * C), r * C));
            return real;
          },
        );
      const padded = await run(false);
      const packed = await run(true);
      assertSameHiddenAndGrads(packed, padded, [1, N, C], TOL, name);
      model.dispose();
    },
  );
}

for (const [name, cfg] of [["llama", TINY_LLAMA], ["gpt2", TINY_GPT2]] as const) {
  Deno.test(
    `${name}: DPOTrainer logs the same loss and metrics with padding_free on and off`,
    gpuTest,
    async () => {
      await setup();
      const off = await twoStepDpoRun(cfg, { paddingFree: false, outputDir: "/tmp/webdpo-packed" });
      const on = await twoStepDpoRun(cfg, { paddingFree: true, outputDir: "/tmp/webdpo-packed" });
      assertSameDpoRun(on, off, TOL);
    },
  );
}

Deno.test("SFTTrainer logs the same loss with padding_free on and off", gpuTest, async () => {
  await setup();
  const rows = containsATask(6, 4).map((r) => ({ prompt: r.prompt, completion: r.chosen }));
  const train = async (paddingFree: boolean) => {
    const model = await initModel(TINY_LLAMA, { seed: 2, std: 0.1 });
    const trainer = new SFTTrainer({
      model,
      tokenizer: charTokenizer(),
      trainDataset: rows,
      args: new SFTConfig({
        learningRate: 1e-3,
        maxSteps: 2,
        perDeviceTrainBatchSize: 3,
        loggingSteps: 1,
        disableTqdm: true,
        paddingFree,
      }),
      log: () => {},
    });
    await trainer.train();
    const history = trainer.state.logHistory.slice(0, 2);
    const weights = await model.namedParameters()[0][1].toArray();
    trainer.dispose();
    model.dispose();
    return { history, weights };
  };
  const off = await train(false);
  const on = await train(true);
  for (let s = 0; s < 2; s++) {
    for (const k of ["loss", "grad_norm", "num_tokens"]) {
      const v = off.history[s][k] as number, got = on.history[s][k] as number;
      assert.ok(Math.abs(got - v) <= 1e-5 * Math.max(1, Math.abs(v)), `step ${s + 1} ${k}: ${got} vs ${v}`);
    }
  }
  assertClose(on.weights, off.weights, TOL, "updated weights");
});
