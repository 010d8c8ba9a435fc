/**
 * Checks of the float64 whole-model references (tests/reference/transformer.ts, transformer_dpo.ts) that the DPO
 * trainer's one-step test compares against: the backward against central finite differences in float64 (every
 * parameter entry, tiny Llama and GPT-2 configs with padded rows), the forward (and a Llama gradient) against what
 * transformers computed for the hf-reference checkpoints, the part from logits on against the golden `batch`
 * cases, and the DPO step (whole-pipeline finite differences, AdamW step 1 with clipping and weight decay groups).
 * CPU only: no GPU is used.
 */
import assert from "node:assert/strict";
import { readSafetensors } from "../src/models/safetensors.ts";
import {
  referenceForward,
  referenceGradients,
  referenceParamShapes,
  type RefModelConfig,
  type RefParams,
} from "./reference/transformer.ts";
import {
  hfNoDecay,
  type RefDpoBatch,
  type RefDpoOptions,
  referenceDpoFromLogits,
  referenceDpoStep,
} from "./reference/transformer_dpo.ts";

// ---------------------------------------------------------------------------------------------------------------
// helpers

/** A seeded normal generator (mulberry32 + Box–Muller). */
function normals(seed: number): () => number {
  let a = seed >>> 0;
  const uniform = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  return () => Math.sqrt(-2 * Math.log(1 - uniform())) * Math.cos(2 * Math.PI * uniform());
}

/** Random parameters: weights N(0, std²), norm weights 1 + N(0, 0.3²), biases N(0, 0.3²). */
function randomParams(config: RefModelConfig, seed: number, std = 0.5): RefParams {
  const rnd = normals(seed);
  const out: RefParams = new Map();
  for (const [name, shape] of referenceParamShapes(config)) {
    const n = shape.reduce((a, b) => a * b, 1);
    const norm = /norm\.weight$|ln_(\d+|f)\.weight$/.test(name);
    const bias = name.endsWith(".bias");
    out.set(
      name,
      Float64Array.from({ length: n }, () => (norm ? 1 + 0.3 * rnd() : bias ? 0.3 * rnd() : std * rnd())),
    );
  }
  return out;
}

const copyParams = (p: RefParams): RefParams => new Map([...p].map(([k, v]) => [k, Float64Array.from(v)]));

function dot(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i] * b[i];
  return s;
}

/**
 * Fourth-order central differences, (8(f(x+h) − f(x−h)) − (f(x+2h) − f(x−2h))) / 12h, of f at every selected entry
 * of every parameter, against `grads`: asserts |fd − g| ≤ rtol·|g| + atol. With h = 1e-4 the truncation error is O(h⁴) and the
 * rounding error about 1e-16·|f|/h: entries whose exact gradient is 0 (e.g. key biases, which shift every score of
 * a softmax row alike) show ~5e-11, hence atol 2e-10.
 */
function checkFiniteDifferences(
  params: RefParams,
  grads: Map<string, Float64Array>,
  f: () => number,
  { h = 1e-4, rtol = 1e-6, atol = 2e-10, every = 1 } = {},
): void {
  let checked = 0;
  const at = (p: Float64Array, i: number, x: number) => {
    p[i] = x;
    return f();
  };
  for (const [name, p] of params) {
    const g = grads.get(name);
    assert.ok(g, `no gradient for ${name}`);
    assert.equal(g.length, p.length, `${name}: gradient size`);
    for (let i = 0; i < p.length; i += every) {
      const x = p[i];
      const d1 = at(p, i, x + h) - at(p, i, x - h);
      const d2 = at(p, i, x + 2 * h) - at(p, i, x - 2 * h);
      p[i] = x;
      const fd = (8 * d1 - d2) / (12 * h);
      const err = Math.abs(fd - g[i]);
      checked++;
      assert.ok(
        err <= rtol * Math.abs(g[i]) + atol,
        `${name}[${i}]: backward ${g[i]}, finite differences ${fd}`,
      );
    }
  }
  assert.ok(checked > 0);
}

function assertClose(
  got: ArrayLike<number>,
  want: ArrayLike<number>,
  atol: number,
  rtol: number,
  what: string,
) {
  assert.equal(got.length, want.length, `${what}: length`);
  for (let i = 0; i < want.length; i++) {
    assert.ok(
      Math.abs(got[i] - want[i]) <= atol + rtol * Math.abs(want[i]),
      `${what}[${i}]: ${got[i]} vs ${want[i]}`,
    );
  }
}

// ---------------------------------------------------------------------------------------------------------------
// tiny configs and a batch with a full row, a right-padded row and a left-padded row

const LLAMA: RefModelConfig = {
  architecture: "llama",
  vocabSize: 11,
  hiddenSize: 8,
  intermediateSize: 12,
  numLayers: 2,
  numHeads: 2,
  numKvHeads: 1,
  headDim: 4,
  normEps: 1e-5,
  ropeTheta: 10000,
  tieWordEmbeddings: false,
  qkvBias: false,
  oBias: false,
  mlpBias: false,
};

/** Tied head, every bias, a sliding window on layer 0, llama3 RoPE scaling. */
const LLAMA_VARIANT: RefModelConfig = {
  ...LLAMA,
  tieWordEmbeddings: true,
  qkvBias: true,
  oBias: true,
  mlpBias: true,
  layerSlidingWindow: [2, null],
  ropeTheta: 500,
  ropeScaling: { factor: 8, lowFreqFactor: 1, highFreqFactor: 4, originalMaxPositionEmbeddings: 16 },
};

const GPT2: RefModelConfig = {
  architecture: "gpt2",
  vocabSize: 11,
  hiddenSize: 8,
  intermediateSize: 32,
  numLayers: 2,
  numHeads: 2,
  numKvHeads: 2,
  headDim: 4,
  normEps: 1e-5,
  ropeTheta: 0,
  tieWordEmbeddings: true,
  qkvBias: true,
  oBias: true,
  mlpBias: true,
  maxPositionEmbeddings: 7,
};

/** Untied head, attention scaled by 1/(layer + 1) as scale_attn_by_inverse_layer_idx does. */
const GPT2_VARIANT: RefModelConfig = {
  ...GPT2,
  tieWordEmbeddings: false,
  raw: { scale_attn_by_inverse_layer_idx: true },
};

const IDS = [[1, 5, 9, 3, 7], [2, 10, 4, 0, 0], [0, 0, 6, 8, 1]];
const MASK = [[1, 1, 1, 1, 1], [1, 1, 1, 0, 0], [0, 0, 1, 1, 1]];

for (
  const [label, config] of [
    ["llama (GQA, untied)", LLAMA],
    ["llama (tied, biases, sliding window, llama3 RoPE)", LLAMA_VARIANT],
    ["gpt2 (tied)", GPT2],
    ["gpt2 (untied, scale by inverse layer)", GPT2_VARIANT],
  ] as const
) {
  Deno.test(`backward = float64 finite differences (every parameter entry): ${label}`, () => {
    const params = randomParams(config, 7);
    const rnd = normals(99);
    const logits = referenceForward(config, params, IDS, MASK);
    assert.equal(logits.length, 3 * 5 * config.vocabSize);
    assert.ok(logits.every(Number.isFinite));
    const seed = Float64Array.from(logits, () => rnd());
    const grads = referenceGradients(config, params, IDS, MASK, seed);
    assert.deepEqual([...grads.keys()].sort(), [...params.keys()].sort());
    // a gradient that is zero everywhere would pass trivially: the checked ones are not
    for (const [name, g] of grads) {
      if (name === "transformer.wpe.weight") continue; // rows ≥ T are unused
      assert.ok(g.some((v) => v !== 0), `${name}: all-zero gradient`);
    }
    checkFiniteDifferences(params, grads, () => dot(seed, referenceForward(config, params, IDS, MASK)));
  });

  Deno.test(`padding: valid positions match the unpadded sequence run alone: ${label}`, () => {
    const params = randomParams(config, 3);
    const V = config.vocabSize;
    const batch = referenceForward(config, params, IDS, MASK);
    IDS.forEach((row, b) => {
      const valid = row.map((_, t) => t).filter((t) => MASK[b][t] === 1);
      const alone = referenceForward(config, params, [valid.map((t) => row[t])]);
      valid.forEach((t, j) => {
        const got = batch.subarray((b * 5 + t) * V, (b * 5 + t + 1) * V);
        assertClose(got, alone.subarray(j * V, (j + 1) * V), 1e-12, 1e-12, `row ${b} position ${t}`);
      });
    });
  });
}

Deno.test("a left-padded query that sees no key gets a zero attention output (and no gradient)", () => {
  // position 0 is padding and every key up to it is padding: its attention output is a zero row, so its logits
  // depend on its own embedding only (through the MLP and the head), not on q/k/v
  const config: RefModelConfig = { ...LLAMA, numLayers: 1 };
  const params = randomParams(config, 5);
  const ids = [[4, 9, 2, 6]];
  const mask = [[0, 1, 1, 1]];
  const V = config.vocabSize;
  const base = referenceForward(config, params, ids, mask);
  // changing v_proj changes every real position but not position 0, whose query sees no key
  const v = params.get("model.layers.0.self_attn.v_proj.weight")!;
  v.forEach((x, i) => (v[i] = x * 1.5 + 0.1));
  const after = referenceForward(config, params, ids, mask);
  assertClose(after.subarray(0, V), base.subarray(0, V), 0, 0, "padded position 0");
  assert.ok(Math.abs(after[V] - base[V]) > 1e-6, "a real position must change");
  const seed = new Float64Array(base.length);
  seed.fill(1, 0, V); // only the padded position's logits
  const g = referenceGradients(config, params, ids, mask, seed);
  for (const name of ["q_proj", "k_proj", "v_proj"]) {
    assert.ok(g.get(`model.layers.0.self_attn.${name}.weight`)!.every((x) => x === 0), name);
  }
});

Deno.test("parameter errors name the parameter", () => {
  const params = randomParams(LLAMA, 1);
  params.delete("model.layers.1.mlp.up_proj.weight");
  assert.throws(() => referenceForward(LLAMA, params, IDS, MASK), /model\.layers\.1\.mlp\.up_proj\.weight/);
  const short = randomParams(LLAMA, 1);
  short.set("lm_head.weight", new Float64Array(3));
  assert.throws(() => referenceForward(LLAMA, short, IDS, MASK), /lm_head\.weight.*\[11,8\]/);
  assert.throws(() => referenceForward(LLAMA, randomParams(LLAMA, 1), [[1, 11]]), /outside vocab/);
});

// ---------------------------------------------------------------------------------------------------------------
// transformers' outputs for the hf-reference checkpoints

const HF = new URL("./fixtures/hf-reference/", import.meta.url).pathname;

async function loadHf(
  name: string,
): Promise<{ config: RefModelConfig; params: RefParams; ref: Record<string, unknown> }> {
  const raw = JSON.parse(await Deno.readTextFile(`${HF}${name}/config.json`));
  const ref = JSON.parse(await Deno.readTextFile(`${HF}${name}/reference.json`));
  const tensors = await readSafetensors(`${HF}${name}/model.safetensors`);
  const params: RefParams = new Map([...tensors].map(([k, t]) => [k, Float64Array.from(t.data)]));
  const config: RefModelConfig = raw.model_type === "gpt2"
    ? {
      architecture: "gpt2",
      vocabSize: raw.vocab_size,
      hiddenSize: raw.n_embd,
      intermediateSize: raw.n_inner ?? 4 * raw.n_embd,
      numLayers: raw.n_layer,
      numHeads: raw.n_head,
      numKvHeads: raw.n_head,
      headDim: raw.n_embd / raw.n_head,
      normEps: raw.layer_norm_epsilon,
      ropeTheta: 0,
      tieWordEmbeddings: raw.tie_word_embeddings ?? true,
      qkvBias: true,
      oBias: true,
      mlpBias: true,
      maxPositionEmbeddings: raw.n_positions,
      raw,
    }
    : {
      architecture: "llama",
      vocabSize: raw.vocab_size,
      hiddenSize: raw.hidden_size,
      intermediateSize: raw.intermediate_size,
      numLayers: raw.num_hidden_layers,
      numHeads: raw.num_attention_heads,
      numKvHeads: raw.num_key_value_heads,
      headDim: raw.head_dim,
      normEps: raw.rms_norm_eps,
      ropeTheta: raw.rope_theta,
      tieWordEmbeddings: raw.tie_word_embeddings,
      qkvBias: raw.attention_bias,
      oBias: raw.attention_bias,
      mlpBias: raw.mlp_bias,
    };
  return { config, params, ref };
}

for (const name of ["llama", "gpt2"]) {
  Deno.test(`forward = transformers at every valid position (1e-4): hf-reference/${name}`, async () => {
    const { config, params, ref } = await loadHf(name);
    const ids = ref.input_ids as number[][];
    const mask = ref.attention_mask as number[][];
    const want = ref.logits as number[][][];
    const T = ids[0].length, V = config.vocabSize;
    const got = referenceForward(config, params, ids, mask);
    let worst = 0;
    let valid = 0;
    ids.forEach((_, b) => {
      for (let t = 0; t < T; t++) {
        if (mask[b][t] === 0) continue;
        valid++;
        for (let v = 0; v < V; v++) {
          worst = Math.max(worst, Math.abs(got[(b * T + t) * V + v] - want[b][t][v]));
        }
      }
    });
    assert.equal(valid, 16 + 11 + 16);
    assert.ok(worst <= 1e-4, `max |Δlogit| ${worst}`);
  });
}

Deno.test("backward = torch's gradient of Σ next-token log-probs (hf-reference/llama, sequence 0)", async () => {
  const { config, params, ref } = await loadHf("llama");
  const check = ref.gradient_check as {
    objective: number;
    params: Record<string, {
      shape: number[];
      l2_norm: number;
      sum: number;
      first8: number[];
      full?: number[];
      row_of_first_input_token?: { token_id: number; first8: number[] };
    }>;
  };
  const ids = [(ref.input_ids as number[][])[0]];
  const T = ids[0].length, V = config.vocabSize, C = config.hiddenSize;
  const z = referenceForward(config, params, ids);
  // objective Σ_t log softmax(z[t])[ids[t + 1]] and its logits gradient onehot − softmax
  let objective = 0;
  const dz = new Float64Array(z.length);
  for (let t = 0; t + 1 < T; t++) {
    const row = z.subarray(t * V, (t + 1) * V);
    const m = Math.max(...row);
    const lse = m + Math.log(row.reduce((s, x) => s + Math.exp(x - m), 0));
    objective += row[ids[0][t + 1]] - lse;
    for (let v = 0; v < V; v++) dz[t * V + v] = (v === ids[0][t + 1] ? 1 : 0) - Math.exp(row[v] - lse);
  }
  assertClose([objective], [check.objective], 0, 1e-5, "objective");
  const grads = referenceGradients(config, params, ids, undefined, dz);
  const names = Object.keys(check.params);
  assert.ok(names.length >= 6);
  for (const name of names) {
    const want = check.params[name];
    const g = grads.get(name)!;
    assert.equal(g.length, want.shape.reduce((a, b) => a * b, 1), name);
    const l2 = Math.sqrt(dot(g, g));
    // torch computed in float32: seen here, |Δ l2| ≤ 3e-7 relative, |Δ sum| ≤ 2e-6·l2, and per entry
    // |Δ| ≤ 3e-5 of an RMS entry (l2/√n); the bounds below leave a few times that
    const scale = 1e-4 * want.l2_norm / Math.sqrt(g.length);
    assertClose([l2], [want.l2_norm], 0, 2e-6, `${name} l2_norm`);
    assertClose([g.reduce((a, b) => a + b, 0)], [want.sum], 1e-5 * want.l2_norm, 0, `${name} sum`);
    assertClose(g.subarray(0, 8), want.first8, scale, 1e-4, `${name} first8`);
    if (want.full) assertClose(g, want.full, scale, 1e-4, `${name} full`);
    if (want.row_of_first_input_token) {
      const id = want.row_of_first_input_token.token_id;
      assertClose(
        g.subarray(id * C, id * C + 8),
        want.row_of_first_input_token.first8,
        scale,
        1e-4,
        `${name} row`,
      );
    }
  }
});

// ---------------------------------------------------------------------------------------------------------------
// the golden batch cases: logits → log-probs, loss, rewards, metrics, d loss / d policy logits

interface GoldenCase {
  id: string;
  kind: string;
  config: Record<string, unknown>;
  inputs: Record<string, unknown>;
  outputs?: Record<string, unknown>;
}
const golden: GoldenCase[] =
  JSON.parse(await Deno.readTextFile(new URL("./fixtures/dpo/vectors.json", import.meta.url))).cases;
const flat = (x: unknown): number[] => (Array.isArray(x) ? x.flatMap(flat) : [x as number]);

/** The batch cases this reference covers: no WPO, no LD-DPO, reference logits or reference-free. */
const covered = golden.filter((c) =>
  c.kind === "batch" && c.outputs && !c.config.use_weighting && c.config.ld_alpha === null &&
  (c.inputs.reference_logits !== undefined || c.config.reference_free === true)
);

Deno.test("the golden batch cases this reference covers include sigmoid, ipo, RPO and sft", () => {
  const ids = covered.map((c) => c.id);
  for (
    const id of ["batch/sigmoid/beta=0.1/A", "batch/ipo/beta=0.5/A", "batch/sigmoid+rpo_alpha=0.5/beta=0.1/A"]
  ) {
    assert.ok(ids.includes(id), id);
  }
  assert.ok(ids.length >= 8, ids.join(", "));
});

for (const c of covered) {
  Deno.test(`referenceDpoFromLogits = golden ${c.id} (float64, 1e-9)`, () => {
    const cfg = c.config;
    const labels = c.inputs.labels as number[][];
    const V = (c.inputs.policy_logits as number[][][])[0][0].length;
    const lossType = cfg.loss_type as string | string[];
    const r = referenceDpoFromLogits({
      policyLogits: flat(c.inputs.policy_logits),
      referenceLogits: cfg.reference_free ? null : flat(c.inputs.reference_logits),
      labels,
      vocabSize: V,
      dpo: {
        beta: cfg.beta as number,
        lossType,
        lossWeights: (cfg.loss_weights as number[] | null) ?? undefined,
        labelSmoothing: cfg.label_smoothing as number,
        rpoAlpha: cfg.rpo_alpha as number | null,
        fDivergenceType: cfg.f_divergence_type as RefDpoOptions["fDivergenceType"],
        fAlphaDivergenceCoef: cfg.f_alpha_divergence_coef as number,
        discopopTau: cfg.discopop_tau as number,
        labelPadTokenId: cfg.label_pad_token_id as number,
      },
    });
    const o = c.outputs!;
    const tol = 1e-9;
    const near = (got: ArrayLike<number>, want: unknown, what: string) => {
      const w = flat(want);
      assertClose(got, w, tol * Math.max(1, ...w.map(Math.abs)), 0, what);
    };
    near(r.policyChosenLogps, o.policy_chosen_logps, "policy_chosen_logps");
    near(r.policyRejectedLogps, o.policy_rejected_logps, "policy_rejected_logps");
    if (o.reference_chosen_logps) {
      near(r.referenceChosenLogps, o.reference_chosen_logps, "reference_chosen_logps");
    }
    if (o.reference_rejected_logps) {
      near(r.referenceRejectedLogps, o.reference_rejected_logps, "reference_rejected_logps");
    }
    assert.deepEqual(r.chosenTokenCounts, o.chosen_token_counts);
    assert.deepEqual(r.rejectedTokenCounts, o.rejected_token_counts);
    if (o.losses) near(r.losses, o.losses, "losses");
    near([r.loss], [o.loss], "loss");
    near(r.chosenRewards, o.chosen_rewards, "chosen_rewards");
    near(r.rejectedRewards, o.rejected_rewards, "rejected_rewards");
    if (o.nll_loss !== undefined) near([r.metrics.nll_loss!], [o.nll_loss], "nll_loss");
    const metrics = o.metrics as Record<string, number>;
    for (const [k, v] of Object.entries(metrics)) {
      const got = k === "loss" ? r.loss : r.metrics[k as keyof typeof r.metrics];
      assert.ok(got !== undefined, `metric ${k} missing`);
      near([got], [v], `metrics.${k}`);
    }
    near(r.gradPolicyLogits, o.grad_policy_logits, "grad_policy_logits");
  });
}

// ---------------------------------------------------------------------------------------------------------------
// the DPO step

/** 3 pairs [chosen; rejected] with right padding and −100 on the prompts and padding. */
const PAIRS: RefDpoBatch = {
  inputIds: [
    [1, 5, 6, 7, 8, 2],
    [1, 4, 9, 2, 0, 0],
    [1, 3, 3, 10, 2, 0],
    [1, 5, 6, 9, 2, 0],
    [1, 4, 9, 10, 6, 2],
    [1, 3, 3, 2, 0, 0],
  ],
  attentionMask: [
    [1, 1, 1, 1, 1, 1],
    [1, 1, 1, 1, 0, 0],
    [1, 1, 1, 1, 1, 0],
    [1, 1, 1, 1, 1, 0],
    [1, 1, 1, 1, 1, 1],
    [1, 1, 1, 1, 0, 0],
  ],
  labels: [
    [-100, -100, 6, 7, 8, 2],
    [-100, -100, 9, 2, -100, -100],
    [-100, -100, -100, 10, 2, -100],
    [-100, -100, 6, 9, 2, -100],
    [-100, -100, 9, 10, 6, 2],
    [-100, -100, -100, 2, -100, -100],
  ],
};

/** The DPO loss through the forward only, for finite differences. */
function lossOf(
  config: RefModelConfig,
  policy: RefParams,
  ref: RefParams | null,
  batch: RefDpoBatch,
  dpo: RefDpoOptions,
) {
  return referenceDpoFromLogits({
    policyLogits: referenceForward(config, policy, batch.inputIds, batch.attentionMask),
    referenceLogits: ref ? referenceForward(config, ref, batch.inputIds, batch.attentionMask) : null,
    labels: batch.labels,
    vocabSize: config.vocabSize,
    dpo,
  }).loss;
}

for (
  const [label, config, dpo] of [
    ["llama, sigmoid", LLAMA, { beta: 0.1, lossType: "sigmoid", labelSmoothing: 0.1 }],
    ["gpt2, ipo", GPT2, { beta: 0.5, lossType: "ipo" }],
    ["llama variant, hinge", LLAMA_VARIANT, { beta: 0.1, lossType: "hinge" }],
    ["gpt2 variant, sigmoid + RPO", GPT2_VARIANT, { beta: 0.2, lossType: "sigmoid", rpoAlpha: 0.5 }],
  ] as const
) {
  Deno.test(`DPO step gradients = finite differences of the loss through the model: ${label}`, () => {
    const policy = randomParams(config, 11);
    const ref = randomParams(config, 12);
    const step = referenceDpoStep({
      config,
      policyParams: policy,
      refParams: ref,
      batch: PAIRS,
      dpo: dpo as RefDpoOptions,
      adamw: { lr: 1e-3 },
    });
    assert.ok(Number.isFinite(step.loss) && step.loss > 0);
    // hinge: the loss must be on its linear part for the check to mean anything
    assert.ok(step.microBatches[0].losses.every((l) => l > 0));
    checkFiniteDifferences(
      policy,
      step.grads,
      () => lossOf(config, policy, ref, PAIRS, dpo as RefDpoOptions),
      {
        rtol: 1e-6,
        atol: 1e-9,
        every: 3,
      },
    );
  });
}

Deno.test("DPO step: policy = reference gives loss ln 2, zero rewards and accuracies 0 (strict >)", () => {
  const policy = randomParams(LLAMA, 21);
  const step = referenceDpoStep({
    config: LLAMA,
    policyParams: policy,
    refParams: copyParams(policy),
    batch: PAIRS,
    dpo: { beta: 0.1 },
    adamw: { lr: 1e-3 },
  });
  assertClose([step.loss], [Math.LN2], 1e-15, 0, "loss");
  const m = step.metrics;
  assert.equal(m["rewards/chosen"], 0);
  assert.equal(m["rewards/rejected"], 0);
  assert.equal(m["rewards/accuracies"], 0);
  assert.equal(m["rewards/margins"], 0);
  assert.ok(step.gradNorm > 0);
});

Deno.test("DPO step: AdamW step 1 with clipping and Hugging Face's decay groups, written out by hand", () => {
  const policy = randomParams(GPT2, 31);
  const before = copyParams(policy);
  const lr = 2e-3, wd = 0.1, eps = 1e-8, maxGradNorm = 0.05;
  const step = referenceDpoStep({
    config: GPT2,
    policyParams: policy,
    refParams: randomParams(GPT2, 32),
    batch: PAIRS,
    dpo: { beta: 0.1, lossType: "sigmoid" },
    adamw: { lr, betas: [0.9, 0.999], eps, weightDecay: wd, maxGradNorm },
  });
  // the inputs are not modified
  for (const [k, v] of policy) assert.deepEqual(v, before.get(k), k);
  let ss = 0;
  for (const g of step.grads.values()) ss += dot(g, g);
  assertClose([step.gradNorm], [Math.sqrt(ss)], 0, 1e-14, "gradNorm");
  assert.ok(step.gradNorm > maxGradNorm, "the test needs clipping to be active");
  const coef = maxGradNorm / (step.gradNorm + 1e-6);
  assertClose([step.clipCoef], [coef], 0, 1e-14, "clipCoef");
  // step 1: m̂ = g, v̂ = g², so p ← p·(1 − lr·wd) − lr·g/(|g| + eps) with g the clipped gradient
  const exempt = [...policy.keys()].filter(hfNoDecay).sort();
  assert.deepEqual(
    exempt,
    [...policy.keys()].filter((n) => n.endsWith(".bias") || /\.ln_(\d|f)\.weight$/.test(n)).sort(),
  );
  assert.ok(!hfNoDecay("transformer.wte.weight") && hfNoDecay("model.norm.weight"));
  assert.ok(hfNoDecay("model.layers.3.post_attention_layernorm.weight") && !hfNoDecay("lm_head.weight"));
  for (const [name, p] of policy) {
    const g = step.grads.get(name)!;
    const decay = exempt.includes(name) ? 0 : wd;
    const want = Float64Array.from(p, (x, i) => {
      const gi = g[i] * coef;
      return x * (1 - lr * decay) - (lr * gi) / (Math.abs(gi) + eps);
    });
    assertClose(step.updatedParams.get(name)!, want, 1e-15, 1e-13, name);
  }
  // no clipping: maxGradNorm null
  const free = referenceDpoStep({
    config: GPT2,
    policyParams: policy,
    refParams: randomParams(GPT2, 32),
    batch: PAIRS,
    dpo: { beta: 0.1 },
    adamw: { lr, maxGradNorm: null },
  });
  assert.equal(free.clipCoef, 1);
});

Deno.test("DPO step: gradient accumulation averages micro-batches (losses, metrics and gradients)", () => {
  const policy = randomParams(LLAMA, 41);
  const ref = randomParams(LLAMA, 42);
  const dpo: RefDpoOptions = { beta: 0.3 };
  const pick = (rows: number[]): RefDpoBatch => ({
    inputIds: rows.map((r) => PAIRS.inputIds[r]),
    attentionMask: rows.map((r) => PAIRS.attentionMask[r]),
    labels: rows.map((r) => PAIRS.labels[r]),
  });
  const a = pick([0, 3]), b = pick([1, 2, 4, 5]); // pair 0; pairs 1 and 2
  const run = (batch: RefDpoBatch | RefDpoBatch[]) =>
    referenceDpoStep({
      config: LLAMA,
      policyParams: policy,
      refParams: ref,
      batch,
      dpo,
      adamw: { lr: 1e-3 },
    });
  const both = run([a, b]);
  const ra = run(a), rb = run(b);
  assertClose([both.loss], [(ra.loss + rb.loss) / 2], 1e-15, 1e-13, "loss");
  for (const k of Object.keys(both.metrics) as (keyof typeof both.metrics)[]) {
    assertClose([both.metrics[k]!], [(ra.metrics[k]! + rb.metrics[k]!) / 2], 1e-15, 1e-13, k);
  }
  for (const [name, g] of both.grads) {
    const want = Float64Array.from(g, (_, i) => (ra.grads.get(name)![i] + rb.grads.get(name)![i]) / 2);
    assertClose(g, want, 1e-15, 1e-12, name);
  }
  // and the mean loss's finite differences
  checkFiniteDifferences(
    policy,
    both.grads,
    () => (lossOf(LLAMA, policy, ref, a, dpo) + lossOf(LLAMA, policy, ref, b, dpo)) / 2,
    {
      every: 17,
    },
  );
});

Deno.test("DPO step: reference-free, and a sequence with no scored label is an error", () => {
  const policy = randomParams(LLAMA, 51);
  const step = referenceDpoStep({
    config: LLAMA,
    policyParams: policy,
    refParams: null,
    batch: PAIRS,
    dpo: { beta: 0.1 },
    adamw: { lr: 1e-3 },
  });
  const r = step.microBatches[0];
  assert.deepEqual(r.referenceChosenLogps, [0, 0, 0]);
  assertClose(r.chosenRewards, r.policyChosenLogps.map((x) => 0.1 * x), 1e-15, 1e-14, "rewards = β·pc");
  const bad = { ...PAIRS, labels: PAIRS.labels.map((row, i) => (i === 4 ? row.map(() => -100) : row)) };
  assert.throws(
    () =>
      referenceDpoStep({
        config: LLAMA,
        policyParams: policy,
        refParams: null,
        batch: bad,
        dpo: { beta: 0.1 },
        adamw: { lr: 1 },
      }),
    /sequence 4 has no scored label/,
  );
});
