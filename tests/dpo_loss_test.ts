/**
 * DPO-family losses (src/dpo/loss.ts, kernels/dpo_loss.wgsl): every golden vector of tests/fixtures/dpo whose
 * kind is `loss` or `bco_steps`, the loss-level part of the `batch` cases, random batches of awkward sizes against
 * the float64 reference (tests/reference/dpo_loss.ts, exact gradients by dual numbers), finite-difference gradient
 * checks of every loss type, errors and warnings.
 *
 * Tolerances: golden values |got − want| ≤ tol·max(1, |want|), tol = 1e-5 or the case's own (fixtures README).
 * Random batches use f32-representable inputs; values within 2e-5·max(1, |want|); gradients within
 * 1e-4·|want| + 1e-6·max(1, max|want|) (f32 sums over up to 300 pairs).
 */
import assert from "node:assert/strict";
import { memoryStats, scope, type Tensor, tensor } from "../mod.ts";
import {
  BcoRunningMean,
  DPO_LOSS_METRICS,
  DPO_LOSS_TYPES,
  dpoLoss,
  type DpoLossConfig,
  type DpoLossInputs,
  type DpoLossOutput,
  resetDpoLossWarnings,
} from "../src/dpo/loss.ts";
import {
  type RefConfig,
  refDpoGrad,
  refDpoLoss,
  type RefInputs,
  type RefState,
} from "./reference/dpo_loss.ts";
import { gpuTest, gradCheck, randomArray, setup, typedErrorLike, values } from "./util.ts";
import { dpoLossIterations } from "../src/dpo/loss_op.ts";
import { GpuLimitError } from "../src/gpu/errors.ts";
import { LOOP_BUDGET, loopLimited } from "../src/gpu/loop_budget.ts";

// ---- golden vectors ------------------------------------------------------------------------------------------

interface GoldenConfig {
  beta: number;
  loss_type: string | string[];
  loss_weights: number[] | null;
  label_smoothing: number;
  reference_free: boolean;
  f_divergence_type: string;
  f_alpha_divergence_coef: number;
  discopop_tau: number;
  rpo_alpha?: number | null;
  use_weighting?: boolean;
}
interface GoldenLogps {
  policy_chosen_logps: number[];
  policy_rejected_logps: number[];
  reference_chosen_logps?: number[];
  reference_rejected_logps?: number[];
  chosen_lengths?: number[];
  rejected_lengths?: number[];
}
interface GoldenOutputs {
  losses?: number[];
  losses_by_type?: Record<string, number[]>;
  loss: number;
  chosen_rewards: number[];
  rejected_rewards: number[];
  grad_policy_chosen_logps?: number[];
  grad_policy_rejected_logps?: number[];
  bco_batch_reward_mean?: number;
  bco_delta?: number;
}
interface GoldenBatchOutputs extends GoldenOutputs {
  policy_chosen_logps: number[];
  policy_rejected_logps: number[];
  reference_chosen_logps: number[];
  reference_rejected_logps: number[];
  chosen_token_counts: number[];
  rejected_token_counts: number[];
  wpo_pair_weights?: number[];
  nll_loss?: number;
  metrics: Record<string, number>;
}
interface GoldenCase {
  id: string;
  kind: string;
  config: GoldenConfig;
  // deno-lint-ignore no-explicit-any
  inputs: any;
  // deno-lint-ignore no-explicit-any
  outputs?: any;
  error?: string;
  warnings?: string[];
  tolerance?: number;
}

const vectors: { cases: GoldenCase[] } = JSON.parse(
  Deno.readTextFileSync(new URL("./fixtures/dpo/vectors.json", import.meta.url)),
);
const lossCases = vectors.cases.filter((c) => c.kind === "loss");
const bcoCases = vectors.cases.filter((c) => c.kind === "bco_steps");
const batchCases = vectors.cases.filter((c) => c.kind === "batch");

function camel(c: GoldenConfig): DpoLossConfig {
  return {
    beta: c.beta,
    lossType: c.loss_type,
    lossWeights: c.loss_weights,
    labelSmoothing: c.label_smoothing,
    referenceFree: c.reference_free,
    fDivergenceType: c.f_divergence_type,
    fAlphaDivergenceCoef: c.f_alpha_divergence_coef,
    discopopTau: c.discopop_tau,
    rpoAlpha: c.rpo_alpha ?? null,
    useWeighting: c.use_weighting ?? false,
  };
}

/** |got − want| ≤ tol·max(1, |want|), elementwise. */
function assertGolden(what: string, got: ArrayLike<number>, want: number | number[], tol: number): void {
  const w = typeof want === "number" ? [want] : want;
  assert.equal(got.length, w.length, `${what}: ${got.length} values, expected ${w.length}`);
  for (let i = 0; i < w.length; i++) {
    const ok = Math.abs(got[i] - w[i]) <= tol * Math.max(1, Math.abs(w[i]));
    if (!ok) assert.fail(`${what}[${i}] = ${got[i]}, expected ${w[i]} (tolerance ${tol} × max(1, |x|))`);
  }
}

function logpsInputs(x: GoldenLogps, grad: boolean): DpoLossInputs {
  const t = (a: number[] | undefined, requiresGrad = false) =>
    a ? tensor(a, [a.length], { requiresGrad }) : undefined;
  return {
    policyChosenLogps: t(x.policy_chosen_logps, grad)!,
    policyRejectedLogps: t(x.policy_rejected_logps, grad)!,
    referenceChosenLogps: t(x.reference_chosen_logps),
    referenceRejectedLogps: t(x.reference_rejected_logps),
    chosenLengths: t(x.chosen_lengths),
    rejectedLengths: t(x.rejected_lengths),
  };
}

/** Reads tensors back together (the readbacks overlap); null gives an empty array. */
function read(...ts: (Tensor | null | undefined)[]): Promise<Float32Array[]> {
  return Promise.all(ts.map((t) => (t ? t.toArray() : Promise.resolve(new Float32Array(0)))));
}

/** Captures console.warn while `fn` runs. */
async function capturingWarnings<T>(fn: () => Promise<T>): Promise<[T, string[]]> {
  const seen: string[] = [];
  const orig = console.warn;
  console.warn = (...args: unknown[]) => seen.push(args.map(String).join(" "));
  try {
    return [await fn(), seen];
  } finally {
    console.warn = orig;
  }
}

async function checkOutputs(
  c: GoldenCase,
  o: DpoLossOutput,
  want: GoldenOutputs,
  inputs: DpoLossInputs,
  tol: number,
): Promise<void> {
  const types = Array.isArray(c.config.loss_type) ? c.config.loss_type : [c.config.loss_type];
  const byType = want.losses_by_type ?? { [types[0]]: want.losses! };
  const grads = want.grad_policy_chosen_logps !== undefined;
  if (grads) o.loss.backward();
  const [losses, loss, cr, rr, m, gc, gr, ...typed] = await read(
    o.losses,
    o.loss,
    o.chosenRewards,
    o.rejectedRewards,
    o.metrics,
    grads ? inputs.policyChosenLogps.grad : null,
    grads ? inputs.policyRejectedLogps.grad : null,
    ...Object.keys(byType).map((k) => o.lossesByType[k]),
  );
  if (want.losses) assertGolden("losses", losses, want.losses, tol);
  Object.values(byType).forEach((v, k) =>
    assertGolden(`losses_by_type.${Object.keys(byType)[k]}`, typed[k], v, tol)
  );
  assertGolden("loss", loss, want.loss, tol);
  assertGolden("chosen_rewards", cr, want.chosen_rewards, tol);
  assertGolden("rejected_rewards", rr, want.rejected_rewards, tol);
  if (want.bco_delta !== undefined) {
    assertGolden("bco_batch_reward_mean", [m[6]], want.bco_batch_reward_mean!, tol);
    assertGolden("bco_delta", [m[7]], want.bco_delta, tol);
  }
  if (grads) {
    assertGolden("grad_policy_chosen_logps", gc, want.grad_policy_chosen_logps!, tol);
    assertGolden("grad_policy_rejected_logps", gr, want.grad_policy_rejected_logps!, tol);
  }
}

function checkWarnings(c: GoldenCase, seen: string[]): void {
  const expected = c.warnings ?? [];
  for (const w of expected) {
    const key = w.startsWith("kto_pair") ? /kto_pair/ : /label_smoothing is not used by loss_type 'hinge'/;
    assert.ok(seen.some((s) => key.test(s)), `expected a warning like "${w}", got ${JSON.stringify(seen)}`);
  }
  assert.equal(
    seen.length,
    expected.length,
    `warnings: ${JSON.stringify(seen)}, expected ${JSON.stringify(expected)}`,
  );
}

for (const c of lossCases) {
  Deno.test(`golden ${c.id}`, gpuTest, async () => {
    await setup();
    resetDpoLossWarnings();
    const tol = c.tolerance ?? 1e-5;
    const [, seen] = await capturingWarnings(() =>
      scope(async () => {
        const inputs = logpsInputs(c.inputs, true);
        if (c.error) {
          assert.throws(() => dpoLoss(inputs, camel(c.config)), typedErrorLike(c.error));
          return;
        }
        await checkOutputs(c, dpoLoss(inputs, camel(c.config)), c.outputs, inputs, tol);
        inputs.policyChosenLogps.grad?.dispose();
        inputs.policyRejectedLogps.grad?.dispose();
      })
    );
    checkWarnings(c, seen);
  });
}

for (const c of bcoCases) {
  Deno.test(`golden ${c.id}`, gpuTest, async () => {
    await setup();
    const state = new BcoRunningMean();
    const steps: (GoldenLogps & { mode: string })[] = c.inputs.steps;
    for (const [k, s] of steps.entries()) {
      await scope(async () => {
        const inputs = logpsInputs(s, true);
        const o = dpoLoss(inputs, camel(c.config), { bcoState: state, training: s.mode === "train" });
        await checkOutputs(c, o, c.outputs.steps[k], inputs, c.tolerance ?? 1e-5);
        inputs.policyChosenLogps.grad?.dispose();
        inputs.policyRejectedLogps.grad?.dispose();
      });
    }
    const final = await state.read();
    assertGolden("final_running_mean", [final.mean], c.outputs.final_running_mean, c.tolerance ?? 1e-5);
    assert.equal(final.count, steps.filter((s) => s.mode === "train").length);
    state.dispose();
  });
}

// The batch cases' loss part: their sequence log-probs, token counts (as i32), WPO weights and nll in, losses,
// loss, rewards and the reward / log-prob metrics out (their logit-level parts belong to the log-prob kernels).
for (const c of batchCases) {
  Deno.test(`golden ${c.id} (loss part)`, gpuTest, async () => {
    await setup();
    const cfg = camel(c.config);
    if (c.error) {
      const x = { policy_chosen_logps: [-1, -2], policy_rejected_logps: [-2, -1] };
      await scope(() => {
        const inputs = {
          ...logpsInputs({ ...x, reference_chosen_logps: [0, 0], reference_rejected_logps: [0, 0] }, true),
        };
        assert.throws(() => dpoLoss({ ...inputs, weights: tensor([1, 1]) }, cfg), /aot/);
      });
      return;
    }
    const o: GoldenBatchOutputs = c.outputs;
    const tol = c.tolerance ?? 1e-5;
    await scope(async () => {
      const ints = (a: number[]) => tensor(Int32Array.from(a), [a.length]);
      const inputs: DpoLossInputs = {
        ...logpsInputs({
          policy_chosen_logps: o.policy_chosen_logps,
          policy_rejected_logps: o.policy_rejected_logps,
          reference_chosen_logps: c.config.reference_free ? undefined : o.reference_chosen_logps,
          reference_rejected_logps: c.config.reference_free ? undefined : o.reference_rejected_logps,
        }, true),
        chosenLengths: ints(o.chosen_token_counts),
        rejectedLengths: ints(o.rejected_token_counts),
        weights: o.wpo_pair_weights ? tensor(o.wpo_pair_weights) : undefined,
        nll: o.nll_loss !== undefined ? tensor(o.nll_loss) : undefined,
      };
      const out = dpoLoss(inputs, cfg);
      await checkOutputs(c, out, { ...o, grad_policy_chosen_logps: undefined }, inputs, tol);
      const m = await out.metrics.toArray();
      for (const [k, v] of Object.entries(o.metrics)) {
        const i = (DPO_LOSS_METRICS as readonly string[]).indexOf(k);
        if (i >= 0) assertGolden(k, [m[i]], v, tol);
      }
      // mean(losses) + rpo·nll = loss
      const losses = await out.losses.toArray();
      const meanLosses = losses.reduce((a, v) => a + v, 0) / losses.length;
      assertGolden(
        "mean(losses) + rpo·nll",
        [meanLosses + (cfg.rpoAlpha ?? 0) * (o.nll_loss ?? 0)],
        o.loss,
        tol,
      );
    });
  });
}

Deno.test("the golden file holds the cases this suite expects", () => {
  assert.equal(lossCases.length, 215);
  assert.equal(lossCases.filter((c) => c.error).length, 2);
  assert.equal(bcoCases.length, 2);
  assert.equal(batchCases.length, 15);
});

// ---- random batches against the float64 reference -------------------------------------------------------------

const f32 = (a: ArrayLike<number>) => Array.from(a, Math.fround);

function randomBatch(B: number, seed: number, opts: { refFree?: boolean; spread?: number } = {}): RefInputs {
  const spread = opts.spread ?? 3;
  const pc = f32(randomArray(B, seed, -200, -20));
  const pr = f32(randomArray(B, seed + 1, -200, -20));
  const dc = randomArray(B, seed + 2, -spread, spread);
  const dr = randomArray(B, seed + 3, -spread, spread);
  return {
    pc,
    pr,
    rc: opts.refFree ? undefined : f32(pc.map((v, i) => v - dc[i])),
    rr: opts.refFree ? undefined : f32(pr.map((v, i) => v - dr[i])),
    lc: Array.from(randomArray(B, seed + 4, 1, 120), Math.ceil),
    lr: Array.from(randomArray(B, seed + 5, 1, 120), Math.ceil),
    w: f32(randomArray(B, seed + 6, 0.05, 1)),
    nll: Math.fround(2.75),
  };
}

function refConfig(cfg: DpoLossConfig, types: string[]): RefConfig {
  return {
    beta: cfg.beta ?? 0.1,
    lossTypes: types.map((t) => (t === "aot_unpaired" ? "aot_pair" : t)),
    lossWeights: cfg.lossWeights ?? undefined,
    labelSmoothing: cfg.labelSmoothing,
    fDivergenceType: cfg.fDivergenceType as RefConfig["fDivergenceType"],
    fAlphaDivergenceCoef: cfg.fAlphaDivergenceCoef,
    discopopTau: cfg.discopopTau,
    rpoAlpha: cfg.rpoAlpha,
    useWeighting: cfg.useWeighting,
  };
}

function gpuInputs(x: RefInputs, types: string[], cfg: DpoLossConfig): DpoLossInputs {
  const needsNll = types.includes("sft") || (cfg.rpoAlpha ?? null) !== null;
  return {
    policyChosenLogps: tensor(x.pc, [x.pc.length], { requiresGrad: true }),
    policyRejectedLogps: tensor(x.pr, [x.pr.length], { requiresGrad: true }),
    referenceChosenLogps: x.rc ? tensor(x.rc) : undefined,
    referenceRejectedLogps: x.rr ? tensor(x.rr) : undefined,
    chosenLengths: tensor(x.lc!),
    rejectedLengths: tensor(x.lr!),
    weights: cfg.useWeighting ? tensor(x.w!) : undefined,
    nll: needsNll ? tensor([x.nll!], [1], { requiresGrad: true }) : undefined,
  };
}

function assertNear(what: string, got: ArrayLike<number>, want: number[], tol = 2e-5): void {
  assertGolden(what, got, want, tol);
}

function assertGrad(what: string, got: ArrayLike<number>, want: number[]): void {
  const scale = Math.max(1, ...want.map(Math.abs));
  for (let i = 0; i < want.length; i++) {
    const tol = 1e-4 * Math.abs(want[i]) + 1e-6 * scale;
    if (!(Math.abs(got[i] - want[i]) <= tol)) {
      assert.fail(`${what}[${i}] = ${got[i]}, expected ${want[i]} (± ${tol})`);
    }
  }
}

/** Forward and both backward modes (d loss, d Σ dy·losses) against the reference. */
async function compareWithReference(x: RefInputs, types: string[], cfg: DpoLossConfig): Promise<void> {
  const rc = refConfig(cfg, types);
  const want = refDpoLoss(x, rc);
  const config = { ...cfg, lossType: types };
  await scope(async () => {
    const inputs = gpuInputs(x, types, config);
    const o = dpoLoss(inputs, config);
    o.loss.backward();
    const [losses, loss, cr, rr, m, gc, gr, gn, ...typed] = await read(
      o.losses,
      o.loss,
      o.chosenRewards,
      o.rejectedRewards,
      o.metrics,
      inputs.policyChosenLogps.grad,
      inputs.policyRejectedLogps.grad,
      inputs.nll?.grad,
      ...types.map((t) => o.lossesByType[t]),
    );
    types.forEach((t, k) => assertNear(`losses of ${t}`, typed[k], want.byType[rc.lossTypes[k]]));
    assertNear("losses", losses, want.losses);
    assertNear("loss", loss, [want.loss]);
    assertNear("chosen rewards", cr, want.chosenRewards);
    assertNear("rejected rewards", rr, want.rejectedRewards);
    for (const [k, v] of Object.entries(want.metrics)) {
      assertNear(k, [m[(DPO_LOSS_METRICS as readonly string[]).indexOf(k)]], [v]);
    }
    const g = refDpoGrad(x, rc);
    assertGrad("d loss/dpc", gc, g.pc);
    assertGrad("d loss/dpr", gr, g.pr);
    if (inputs.nll) assertGrad("d loss/dnll", gn, [g.nll]);
  });
  // the per-example losses' backward, with a random upstream gradient
  await scope(async () => {
    const inputs = gpuInputs(x, types, config);
    const o = dpoLoss(inputs, config);
    const dy = f32(randomArray(o.losses.size, 99, -1, 1));
    o.losses.backward(tensor(dy));
    const g = refDpoGrad(x, rc, { dy });
    const [gc, gr, gn] = await read(
      inputs.policyChosenLogps.grad,
      inputs.policyRejectedLogps.grad,
      inputs.nll?.grad,
    );
    assertGrad("d Σdy·losses/dpc", gc, g.pc);
    assertGrad("d Σdy·losses/dpr", gr, g.pr);
    if (inputs.nll) assertGrad("d Σdy·losses/dnll", gn, [g.nll]);
  });
}

const ALL_TYPES = DPO_LOSS_TYPES.filter((t) => t !== "sft");

Deno.test("every loss type matches the float64 reference on B = 1, 3, 129, 300", gpuTest, async () => {
  await setup();
  for (const B of [1, 3, 129, 300]) {
    const x = randomBatch(B, 1000 + B);
    for (const t of [...DPO_LOSS_TYPES, "aot_unpaired"]) {
      const cfg: DpoLossConfig = { beta: 0.2, labelSmoothing: t === "exo_pair" ? 0.05 : 0 };
      try {
        await compareWithReference(x, [t], cfg);
      } catch (e) {
        throw new Error(`B=${B}, ${t}: ${(e as Error).message}`);
      }
    }
  }
});

Deno.test("f-divergences, label smoothing, reference-free and WPO match the reference", gpuTest, async () => {
  await setup();
  const x = randomBatch(37, 77);
  const xFree = randomBatch(37, 78, { refFree: true });
  for (const f of ["forward_kl", "js_divergence", "alpha_divergence"]) {
    for (const t of ALL_TYPES) {
      const cfg: DpoLossConfig = {
        beta: 0.3,
        fDivergenceType: f,
        fAlphaDivergenceCoef: 0.4,
        labelSmoothing: 0.1,
      };
      if (!["sigmoid", "robust", "exo_pair", "aot", "aot_pair"].includes(t)) cfg.labelSmoothing = 0;
      try {
        await compareWithReference(x, [t], cfg);
      } catch (e) {
        throw new Error(`${f}, ${t}: ${(e as Error).message}`);
      }
    }
  }
  for (const t of DPO_LOSS_TYPES) {
    if (t === "aot" || t === "aot_pair") continue;
    await compareWithReference(x, [t], {
      beta: 0.1,
      useWeighting: true,
      labelSmoothing: t === "exo_pair" ? 0.01 : 0,
    });
  }
  for (const t of ["sigmoid", "ipo", "kto_pair", "aot", "sppo_hard"]) {
    await compareWithReference(xFree, [t], {
      beta: 0.05,
      referenceFree: true,
      fDivergenceType: "js_divergence",
    });
  }
});

Deno.test(
  "loss lists with weights, RPO and sft match the reference (every type at once too)",
  gpuTest,
  async () => {
    await setup();
    for (const B of [1, 5, 260]) {
      const x = randomBatch(B, 500 + B);
      await compareWithReference(x, ["sigmoid"], { beta: 0.1, rpoAlpha: 0.7 });
      await compareWithReference(x, ["kto_pair", "sigmoid_norm", "sft"], {
        beta: 0.1,
        lossWeights: [0.3, 1, 0.25],
      });
      await compareWithReference(x, ["aot", "aot_pair", "bco_pair"], {
        beta: 0.4,
        lossWeights: [1, 2, 0.5],
        rpoAlpha: 0.1,
      });
      await compareWithReference(
        x,
        [...ALL_TYPES, "sft"],
        {
          beta: 0.2,
          labelSmoothing: 0.1,
          lossWeights: ALL_TYPES.map((_, k) => 0.1 * (k + 1)).concat([0.5]),
          rpoAlpha: 2,
        },
      );
    }
    const x = randomBatch(9, 9);
    await compareWithReference(
      x,
      ["kto_pair", "sft", "hinge"],
      { beta: 0.1, useWeighting: true, rpoAlpha: 0.5, fDivergenceType: "forward_kl" },
    );
  },
);

// ---- finite differences of the GPU forward ---------------------------------------------------------------------

Deno.test(
  "every loss type's backward matches finite differences (loss and per-example losses)",
  gpuTest,
  async () => {
    await setup();
    const B = 5;
    // distinct, well-separated log-ratios (the sorts of aot keep their order under the ±1e-2 steps), away from
    // hinge's kink and from kto_pair's clamp of mean(c), mean(r) at 0
    const pc = [-40.25, -61.5, -23.75, -88.0, -52.5];
    const pr = [-45.5, -58.75, -30.0, -81.25, -49.0];
    const rc = [-41.0, -60.0, -25.5, -86.25, -54.75];
    const rr = [-44.0, -60.5, -27.5, -83.5, -47.75];
    const lc = [7, 12, 3, 20, 9];
    const lr = [5, 15, 4, 18, 11];
    const state = new BcoRunningMean({ mean: 0.125, count: 4 });
    const scored = [
      "sigmoid",
      "ipo",
      "kto_pair",
      "bco_pair",
      "sppo_hard",
      "nca_pair",
      "apo_down",
      "sigmoid_norm",
    ];
    for (const t of DPO_LOSS_TYPES) {
      for (const f of scored.includes(t) ? ["reverse_kl", "js_divergence"] : ["reverse_kl"]) {
        const cfg: DpoLossConfig = {
          beta: 0.5,
          lossType: t,
          labelSmoothing: ["sigmoid", "robust", "exo_pair", "aot", "aot_pair"].includes(t) ? 0.1 : 0,
          fDivergenceType: f,
          rpoAlpha: t === "sigmoid" ? 0.5 : null,
        };
        const withNll = t === "sft" || t === "sigmoid";
        const call = (a: Tensor, b: Tensor, n?: Tensor) =>
          dpoLoss(
            {
              policyChosenLogps: a,
              policyRejectedLogps: b,
              referenceChosenLogps: tensor(rc),
              referenceRejectedLogps: tensor(rr),
              chosenLengths: tensor(lc),
              rejectedLengths: tensor(lr),
              nll: n,
            },
            cfg,
            { bcoState: state, training: false },
          ); // a fixed running mean: SPEC treats it as a constant
        const inputs = [{ data: pc, shape: [B] }, { data: pr, shape: [B] }];
        if (withNll) inputs.push({ data: [1.75], shape: [1] });
        try {
          await gradCheck((a, b, n) => call(a, b, n).loss, inputs, { directions: 2, coordinates: 3 });
          await gradCheck((a, b, n) => call(a, b, n).losses, inputs, { directions: 2, coordinates: 3 });
        } catch (e) {
          throw new Error(`${t}, ${f}: ${(e as Error).message}`);
        }
      }
    }
    assert.deepEqual(await state.read(), { mean: 0.125, count: 4 });
    state.dispose();
  },
);

// ---- state, edge cases, memory ---------------------------------------------------------------------------------

Deno.test(
  "bco_pair's running mean: training updates it, evaluation reads it, checkpoints round-trip",
  gpuTest,
  async () => {
    await setup();
    const x = randomBatch(6, 3);
    const cfg: DpoLossConfig = { beta: 0.3, lossType: "bco_pair" };
    const state = new BcoRunningMean();
    let ref: RefState = { mean: 0, count: 0 };
    for (const training of [true, true, false, true]) {
      await scope(async () => {
        const o = dpoLoss(gpuInputs(x, ["bco_pair"], cfg), cfg, { bcoState: state, training });
        const want = refDpoLoss(x, refConfig(cfg, ["bco_pair"]), { state: ref, training });
        ref = want.state;
        assertNear("loss", await o.loss.toArray(), [want.loss]);
        assertNear("running mean used", [(await o.metrics.toArray())[7]], [want.bcoDelta], 1e-6);
      });
    }
    const saved = await state.read();
    assert.equal(saved.count, 3);
    assert.ok(Math.abs(saved.mean - ref.mean) < 1e-6);
    const restored = new BcoRunningMean(saved);
    assert.deepEqual(await restored.read(), saved);
    restored.load({ mean: -0.5, count: 2 });
    assert.deepEqual(await restored.read(), { mean: -0.5, count: 2 });
    assert.throws(() => restored.load({ mean: NaN, count: 1 }), /finite mean/);
    state.dispose();
    restored.dispose();
  },
);

Deno.test("extreme margins give finite losses and gradients for every type", gpuTest, async () => {
  await setup();
  const pc = [-5000, -1, -900.5, -20];
  const pr = [-1, -4000, -0.5, -20];
  const rc = [-1, -2000, -0.25, -20];
  const rr = [-3000, -1, -1000, -20];
  for (const t of DPO_LOSS_TYPES) {
    await scope(async () => {
      const inputs: DpoLossInputs = {
        policyChosenLogps: tensor(pc, [4], { requiresGrad: true }),
        policyRejectedLogps: tensor(pr, [4], { requiresGrad: true }),
        referenceChosenLogps: tensor(rc),
        referenceRejectedLogps: tensor(rr),
        chosenLengths: tensor([1, 400, 30, 2]),
        rejectedLengths: tensor([300, 1, 50, 2]),
        nll: t === "sft" ? tensor([3], [1], { requiresGrad: true }) : undefined,
      };
      const cfg = { beta: 0.5, lossType: t, labelSmoothing: t === "exo_pair" ? 1e-3 : 0 };
      const o = dpoLoss(inputs, cfg);
      o.loss.backward();
      const all = [
        ...(await values(o.losses)),
        ...(await values(o.loss)),
        ...(await values(inputs.policyChosenLogps.grad!)),
        ...(await values(inputs.policyRejectedLogps.grad!)),
      ];
      assert.ok(all.every(Number.isFinite), `${t}: ${all}`);
    });
  }
});

/** Pairs whose log-ratios c = pc − rc and r = pr − rr take every combination of ±200 (and 0 against ±200). */
function extremeRatios(): RefInputs {
  const cs = [-200, -200, 200, 200, 0, -200, 200, 0];
  const rs = [-200, 200, -200, 200, -200, 0, 0, 200];
  const pc = f32(cs.map((_, i) => -30 - 7 * i));
  const pr = f32(rs.map((_, i) => -45 - 5 * i));
  return {
    pc,
    pr,
    rc: f32(pc.map((v, i) => v - cs[i])),
    rr: f32(pr.map((v, i) => v - rs[i])),
    lc: [1, 1, 3, 1, 2, 1, 1, 5],
    lr: [1, 2, 1, 1, 1, 4, 1, 1],
    w: f32(cs.map((_, i) => 0.1 + 0.1 * i)),
    nll: Math.fround(2.75),
  };
}

Deno.test(
  "log-ratios of ±200 with beta 1e-3 and 1e3: every loss and f-divergence matches the reference, finite",
  gpuTest,
  async () => {
    await setup();
    const x = extremeRatios();
    for (const beta of [1e-3, 1e3]) {
      for (const f of ["reverse_kl", "forward_kl", "js_divergence", "alpha_divergence"]) {
        for (const t of ALL_TYPES) {
          const cfg: DpoLossConfig = { beta, fDivergenceType: f, fAlphaDivergenceCoef: 0.4 };
          if (t === "exo_pair") cfg.labelSmoothing = 1e-3;
          // ipo and sppo_hard square scores: under forward_kl and alpha_divergence (scores up to e^80 / |a − 1|)
          // that is beyond f32, and the loss is +inf, never NaN
          const want = refDpoLoss(x, refConfig(cfg, [t]));
          if (!(Math.abs(want.loss) < 3e38)) {
            const squared = ["ipo", "sppo_hard"].includes(t) &&
              ["forward_kl", "alpha_divergence"].includes(f);
            assert.ok(squared, `${f}, ${t}: ${want.loss}`);
            await scope(async () => {
              const loss = await values(dpoLoss(gpuInputs(x, [t], cfg), { ...cfg, lossType: t }).loss);
              assert.equal(loss[0], Infinity, `beta ${beta}, ${f}, ${t}`);
            });
            continue;
          }
          try {
            await compareWithReference(x, [t], cfg);
          } catch (e) {
            throw new Error(`beta ${beta}, ${f}, ${t}: ${(e as Error).message}`);
          }
        }
      }
    }
  },
);

Deno.test("repeated calls and backward inside scopes keep live memory flat", gpuTest, async () => {
  await setup();
  const x = randomBatch(11, 5);
  const types = ["kto_pair", "aot", "sft", "bco_pair"];
  const cfg: DpoLossConfig = { beta: 0.1, lossType: types, rpoAlpha: 0.5 };
  const step = () =>
    scope(async () => {
      const inputs = gpuInputs(x, types, cfg);
      const o = dpoLoss(inputs, cfg);
      o.loss.backward();
      await inputs.policyChosenLogps.grad!.toArray();
      inputs.policyChosenLogps.grad!.dispose();
      inputs.policyRejectedLogps.grad!.dispose();
      inputs.nll!.grad!.dispose();
    });
  await step();
  const before = memoryStats();
  for (let i = 0; i < 20; i++) await step();
  const after = memoryStats();
  assert.equal(after.liveBuffers, before.liveBuffers);
  assert.equal(after.liveBytes, before.liveBytes);
});

// ---- errors and warnings ---------------------------------------------------------------------------------------

Deno.test("invalid configurations and inputs throw errors saying what is allowed", gpuTest, async () => {
  await setup();
  await scope(() => {
    const x = gpuInputs(randomBatch(3, 1), ["sigmoid"], {});
    const base = { ...x, chosenLengths: undefined, rejectedLengths: undefined };
    const bad = (cfg: DpoLossConfig, re: RegExp, inputs: DpoLossInputs = base) =>
      assert.throws(() => dpoLoss(inputs, cfg), re);
    bad(
      { lossType: "sigmod" },
      /unknown loss type 'sigmod' \(did you mean 'sigmoid'\?\); allowed: sigmoid, robust/,
    );
    bad({ lossType: [] }, /empty list/);
    bad({ lossType: ["sigmoid", "sigmoid"] }, /more than once/);
    bad(
      { lossType: ["sigmoid", "hinge"], lossWeights: [1] },
      /lossWeights .* 1 values but lossType has 2 types/,
    );
    bad({ lossType: "sigmoid", lossWeights: [NaN] }, /lossWeights\[0\] must be a finite number/);
    bad({ lossType: "robust", labelSmoothing: 0.5 }, /'robust' needs 0 <= labelSmoothing/);
    bad({ lossType: "robust", labelSmoothing: -0.1 }, /'robust' needs 0 <= labelSmoothing/);
    bad({ labelSmoothing: 0.7 }, /must be in \[0, 0\.5\)/);
    bad(
      { lossType: "exo_pair", labelSmoothing: 0 },
      /'exo_pair' needs labelSmoothing .* > 0 \(for example 1e-3\)/,
    );
    bad({ beta: 0 }, /beta must be > 0/);
    bad({ beta: Infinity }, /beta must be a finite number/);
    bad({ fDivergenceType: "kl" }, /unknown fDivergenceType 'kl'.*allowed: reverse_kl, forward_kl/);
    bad({ discopopTau: 0, lossType: "discopop" }, /discopopTau must be > 0/);
    bad({ lossType: "aot", useWeighting: true }, /does not work with loss_type 'aot' \/ 'aot_pair'/);
    bad({ lossType: ["sigmoid", "aot_unpaired"], useWeighting: true }, /'aot' \/ 'aot_pair'/);
    bad({ useWeighting: true }, /pass the WPO pair weights/);
    bad({}, /useWeighting is off/, { ...base, weights: tensor([1, 1, 1]) });
    bad({ rpoAlpha: 1 }, /rpoAlpha needs `nll`/);
    bad({ lossType: "sft" }, /'sft' needs `nll`/);
    bad({}, /neither rpoAlpha nor loss_type 'sft'/, { ...base, nll: tensor([1], [1]) });
    bad({ lossType: "ipo" }, /'ipo' needs chosenLengths and rejectedLengths/);
    bad({ lossType: "sigmoid_norm" }, /'sigmoid_norm' needs chosenLengths/);
    bad({ referenceFree: true }, /referenceFree is set/);
    bad({}, /required unless referenceFree/, { ...base, referenceRejectedLogps: undefined });
    bad({}, /must have shape \[3\]/, { ...base, policyRejectedLogps: tensor([1, 2]) });
    bad({}, /must be f32/, { ...base, referenceChosenLogps: tensor(Int32Array.from([1, 2, 3]), [3]) });
    bad({}, /batch is empty/, {
      policyChosenLogps: tensor([], [0]),
      policyRejectedLogps: tensor([], [0]),
      referenceChosenLogps: tensor([], [0]),
      referenceRejectedLogps: tensor([], [0]),
    });
    bad({ lossType: "sft" }, /nll must be one f32 value/, { ...base, nll: tensor([1, 2]) });
  });
  assert.throws(() => new BcoRunningMean({ mean: 0, count: -1 }), /integer count/);
});

Deno.test("warnings: kto_pair and an unused label_smoothing, each printed once", gpuTest, async () => {
  await setup();
  resetDpoLossWarnings();
  const x = randomBatch(2, 4);
  const [, seen] = await capturingWarnings(() =>
    scope(() => {
      for (let i = 0; i < 3; i++) {
        dpoLoss(gpuInputs(x, ["kto_pair"], {}), { lossType: "kto_pair" });
        dpoLoss(gpuInputs(x, ["sigmoid", "nca_pair"], {}), {
          lossType: ["sigmoid", "nca_pair"],
          labelSmoothing: 0.1,
        });
        dpoLoss(gpuInputs(x, ["aot", "exo_pair"], {}), {
          lossType: ["aot", "exo_pair"],
          labelSmoothing: 0.1,
        });
      }
      return Promise.resolve();
    })
  );
  assert.equal(seen.length, 2, JSON.stringify(seen));
  assert.match(seen[0], /kto_pair.*unpaired KTO/);
  assert.match(seen[1], /label_smoothing is not used by loss_type 'nca_pair'/);
});

Deno.test(
  "aot and aot_pair on 5,000 pairs (past lavapipe's loop limit in one workgroup) match the reference",
  gpuTest,
  async () => {
    await setup();
    // The ranks took one workgroup looping B²/256 times per invocation: lavapipe stops an invocation after about 65 535
    // loop iterations in all, and the loss came back 0 from about 4,100 pairs. They are now one invocation per pair.
    const B = 5000, beta = 0.1;
    const x = randomBatch(B, 41, { spread: 30 });
    for (const type of ["aot", "aot_pair"] as const) {
      const cfg: DpoLossConfig = { beta, lossType: type };
      const want = refDpoLoss(x, refConfig(cfg, [type]));
      const [loss, losses, gc, gr] = await scope(async () => {
        const inputs = gpuInputs(x, [type], cfg);
        const o = dpoLoss(inputs, cfg);
        o.loss.backward();
        return await read(o.loss, o.losses, inputs.policyChosenLogps.grad, inputs.policyRejectedLogps.grad);
      });
      assertNear(`${type} loss`, loss, [want.loss]);
      assertNear(`${type} losses`, losses, want.losses);
      // d loss/d log-prob: −β·σ(−β·d)/B at the value's rank in its sort (aot: one sort of pc − pr; aot_pair: pc − rc
      // and pr − rr), d the difference of the two sorted sequences there; the reference's dual numbers are O(B²)
      const a = x.pc.map((v, i) => (type === "aot" ? v - x.pr[i] : v - x.rc![i]));
      const b = type === "aot" ? x.rc!.map((v, i) => v - x.rr![i]) : x.pr.map((v, i) => v - x.rr![i]);
      const rank = (v: number[]) => {
        const order = v.map((_, i) => i).sort((i, j) => v[i] - v[j] || i - j);
        const r = new Array<number>(v.length);
        order.forEach((i, k) => (r[i] = k));
        return { r, sorted: order.map((i) => v[i]) };
      };
      const sa = rank(a), sb = rank(b);
      const slope = (j: number) => -beta / B / (1 + Math.exp(beta * (sa.sorted[j] - sb.sorted[j])));
      const wantGc = a.map((_, i) => slope(sa.r[i]));
      const wantGr = a.map((_, i) => -slope(type === "aot" ? sa.r[i] : sb.r[i]));
      assertGrad(`${type} d loss/dpc`, gc, wantGc);
      assertGrad(`${type} d loss/dpr`, gr, wantGr);
    }
    // past one invocation's budget (both sorts: 2·(B + 1) + 3 iterations), a loop-limited adapter refuses the batch
    assert.ok(dpoLossIterations(["aot", "aot_pair"], 29_997) <= LOOP_BUDGET);
    assert.ok(dpoLossIterations(["aot", "aot_pair"], 29_998) > LOOP_BUDGET);
    if (loopLimited()) {
      const y = randomBatch(29_998, 43);
      const cfg: DpoLossConfig = { beta, lossType: ["aot", "aot_pair"] };
      scope(() => assert.throws(() => dpoLoss(gpuInputs(y, ["aot", "aot_pair"], cfg), cfg), GpuLimitError));
    }
  },
);
