/**
 * Preference pairs whose common prefix runs once (src/models/pack_pairs.ts): the packing itself, the models'
 * hidden states and gradients against the padded batch, and DPOTrainer's logs with prefix_sharing on and off.
 */
import assert from "node:assert/strict";
import { hostBatch } from "../src/models/causal_lm.ts";
import { initModel } from "../src/models/init.ts";
import { packPairs, pairSegments } from "../src/models/pack_pairs.ts";
import { assertSameDpoRun, TINY_GPT2, TINY_LLAMA, twoStepDpoRun } from "./trainer_helpers.ts";
import { assertSameHiddenAndGrads, gpuTest, hiddenAndGrads, randomArray, setup } from "./util.ts";

const TOL = { atol: 2e-6, rtol: 1e-5 };

/**
 * Three pairs, T = 12: pair 0 right-padded (prompt 5 + answers of 4 and 2, the answers' first token equal), pair 1
 * with no common token at all, pair 2 left-padded (prompt 6 + answers of 3 and 6).
 */
function pairBatch() {
  const P = 3, B = 2 * P, T = 12;
  const ids = new Int32Array(B * T), mask = new Int32Array(B * T);
  const put = (b: number, toks: number[], left = 0) =>
    toks.forEach((x, i) => {
      ids[b * T + left + i] = x;
      mask[b * T + left + i] = 1;
    });
  put(0, [3, 4, 5, 6, 7, 9, 10, 11, 12]); // chosen of pair 0: prompt 3..7, answer 9 10 11 12
  put(3, [3, 4, 5, 6, 7, 9, 14]); // rejected: the same prompt, answer 9 14 (shares its first token)
  put(1, [8, 3, 3, 3, 4]);
  put(4, [5, 6, 7]);
  put(2, [3, 5, 7, 9, 11, 13, 4, 4, 4], 3);
  put(5, [3, 5, 7, 9, 11, 13, 6, 6, 6, 6, 6, 6], 0);
  return { P, B, T, ids, mask };
}

Deno.test("packPairs: a pair's common prefix runs once; rows, positions and 4-word segments", () => {
  const { B, T, ids, mask } = pairBatch();
  const h = hostBatch({ data: ids, shape: [B, T] }, 100, { attentionMask: { data: mask, shape: [B, T] } });
  const p = packPairs(h);
  assert.deepEqual(p.spans, [
    { prefix: 6, chosen: 3, rejected: 1 },
    { prefix: 0, chosen: 5, rejected: 3 },
    { prefix: 6, chosen: 3, rejected: 6 },
  ]);
  assert.equal(p.T, 10 + 8 + 15);
  assert.equal(p.span, 15);
  // every real token finds its own id at its own position; both rows of a pair share the prefix rows
  for (let b = 0; b < B; b++) {
    for (let t = 0; t < T; t++) {
      const r = p.rows[b * T + t];
      if (mask[b * T + t] === 0) {
        assert.equal(r, -1);
        continue;
      }
      assert.equal(p.ids[r], ids[b * T + t], `row ${b}, column ${t}`);
      assert.equal(p.positions[r], h.positions[b * T + t], `position of row ${b}, column ${t}`);
    }
  }
  assert.equal(p.rows[0 * T + 5], p.rows[3 * T + 5], "pair 0's shared answer token");
  assert.equal(p.rows[2 * T + 3], p.rows[5 * T + 0], "pair 2: the left-padded prompt is shared");
  // the rejected rest restarts at the prefix's end: positions 6 of pair 0's rejected
  assert.equal(p.positions[p.rows[3 * T + 6]], 6);
  // segment words: prefix (start, end of the pair), chosen rest (start, its own end), rejected rest (hole)
  const w = (r: number) => Array.from(p.segments.subarray(4 * r, 4 * r + 4));
  assert.deepEqual(w(0), [0, 10, 0, 0]);
  assert.deepEqual(w(6), [0, 9, 0, 0]);
  assert.deepEqual(w(9), [0, 10, 6, 9]);
  // no common prefix: two plain segments
  assert.deepEqual(w(10), [10, 15, 0, 0]);
  assert.deepEqual(w(15), [15, 18, 0, 0]);
  assert.deepEqual(Array.from(pairSegments([{ prefix: 0, chosen: 0, rejected: 2 }])), [
    0,
    2,
    0,
    0,
    0,
    2,
    0,
    0,
  ]);
  assert.throws(() => packPairs({ ...h, B: 5, T: 1, ids: ids.subarray(0, 5), mask: null }), {
    message: /even number of rows/,
  });
});

for (
  const [name, cfg, checkpointing] of [
    ["llama", TINY_LLAMA, false],
    ["llama with gradient checkpointing", TINY_LLAMA, true],
    ["gpt2", TINY_GPT2, false],
  ] as const
) {
  Deno.test(
    `${name}: pairs packed around their common prefix give the padded batch's hidden states and gradients`,
    gpuTest,
    async () => {
      await setup();
      const model = await initModel(cfg, { seed: 7, std: 0.2 });
      model.gradientCheckpointing = checkpointing;
      const { B, T, ids, mask } = pairBatch();
      const idBatch = { data: ids, shape: [B, T] as [number, number] };
      const maskBatch = { data: mask, shape: [B, T] as [number, number] };
      const { rows, T: N } = packPairs(hostBatch(idBatch, cfg.vocab_size, { attentionMask: maskBatch }));
      const C = model.config.hiddenSize;
      // an upstream gradient per real token of each row; a shared packed row takes the sum of its rows' gradients
      const g = randomArray(B * T * C, 9);
      const run = (pairs: boolean) =>
        hiddenAndGrads(
          model,
          () => model.hiddenStates(idBatch, { attentionMask: maskBatch, packed: pairs ? "pairs" : false }),
          (size) => {
            const up = new Float32Array(size);
            for (let i = 0; i < B * T; i++) {
              if (rows[i] < 0) continue;
              const at = pairs ? rows[i] * C : i * C;
              for (let c = 0; c < C; c++) up[at + c] += g[i * C + c];
            }
            return up;
          },
          // the hidden state of every real token of every row, in [b, t] order
          (hv) => {
            const real: number[] = [];
            for (let i = 0; i < B * T; i++) {
              if (rows[i] < 0) continue;
              const at = pairs ? rows[i] * C : i * C;
              real.push(...hv.subarray(at, at + C));
            }
            return Float32Array.from(real);
          },
        );
      const padded = await run(false);
      const shared = await run(true);
      assertSameHiddenAndGrads(shared, padded, [1, N, C], TOL, name);
      model.dispose();
    },
  );
}

// a sliding window counts packed positions, which a shared prefix would shift: Mistral must pack plainly
const MISTRAL = { ...TINY_LLAMA, model_type: "mistral", sliding_window: 5 };

for (
  const [name, cfg] of [["llama", TINY_LLAMA], ["gpt2", TINY_GPT2], ["mistral (window 5)", MISTRAL]] as const
) {
  Deno.test(
    `${name}: DPOTrainer logs the same loss and metrics with prefix_sharing on and off`,
    gpuTest,
    async () => {
      await setup();
      const off = await twoStepDpoRun(cfg, { prefixSharing: false, outputDir: "/tmp/webdpo-prefix-sharing" });
      const on = await twoStepDpoRun(cfg, { prefixSharing: true, outputDir: "/tmp/webdpo-prefix-sharing" });
      assertSameDpoRun(on, off, TOL);
    },
  );
}
