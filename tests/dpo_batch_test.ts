/**
 * The golden `batch` and `logps` cases: explicit logits + labels → per-sequence log-probs, token counts, WPO
 * weights, NLL, losses, rewards, metrics and d loss / d policy logits, through the same pairLogps → dpoLoss path the
 * trainer uses (the trainer gets its per-token log-probs from the fused kernel instead of explicit logits).
 */
import assert from "node:assert/strict";
import { shiftLabels } from "../src/autograd/ops/labels.ts";
import { logSoftmaxGather } from "../src/autograd/ops/log_softmax_gather.ts";
import { exp, log, logSoftmax, scale, sum } from "../src/autograd/ops/mod.ts";
import { reshape } from "../src/autograd/ops/reshape.ts";
import { concat } from "../src/autograd/ops/concat.ts";
import { noGrad, scope } from "../mod.ts";
import { pairLogps, type TokenValues } from "../src/dpo/batch.ts";
import { DPO_LOSS_METRICS, dpoLoss, resetDpoLossWarnings } from "../src/dpo/loss.ts";
import { snakeToCamel } from "../src/dpo/config.ts";
import { tensor } from "../src/tensor/create.ts";
import type { Tensor } from "../src/tensor/tensor.ts";
import { gpuTest, setup, typedErrorLike } from "./util.ts";

interface Case {
  id: string;
  kind: string;
  config: Record<string, unknown>;
  inputs: Record<string, unknown>;
  outputs?: Record<string, unknown>;
  error?: string;
  tolerance?: number;
}
const cases: Case[] =
  JSON.parse(await Deno.readTextFile(new URL("./fixtures/dpo/vectors.json", import.meta.url)))
    .cases;

const flat = (x: unknown): number[] => (Array.isArray(x) ? x.flatMap(flat) : [x as number]);

function close(got: ArrayLike<number>, want: unknown, tol: number, what: string): void {
  const w = flat(want);
  assert.equal(got.length, w.length, `${what}: length`);
  for (let i = 0; i < w.length; i++) {
    assert.ok(
      Math.abs(got[i] - w[i]) <= tol * Math.max(1, Math.abs(w[i])),
      `${what}[${i}]: ${got[i]} vs ${w[i]}`,
    );
  }
}

/** Per-token values from explicit logits [R, T, V]: log p(shifted label), Σ logits, log Σ p². */
function fromLogits(logits: Tensor, shifted: Int32Array): TokenValues {
  const [R, T, V] = logits.shape;
  const z = reshape(logits, [R * T, V]);
  const tokenLogps = logSoftmaxGather(z, shifted);
  return noGrad(() => ({
    tokenLogps,
    logitSum: sum(z, { axis: -1 }),
    logSumP2: log(sum(exp(scale(logSoftmax(z), 2)), { axis: -1 })),
  }));
}

function lossConfig(cfg: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(cfg)) if (v !== null) out[snakeToCamel(k)] = v;
  return out;
}

for (const c of cases.filter((c) => c.kind === "batch")) {
  Deno.test(`golden ${c.id}`, gpuTest, async () => {
    await setup();
    resetDpoLossWarnings();
    const tol = c.tolerance ?? 1e-5;
    const labels = flat(c.inputs.labels);
    const R = (c.inputs.labels as number[][]).length;
    const T = (c.inputs.labels as number[][])[0].length;
    const B = R / 2;
    const shifted = shiftLabels(Int32Array.from(labels), [R, T], c.config.label_pad_token_id as number);
    const cfg = lossConfig(c.config);
    await scope(async () => {
      const pl = c.inputs.policy_logits as number[][][];
      const V = pl[0][0].length;
      const policyLogits = tensor(flat(pl), [R, T, V], { requiresGrad: true });
      const run = () => {
        const pol = pairLogps(fromLogits(policyLogits, shifted), {
          B,
          T,
          V,
          shifted,
          ldAlpha: c.config.ld_alpha as number | null,
          useWeighting: c.config.use_weighting as boolean,
          needNll: c.config.rpo_alpha !== null || [c.config.loss_type].flat().includes("sft"),
          needLogits: true,
        });
        let refC: Tensor | undefined, refR: Tensor | undefined;
        if (c.inputs.reference_logits) {
          const ref = noGrad(() =>
            pairLogps(fromLogits(tensor(flat(c.inputs.reference_logits), [R, T, V]), shifted), {
              B,
              T,
              V,
              shifted,
              ldAlpha: c.config.ld_alpha as number | null,
            })
          );
          refC = ref.chosen;
          refR = ref.rejected;
        } else if (c.inputs.reference_chosen_logps) {
          refC = tensor(flat(c.inputs.reference_chosen_logps), [B]);
          refR = tensor(flat(c.inputs.reference_rejected_logps), [B]);
        }
        const out = dpoLoss({
          policyChosenLogps: pol.chosen,
          policyRejectedLogps: pol.rejected,
          referenceChosenLogps: refC,
          referenceRejectedLogps: refR,
          chosenLengths: pol.chosenLengths,
          rejectedLengths: pol.rejectedLengths,
          weights: pol.wpoWeights ?? undefined,
          nll: pol.nll ?? undefined,
        }, cfg);
        return { pol, refC, refR, out };
      };
      if (c.error) {
        assert.throws(run, typedErrorLike(c.error));
        return;
      }
      const { pol, refC, refR, out } = run();
      const o = c.outputs!;
      close(await pol.chosen.toArray(), o.policy_chosen_logps, tol, "policy_chosen_logps");
      close(await pol.rejected.toArray(), o.policy_rejected_logps, tol, "policy_rejected_logps");
      if (refC) {
        close(await refC.toArray(), o.reference_chosen_logps, tol, "reference_chosen_logps");
        close(await refR!.toArray(), o.reference_rejected_logps, tol, "reference_rejected_logps");
      }
      assert.deepEqual([...pol.counts], [...flat(o.chosen_token_counts), ...flat(o.rejected_token_counts)]);
      if (o.losses) close(await out.losses.toArray(), o.losses, tol, "losses");
      if (o.losses_by_type) {
        for (const [k, v] of Object.entries(o.losses_by_type as Record<string, number[]>)) {
          close(await out.lossesByType[k].toArray(), v, tol, `losses_by_type.${k}`);
        }
      }
      close(await out.loss.toArray(), [o.loss], tol, "loss");
      close(await out.chosenRewards.toArray(), o.chosen_rewards, tol, "chosen_rewards");
      close(await out.rejectedRewards.toArray(), o.rejected_rewards, tol, "rejected_rewards");
      if (o.nll_loss !== undefined) close(await pol.nll!.toArray(), [o.nll_loss], tol, "nll_loss");
      if (o.wpo_sequence_weights) {
        close(await pol.wpoSequenceWeights!.toArray(), o.wpo_sequence_weights, tol, "wpo_sequence_weights");
        close(await pol.wpoWeights!.toArray(), o.wpo_pair_weights, tol, "wpo_pair_weights");
      }
      const metrics = await out.metrics.toArray();
      const got: Record<string, number> = {};
      DPO_LOSS_METRICS.forEach((k, i) => (got[k] = metrics[i]));
      got["logits/chosen"] = await pol.logitsChosen!.item();
      got["logits/rejected"] = await pol.logitsRejected!.item();
      got["loss"] = await out.loss.item();
      if (pol.nll) got["nll_loss"] = await pol.nll.item();
      for (const [k, v] of Object.entries(o.metrics as Record<string, number>)) {
        assert.ok(k in got, `metric ${k} is not computed`);
        close([got[k]], [v], tol, `metrics.${k}`);
      }
      out.loss.backward();
      close(await policyLogits.grad!.toArray(), o.grad_policy_logits, tol, "grad_policy_logits");
    });
  });
}

for (const c of cases.filter((c) => c.kind === "logps")) {
  Deno.test(`golden ${c.id}`, gpuTest, async () => {
    await setup();
    const logitsArr = c.inputs.logits as number[][][];
    const R = logitsArr.length, T = logitsArr[0].length, V = logitsArr[0][0].length;
    const labels = Int32Array.from(flat(c.inputs.labels));
    const shifted = shiftLabels(labels, [R, T], -100);
    await scope(async () => {
      const logits = tensor(flat(logitsArr), [R, T, V], { requiresGrad: true });
      const tv = fromLogits(logits, shifted);
      // R rows as "chosen" only: pairLogps wants pairs, so score the rows directly here
      if (c.error) {
        assert.throws(() => pairLogps(tv, { B: R / 2, T, V, shifted }), /row 1 has no completion token/);
        return;
      }
      const o = c.outputs!;
      const pl = pairLogps(tv, { B: R / 2, T, V, shifted });
      const seq = [...await pl.chosen.toArray(), ...await pl.rejected.toArray()];
      close(seq, o.sequence_logps, 1e-5, "sequence_logps");
      assert.deepEqual([...pl.counts], flat(o.token_counts));
      const tok = await tv.tokenLogps.toArray();
      const perTok: number[] = [];
      for (let r = 0; r < R; r++) for (let t = 0; t < T - 1; t++) perTok.push(tok[r * T + t]);
      close(perTok, o.per_token_logps, 1e-5, "per_token_logps");
      // d Σ sequence_logps / d logits
      const total = sum(concat([pl.chosen, pl.rejected]));
      total.backward();
      close(await logits.grad!.toArray(), o.grad_logits_of_sum, 1e-5, "grad_logits_of_sum");
    });
  });
}
