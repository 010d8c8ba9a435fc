/**
 * The whole pipeline against a plain float64 TypeScript reference (tests/reference/transformer*.ts, which shares no
 * code with src/): a tiny Llama and a tiny GPT-2 with random weights, 8 preference pairs, one optimizer step of the
 * DPOTrainer. The loss, every metric, the gradient norm and the updated weights must agree to float32 tolerance.
 */
import assert from "node:assert/strict";
import { collate, resolveLengths, tokenizeRow } from "../src/data/tokenize_row.ts";
import { DPOConfig } from "../src/dpo/config.ts";
import { DPOTrainer } from "../src/dpo/trainer.ts";
import { initModel } from "../src/models/init.ts";
import { referenceDpoStep } from "./reference/transformer_dpo.ts";
import { charTokenizer, containsATask, TINY_GPT2, TINY_LLAMA } from "./trainer_helpers.ts";
import { gpuTest, setup } from "./util.ts";

const tok = charTokenizer();

for (const [name, cfg] of [["llama", TINY_LLAMA], ["gpt2", TINY_GPT2]] as const) {
  for (const lossType of ["sigmoid", "ipo"] as const) {
    Deno.test(`${name}/${lossType}: one DPOTrainer step matches the float64 reference`, gpuTest, async () => {
      await setup();
      const model = await initModel(cfg, { seed: 11, std: 0.1 });
      // a reference that differs from the policy, so rewards and the loss are not trivially 0 and ln 2
      const refModel = await initModel(cfg, { seed: 12, std: 0.1, requiresGrad: false });
      const rows = containsATask(8, 21);
      const lr = 1e-3;
      const beta = lossType === "ipo" ? 0.5 : 0.1;
      const params0 = new Map<string, Float64Array>();
      for (const [n, p] of model.namedParameters()) params0.set(n, Float64Array.from(await p.toArray()));
      const refParams = new Map<string, Float64Array>();
      for (const [n, p] of refModel.namedParameters()) refParams.set(n, Float64Array.from(await p.toArray()));
      // the batch exactly as the trainer builds it (the reference is invariant to the order of the pairs)
      const lengths = resolveLengths({ maxLength: 32, maxPromptLength: 16 });
      const tokenized = rows.map((r, i) => tokenizeRow(r, tok, lengths, `row ${i}`));
      const b = collate(tokenized, { padTokenId: 0 });
      const toRows = (a: Int32Array) =>
        Array.from({ length: 2 * b.B }, (_, i) => Array.from(a.subarray(i * b.T, (i + 1) * b.T)));
      const ref = referenceDpoStep({
        config: model.config,
        policyParams: params0,
        refParams,
        batch: {
          inputIds: toRows(b.inputIds),
          attentionMask: toRows(b.attentionMask),
          labels: toRows(b.labels),
        },
        dpo: { beta, lossType },
        adamw: { lr, maxGradNorm: 1, weightDecay: 0.1 }, // biases and norm weights are not decayed (hfNoDecay)
      });
      const trainer = new DPOTrainer({
        model,
        refModel,
        tokenizer: tok,
        trainDataset: rows,
        args: new DPOConfig({
          outputDir: "/tmp/webdpo-numeric",
          maxLength: 32,
          maxPromptLength: 16,
          perDeviceTrainBatchSize: 8,
          maxSteps: 1,
          loggingSteps: 1,
          learningRate: lr,
          weightDecay: 0.1,
          lrSchedulerType: "constant",
          beta,
          lossType,
          disableTqdm: true,
          reportTo: ["none"],
          saveStrategy: "no",
        }),
        log: () => {},
      });
      await trainer.train();
      const logged = trainer.state.logHistory[0];
      const close = (got: number, want: number, what: string, tol = 1e-4) =>
        assert.ok(Math.abs(got - want) <= tol * Math.max(1, Math.abs(want)), `${what}: ${got} vs ${want}`);
      close(logged.loss, ref.loss, "loss");
      close(logged.grad_norm, ref.gradNorm, "grad_norm", 1e-3);
      for (const [k, v] of Object.entries(ref.metrics)) {
        if (lossType === "ipo" && k.startsWith("logps/")) continue; // not logged for ipo alone (per-token rewards)
        assert.ok(k in logged, `metric ${k} logged`);
        close(logged[k], v as number, k);
      }
      // updated weights: AdamW's first step moves each entry by ≈ lr·sign(g), so entries whose gradient is at
      // float32 noise level may legitimately differ by up to 2·lr; everywhere else they agree closely
      let checked = 0;
      for (const [n, p] of model.namedParameters()) {
        const got = await p.toArray();
        const want = ref.updatedParams.get(n)!;
        const g = ref.grads.get(n)!;
        const gmax = Math.max(...Array.from(g, Math.abs));
        for (let i = 0; i < got.length; i++) {
          const noisy = Math.abs(g[i]) < 1e-4 * gmax + 1e-7;
          const tol = noisy ? 2.01 * lr : 1e-5 + 1e-4 * Math.abs(want[i]);
          if (!noisy) checked++;
          assert.ok(Math.abs(got[i] - want[i]) <= tol, `${n}[${i}]: ${got[i]} vs ${want[i]} (grad ${g[i]})`);
        }
      }
      assert.ok(checked > 1000, `only ${checked} weights had gradients above noise`);
      assert.ok(Math.abs(ref.metrics["rewards/margins"]) > 1e-3, "the reference differs from the policy");
      trainer.dispose();
      refModel.dispose();
      model.dispose();
    });
  }
}
