/**
 * DPOTrainer with LoRA adapters: TRL's three reference options give the losses of the equivalent explicit
 * two-model setups; force_use_ref_model and the TR-DPO / adapter-name errors; checkpoints and save() write PEFT
 * folders (adapter_config.json, base_model.model.<module>.lora_A.weight) and resume bit for bit; the base gets no
 * gradients or optimizer state (and the run needs less memory than full fine-tuning); an int8 base learns.
 */
import assert from "node:assert/strict";
import { buildTrainConfig, parseTrainArgs, parseValue } from "../src/cli/config_file.ts";
import { FIELD_BY_NAME } from "../src/dpo/config_table.ts";
import { DPOConfig, type DPOConfigInit } from "../src/dpo/config.ts";
import { DPOTrainer, type TrainerState } from "../src/dpo/trainer.ts";
import { memoryStats, resetPeakMemory } from "../src/gpu/pool.ts";
import { sync, upload } from "../src/gpu/queue.ts";
import { loadAdapter, saveAdapter } from "../src/models/adapter_io.ts";
import type { CausalLM } from "../src/models/causal_lm.ts";
import { initModel } from "../src/models/init.ts";
import { loadModel, saveModel } from "../src/models/loader.ts";
import { loadPolicy, loadReference } from "../src/dpo/lora_reference.ts";
import { readSafetensorsHeader } from "../src/models/safetensors.ts";
import { applyLora, loraOf, mergeAdapter, unloadLora } from "../src/nn/lora.ts";
import { disposeQuantized, quantizeBase, quantizedModules } from "../src/nn/lora_quant.ts";
import { noGrad, scope } from "../mod.ts";
import { Generator } from "../src/tensor/random.ts";
import { charTokenizer, containsATask, TINY_LLAMA } from "./trainer_helpers.ts";
import { assertClose, gpuTest, setup } from "./util.ts";
import { loraAddInto } from "../src/nn/lora_fused.ts";
import { loraDelta } from "../src/nn/lora.ts";
import { linear } from "../src/nn/layers.ts";
import { add, mul } from "../src/autograd/ops/binary.ts";
import { sum } from "../src/autograd/ops/reduce.ts";
import { tensor, zeros } from "../src/tensor/create.ts";

const tok = charTokenizer();
const ROWS = containsATask(8, 5);
const PEFT = { r: 4, loraAlpha: 8, targetModules: "all-linear" };
const SEED = 7;

function args(outputDir: string, extra: Partial<DPOConfigInit> = {}): DPOConfig {
  return new DPOConfig({
    outputDir,
    maxLength: 32,
    maxPromptLength: 16,
    disableTqdm: true,
    perDeviceTrainBatchSize: 2,
    learningRate: 2e-2,
    maxSteps: 3,
    loggingSteps: 1,
    lrSchedulerType: "constant",
    saveStrategy: "no",
    reportTo: ["none"],
    ...extra,
  }, { printWarnings: false });
}

const base = () => initModel(TINY_LLAMA, { seed: SEED });

/** The metrics logged at each step (loss, rewards, log-probs, grad norm, ...). */
type History = Record<string, number>[];

async function train(
  trainer: DPOTrainer,
): Promise<{ history: History; out: Awaited<ReturnType<DPOTrainer["train"]>> }> {
  const out = await trainer.train();
  return { history: trainer.state.logHistory.filter((e) => "loss" in e), out };
}

/** Every logged metric of two runs agrees to `tol` (and both logged the same steps and keys). */
function sameHistory(a: History, b: History, tol: number, what: string): void {
  assert.equal(a.length, b.length, `${what}: number of log entries`);
  assert.ok(a.length >= 3, `${what}: at least 3 logged steps`);
  for (let i = 0; i < a.length; i++) {
    assert.deepEqual(Object.keys(a[i]).sort(), Object.keys(b[i]).sort(), `${what}: keys at entry ${i}`);
    for (const k of Object.keys(a[i])) {
      // accuracies count pairs whose chosen reward exceeds the rejected one: where the margins are at rounding
      // level (the first step, policy = reference), equivalent computations may count differently
      const tied = Math.max(Math.abs(a[i]["rewards/margins"]), Math.abs(b[i]["rewards/margins"])) < 1e-4;
      if (k === "rewards/accuracies" && tied) continue;
      const d = Math.abs(a[i][k] - b[i][k]);
      assert.ok(
        d <= tol * Math.max(1, Math.abs(b[i][k])),
        `${what}: step ${a[i].step} ${k}: ${a[i][k]} vs ${b[i][k]}`,
      );
    }
  }
}

/** The loss actually moved between steps (so the comparison is not between two constant runs). */
function lossesMove(h: History): void {
  const losses = h.map((e) => e.loss);
  assert.ok(Math.abs(losses[losses.length - 1] - losses[0]) > 1e-3, `losses ${losses}`);
}

async function tensorsOf(model: CausalLM, adapter: string): Promise<Map<string, Float32Array>> {
  const a = loraOf(model)!.adapter(adapter);
  const out = new Map<string, Float32Array>();
  for (const l of a.layers.values()) {
    out.set(`${l.module}.A`, await l.A.toArray());
    out.set(`${l.module}.B`, await l.B.toArray());
  }
  return out;
}

function closeMaps(a: Map<string, Float32Array>, b: Map<string, Float32Array>, tol: number): void {
  assert.deepEqual([...a.keys()], [...b.keys()]);
  for (const [k, x] of a) {
    const y = b.get(k)!;
    for (let i = 0; i < x.length; i++) {
      assert.ok(Math.abs(x[i] - y[i]) <= tol, `${k}[${i}]: ${x[i]} vs ${y[i]}`);
    }
  }
}

function free(...models: CausalLM[]): void {
  for (const m of models) {
    unloadLora(m);
    disposeQuantized(m);
    m.dispose();
  }
}

/**
 * An "SFT adapter" folder: LoRA (r 4, all linear layers) on the seed-7 base with A from PEFT's init and B random
 * (so the adapter changes the model), saved as a PEFT folder.
 */
async function sftAdapter(dir: string): Promise<void> {
  const m = await base();
  const l = applyLora(m, PEFT, { seed: 99 });
  const g = new Generator(123);
  for (const layer of l.adapter().layers.values()) {
    upload(
      layer.B.storage.buffer,
      Float32Array.from({ length: layer.B.size }, () => 0.2 * (g.uniform() - 0.5)),
    );
  }
  await saveAdapter(m, dir);
  free(m);
}

Deno.test(
  "option 2 (adapters disabled, also with precomputed log-probs) gives the losses of an explicit frozen base copy",
  gpuTest,
  async () => {
    await setup();
    // option 2: peftConfig, no refModel — the reference is the policy with its adapter disabled
    const m2 = await base();
    const t2 = new DPOTrainer({
      model: m2,
      tokenizer: tok,
      trainDataset: ROWS,
      args: args("/tmp/x"),
      peftConfig: PEFT,
    });
    assert.equal(t2.referenceKind, "adapters_disabled");
    const r2 = await train(t2);
    assert.equal(t2.refModel, null, "no second copy of the weights");
    lossesMove(r2.history);
    // the explicit setup: the same adapter init (peftConfig, seeded by args.seed) and a separate frozen base copy
    const m1 = await base();
    const ref = await base();
    const t1 = new DPOTrainer({
      model: m1,
      refModel: ref,
      tokenizer: tok,
      trainDataset: ROWS,
      args: args("/tmp/x", { forceUseRefModel: true }),
      peftConfig: PEFT,
    });
    assert.equal(t1.referenceKind, "model");
    const r1 = await train(t1);
    sameHistory(r2.history, r1.history, 1e-5, "option 2 vs explicit base copy");
    closeMaps(await tensorsOf(m2, "default"), await tensorsOf(m1, "default"), 1e-5);
    // precomputed reference log-probs from the adapter-disabled policy: the same run
    const m3 = await base();
    const t3 = new DPOTrainer({
      model: m3,
      tokenizer: tok,
      trainDataset: ROWS,
      args: args("/tmp/x", { precomputeRefLogProbs: true }),
      peftConfig: PEFT,
    });
    const r3 = await train(t3);
    sameHistory(r3.history, r1.history, 1e-5, "option 2 precomputed vs explicit base copy");
    free(m1, m2, m3, ref);
  },
);

Deno.test(
  "option 1 (two instances with the adapter) matches a merged reference; option 3 (adapter loaded twice) matches option 1",
  gpuTest,
  async () => {
    await setup();
    const dir = await Deno.makeTempDir({ prefix: "webdpo-lora-sft-" });
    try {
      await sftAdapter(dir);
      // option 1: the policy and a second instance, each with the SFT adapter (the reference's frozen)
      const p1 = await base();
      await loadAdapter(p1, dir, "default", { isTrainable: true });
      const ref1 = await base();
      await loadAdapter(ref1, dir);
      const t1 = new DPOTrainer({
        model: p1,
        refModel: ref1,
        tokenizer: tok,
        trainDataset: ROWS,
        args: args("/tmp/x"),
      });
      assert.equal(t1.referenceKind, "model");
      const r1 = await train(t1);
      lossesMove(r1.history);
      // the plain two-model setup: the reference is a model with the adapter merged into its weights
      const pm = await base();
      await loadAdapter(pm, dir, "default", { isTrainable: true });
      const refm = await base();
      await loadAdapter(refm, dir);
      mergeAdapter(refm);
      assert.equal(loraOf(refm), null);
      const tm = new DPOTrainer({
        model: pm,
        refModel: refm,
        tokenizer: tok,
        trainDataset: ROWS,
        args: args("/tmp/x"),
      });
      const rm = await train(tm);
      sameHistory(r1.history, rm.history, 1e-5, "option 1 vs merged reference");
      // option 3: one model, the adapter loaded as "train" (trainable) and as "reference" (frozen)
      const p3 = await base();
      await loadAdapter(p3, dir, "train", { isTrainable: true, activate: true });
      await loadAdapter(p3, dir, "reference");
      const t3 = new DPOTrainer({
        model: p3,
        tokenizer: tok,
        trainDataset: ROWS,
        args: args("/tmp/x", { modelAdapterName: "train", refAdapterName: "reference" }),
      });
      assert.equal(t3.referenceKind, "adapter");
      const r3 = await train(t3);
      assert.equal(t3.refModel, null);
      sameHistory(r3.history, r1.history, 1e-5, "option 3 vs option 1");
      // the same adapter was trained; the reference adapter did not move
      closeMaps(await tensorsOf(p3, "train"), await tensorsOf(p1, "default"), 1e-5);
      closeMaps(await tensorsOf(p3, "reference"), await tensorsOf(ref1, "default"), 0);
      assert.ok(t3.optimizer!.groups.flatMap((g) => g.names ?? []).every((n) => n!.includes(".train.")));
      free(p1, ref1, pm, refm, p3);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
);

Deno.test(
  "LoRA trainer errors: refModel without force_use_ref_model, TR-DPO, adapter names, int8 alone",
  gpuTest,
  async () => {
    await setup();
    const m = await base();
    const ref = await base();
    const make = (
      extra: Partial<DPOConfigInit>,
      o: { refModel?: CausalLM; peftConfig?: unknown; model?: CausalLM } = {},
    ) =>
      new DPOTrainer({
        model: o.model ?? m,
        refModel: o.refModel,
        tokenizer: tok,
        trainDataset: ROWS,
        args: args("/tmp/x", extra),
        peftConfig: o.peftConfig as typeof PEFT | undefined,
      });
    assert.throws(
      () => make({}, { refModel: ref, peftConfig: PEFT }),
      /both a refModel and a peftConfig.*force_use_ref_model/,
    );
    assert.equal(loraOf(m), null, "a refused peftConfig leaves the model without LoRA");
    assert.throws(
      () => make({ syncRefModel: true }, { peftConfig: PEFT }),
      /sync_ref_model \(TR-DPO\) needs a separate reference/,
    );
    assert.throws(
      () => make({ syncRefModel: true, forceUseRefModel: true }, { peftConfig: PEFT, refModel: ref }),
      /sync_ref_model \(TR-DPO\) with a LoRA policy is not supported/,
    );
    assert.equal(loraOf(m), null);
    assert.throws(
      () => make({ refAdapterName: "reference" }),
      /ref_adapter_name name LoRA adapters, but the model has none/,
    );
    assert.throws(
      () => make({}, { peftConfig: { r: 0 } }),
      /peftConfig: .*r must be an integer ≥ 1/,
    );
    // with adapters on the model
    applyLora(m, PEFT);
    assert.throws(() => make({}, { peftConfig: PEFT }), /already has LoRA adapters \(default\)/);
    assert.throws(
      () => make({ refAdapterName: "reference" }),
      /ref_adapter_name: the model has no adapter 'reference' \(adapters: default\)/,
    );
    assert.throws(
      () => make({ refAdapterName: "default" }),
      /both 'default'; load the reference adapter a second time/,
    );
    assert.throws(
      () => make({ modelAdapterName: "policy" }),
      /model_adapter_name: the model has no adapter 'policy'/,
    );
    assert.throws(() => make({ syncRefModel: true, refAdapterName: "default" }), /TR-DPO/);
    loraOf(m)!.addAdapter("frozen", PEFT, { trainable: false });
    assert.throws(
      () => make({ modelAdapterName: "frozen" }),
      /'frozen' being trained is frozen; load it with loadAdapter/,
    );
    assert.throws(
      () => make({ refAdapterName: "frozen" }, { refModel: ref }),
      /ref_adapter_name 'frozen' and a refModel both name the reference/,
    );
    // option 1 with a LoRA policy needs no flag (TRL checks force_use_ref_model only with a peft_config)
    assert.equal(make({}, { refModel: ref }).referenceKind, "model");
    assert.equal(make({ refAdapterName: "frozen" }).referenceKind, "adapter");
    unloadLora(m);
    // an int8 base alone has nothing to train
    await quantizeBase(m);
    assert.throws(() => make({}), /int8-quantised .* nothing to train without a LoRA adapter/);
    await assert.rejects(saveModel(m, "/tmp/webdpo-never"), /int8 weights .* dequantizeBase/);
    applyLora(m, PEFT);
    await assert.rejects(saveModel(m, "/tmp/webdpo-never"), /LoRA adapters.*saveAdapter.*mergeAdapter/);
    free(m, ref);
  },
);

/** Peak GPU bytes of a 2-step run on `model` over what was live before the trainer was made. */
async function peakOf(model: CausalLM, peftConfig: typeof PEFT | undefined): Promise<number> {
  await sync();
  resetPeakMemory();
  const start = memoryStats().liveBytes;
  const t = new DPOTrainer({
    model,
    tokenizer: tok,
    trainDataset: ROWS,
    args: args("/tmp/x", { maxSteps: 2 }),
    peftConfig,
    log: () => {},
  });
  await t.train();
  await sync();
  const peak = memoryStats().peakBytes - start;
  t.dispose();
  return peak;
}

Deno.test(
  "LoRA: the base gets no gradients and no optimizer state, and the run needs less memory than full fine-tuning",
  gpuTest,
  async () => {
    await setup();
    // wider than TINY_LLAMA, so that weights (not activations) dominate, as in real models
    const cfg = { ...TINY_LLAMA, hidden_size: 128, intermediate_size: 256 };
    const full = await initModel(cfg, { seed: 1 });
    const baseBytes = full.parameters().reduce((s, t) => s + t.bytes, 0);
    const fullPeak = await peakOf(full, undefined);
    free(full);
    const model = await initModel(cfg, { seed: 1 });
    const frozenBefore = new Map(
      await Promise.all(model.namedParameters().map(async ([n, t]) => [n, await t.toArray()] as const)),
    );
    const loraPeak = await peakOf(model, { ...PEFT, r: 16, loraAlpha: 32 });
    console.log(
      `peak GPU bytes of a 2-step run over the live weights (hidden 128, 2 layers): full fine-tuning ${fullPeak}, ` +
        `LoRA r=16 all-linear ${loraPeak}; the base weights are ${baseBytes}`,
    );
    // full fine-tuning holds a frozen copy, gradients and two AdamW moments of every weight, LoRA none of them
    // (but its adapter with its gradients and moments, and the activations of the adapter branches)
    assert.ok(
      loraPeak < fullPeak - 2 * baseBytes,
      `LoRA ${loraPeak} vs full ${fullPeak} (weights ${baseBytes})`,
    );
    const lora = loraOf(model)!;
    for (const [n, p] of model.namedParameters()) {
      assert.equal(p.requiresGrad, false, n);
      assert.equal(p.grad, null, n);
      assert.deepEqual(await p.toArray(), frozenBefore.get(n), `${n} changed`);
    }
    // the adapter did train
    const b = await lora.adapter().layers.values().next().value!.B.toArray();
    assert.ok(b.some((x) => x !== 0));
    free(model);
  },
);

Deno.test(
  "a LoRA run's checkpoints and save() are PEFT folders holding only the adapter and its optimizer state",
  gpuTest,
  async () => {
    await setup();
    const root = await Deno.makeTempDir({ prefix: "webdpo-lora-save-" });
    try {
      const model = await base();
      const out = `${root}/lora`;
      const t = new DPOTrainer({
        model,
        tokenizer: tok,
        trainDataset: ROWS,
        args: args(out, { maxSteps: 2, saveStrategy: "steps", saveSteps: 2 }),
        peftConfig: { ...PEFT, modulesToSave: ["lm_head"] },
      });
      await t.train();
      // the optimizer holds the adapter's tensors and lm_head's trained copy, nothing of the base
      const lora = loraOf(model)!;
      const trained = new Set(lora.trainableParameters());
      const optParams = t.optimizer!.params;
      assert.deepEqual(new Set(optParams), trained);
      const modules = model.projectionModules();
      assert.equal(optParams.length, 2 * modules.length + 1);
      for (const [n, p] of model.namedParameters()) {
        if (!trained.has(p)) assert.equal(p.grad, null, n);
      }

      // the checkpoint: the adapter's PEFT files instead of the model's, the adapter's optimizer state
      const ck = `${out}/checkpoint-2`;
      const files = new Set<string>();
      for await (const e of Deno.readDir(ck)) files.add(e.name);
      for (
        const f of [
          "adapter_config.json",
          "adapter_model.safetensors",
          "optimizer.safetensors",
        ]
      ) {
        assert.ok(files.has(f), `${f} in ${[...files]}`);
      }
      assert.ok(!files.has("model.safetensors") && !files.has("config.json"));
      const cfg = JSON.parse(await Deno.readTextFile(`${ck}/adapter_config.json`));
      assert.equal(cfg.peft_type, "LORA");
      assert.equal(cfg.task_type, "CAUSAL_LM");
      assert.equal(cfg.r, 4);
      assert.equal(cfg.lora_alpha, 8);
      assert.equal(cfg.use_rslora, false);
      assert.equal(cfg.fan_in_fan_out, false);
      assert.equal(cfg.bias, "none");
      assert.deepEqual(cfg.modules_to_save, ["lm_head"]);
      assert.deepEqual(cfg.target_modules, [
        "down_proj",
        "gate_proj",
        "k_proj",
        "o_proj",
        "q_proj",
        "up_proj",
        "v_proj",
      ]);
      const header = await readSafetensorsHeader(`${ck}/adapter_model.safetensors`);
      const expected = new Map<string, number[]>([["base_model.model.lm_head.weight", [16, 32]]]);
      for (const mod of modules) {
        const w = model.param(`${mod}.weight`);
        expected.set(`base_model.model.${mod}.lora_A.weight`, [4, w.shape[1]]);
        expected.set(`base_model.model.${mod}.lora_B.weight`, [w.shape[0], 4]);
      }
      assert.deepEqual(new Map(header.tensors.map((e) => [e.name, e.shape])), expected);
      const opt = await readSafetensorsHeader(`${ck}/optimizer.safetensors`);
      assert.equal(opt.tensors.length, 2 * optParams.length);
      assert.ok(
        opt.tensors.every((e) =>
          /\.lora_[AB]\.default\.weight\.exp_avg(_sq)?$|lm_head\.modules_to_save\.default\.weight/.test(
            e.name,
          )
        ),
      );

      // save(): the same PEFT folder; loading it onto a fresh base gives the trained model's logits
      await t.save(`${root}/final`);
      const fresh = await base();
      await loadAdapter(fresh, `${root}/final`);
      const ids = [[1, 4, 5, 6, 7, 12, 3]];
      const a = await scope(() => noGrad(() => model.eval().forward(ids).toArray()));
      const b = await scope(() => noGrad(() => fresh.forward(ids).toArray()));
      assert.deepEqual(b, a);
      t.dispose();
      free(model, fresh);
    } finally {
      await Deno.remove(root, { recursive: true });
    }
  },
);

/** A LoRA run with lora_dropout on, stopped at `stopAt` or resumed; returns its history and adapter bits. */
async function dropoutRun(dir: string, extra: Partial<DPOConfigInit>, stopAt?: number) {
  const model = await base();
  const trainer: DPOTrainer = new DPOTrainer({
    model,
    tokenizer: tok,
    trainDataset: ROWS,
    args: args(dir, { maxSteps: 4, saveStrategy: "steps", saveSteps: 2, disableDropout: false, ...extra }),
    peftConfig: { ...PEFT, loraDropout: 0.3 },
    callbacks: [{ onStepEnd: (s: TrainerState) => void (s.globalStep === stopAt && trainer.requestStop()) }],
    log: () => {},
  });
  const out = await trainer.train();
  const bits = [...(await tensorsOf(model, "default")).values()].map((x) => new Uint8Array(x.buffer));
  free(model);
  return { out, history: trainer.state.logHistory, bits };
}

Deno.test("a LoRA run with dropout resumes bit for bit from its checkpoint", gpuTest, async () => {
  await setup();
  const root = await Deno.makeTempDir({ prefix: "webdpo-lora-resume-" });
  try {
    const full = await dropoutRun(`${root}/full`, {});
    const first = await dropoutRun(`${root}/split`, {}, 2);
    assert.equal(first.out.interrupted, true);
    const second = await dropoutRun(`${root}/split`, { resumeFromCheckpoint: true });
    assert.equal(second.out.globalStep, 4);
    assert.deepEqual(second.history, full.history);
    assert.deepEqual(second.bits, full.bits);
    // dropout is really on: without it the run differs
    const plain = await dropoutRun(`${root}/plain`, { disableDropout: true });
    assert.notDeepEqual(plain.history.map((e) => e.loss), full.history.map((e) => e.loss));
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("LoRA on an int8 base learns: the loss goes down", gpuTest, async () => {
  await setup();
  // weights of std 0.2 (not 0.02): with a nearly uniform LM head the frozen base would barely pass changes through
  const model = await initModel(TINY_LLAMA, { seed: SEED, std: 0.2 });
  const report = await quantizeBase(model);
  assert.equal(report.modules.length, model.projectionModules().length);
  const t = new DPOTrainer({
    model,
    tokenizer: tok,
    trainDataset: containsATask(4, 8),
    args: args("/tmp/x", { maxSteps: 10, perDeviceTrainBatchSize: 4, learningRate: 5e-2 }),
    peftConfig: PEFT,
  });
  const { history } = await train(t);
  const losses = history.map((e) => e.loss);
  // B starts at zero, so the policy starts as the reference: the first loss is log 2
  assert.ok(Math.abs(losses[0] - Math.log(2)) < 1e-5, `first loss ${losses[0]}`);
  const last = losses.slice(-3).reduce((s, x) => s + x, 0) / 3;
  assert.ok(last < 0.4, `losses ${losses.map((x) => x.toFixed(3))}`);
  free(model);
});

Deno.test("webdpo train keys: use_peft and lora_* with TRL's defaults become the trainer's peftConfig", () => {
  const required = ["--model_name_or_path", "m", "--dataset_name", "d.jsonl", "--output_dir", "out"];
  const load = (values: Record<string, unknown>) =>
    buildTrainConfig({ model_name_or_path: "m", dataset_name: "d.jsonl", output_dir: "out", ...values }, {
      printWarnings: false,
    });
  // TRL's ModelConfig defaults: r 16, alpha 32, dropout 0.05, PEFT's default targets
  const on = load({ use_peft: true });
  assert.equal(on.peftConfig!.r, 16);
  assert.equal(on.peftConfig!.loraAlpha, 32);
  assert.equal(on.peftConfig!.loraDropout, 0.05);
  assert.equal(on.peftConfig!.targetModules, null);
  assert.equal(on.peftConfig!.useRslora, false);
  assert.equal(on.script.usePeft, true);
  assert.equal(on.script.int8Base, false);
  // lora_* without use_peft are ignored, as by TRL
  assert.equal(load({ lora_r: 4 }).peftConfig, null);
  const yaml = load({
    use_peft: true,
    lora_r: 8,
    lora_alpha: 16,
    lora_dropout: 0,
    lora_target_modules: "all-linear",
    lora_modules_to_save: ["lm_head"],
    use_rslora: true,
  });
  assert.deepEqual(
    [
      yaml.peftConfig!.r,
      yaml.peftConfig!.loraAlpha,
      yaml.peftConfig!.loraDropout,
      yaml.peftConfig!.useRslora,
    ],
    [8, 16, 0, true],
  );
  assert.equal(yaml.peftConfig!.targetModules, "all-linear");
  assert.deepEqual(yaml.peftConfig!.modulesToSave, ["lm_head"]);
  // flags: a list of names (one name is a list of one, as TRL's nargs="+")
  const flags = parseTrainArgs([...required, "--use_peft", "--lora_target_modules", "q_proj,v_proj"]);
  const values: Record<string, unknown> = {};
  for (const [k, raw] of flags.flags) values[k] = parseValue(FIELD_BY_NAME.get(k)!, raw, `--${k}`);
  assert.deepEqual(values.lora_target_modules, ["q_proj", "v_proj"]);
  const one = parseTrainArgs(["--lora_target_modules", "q_proj"]).flags.get("lora_target_modules")!;
  assert.deepEqual(parseValue(FIELD_BY_NAME.get("lora_target_modules")!, one, "--lora_target_modules"), [
    "q_proj",
  ]);
  // errors
  assert.throws(
    () => load({ int8_base: true }),
    /int8_base freezes the base in int8, so it needs use_peft: true/,
  );
  assert.throws(() => load({ use_peft: true, lora_r: 0 }), /lora_r must be an integer ≥ 1; got 0/);
  assert.throws(() => load({ use_peft: true, lora_dropout: 1 }), /lora_dropout must be in \[0, 1\); got 1/);
  assert.throws(
    () => load({ use_peft: true, lora_target_modules: [] }),
    /lora_target_modules must be a non-empty list/,
  );
  assert.throws(() => load({ load_in_8bit: true }), /'load_in_8bit': webdpo has no bitsandbytes.*int8_base/);
  assert.throws(() => load({ use_dora: true }), /'use_dora': DoRA is not supported/);
});

Deno.test(
  "webdpo train's loaders: a PEFT folder as model_name_or_path / ref_model_name_or_path",
  gpuTest,
  async () => {
    await setup();
    const root = await Deno.makeTempDir({ prefix: "webdpo-lora-load-" });
    try {
      const m = await base();
      await saveModel(m, `${root}/base`);
      free(m);
      // an "SFT adapter" on the saved base: its adapter_config.json names the base folder
      const sft = await loadModel(`${root}/base`);
      const l = applyLora(sft, PEFT, { seed: 3 });
      const g = new Generator(5);
      for (const layer of l.adapter().layers.values()) {
        upload(
          layer.B.storage.buffer,
          Float32Array.from({ length: layer.B.size }, () => 0.2 * (g.uniform() - 0.5)),
        );
      }
      await saveAdapter(sft, `${root}/sft`);
      const ids = [[1, 4, 5, 6, 7, 12, 3]];
      const logits = (model: CausalLM) => scope(() => noGrad(() => model.forward(ids).toArray()));
      const want = await logits(sft);
      const cfg = JSON.parse(await Deno.readTextFile(`${root}/sft/adapter_config.json`));
      assert.equal(cfg.base_model_name_or_path, `${root}/base`);
      // option 3: the adapter trainable as "train" and frozen as "reference"
      const policy = await loadPolicy(`${root}/sft`, {
        modelAdapterName: "train",
        refAdapterName: "reference",
      });
      const pl = loraOf(policy)!;
      assert.deepEqual([...pl.adapters.keys()], ["train", "reference"]);
      assert.equal(pl.activeAdapter, "train");
      assert.deepEqual([pl.adapter("train").trainable, pl.adapter("reference").trainable], [true, false]);
      assert.deepEqual(await logits(policy), want);
      assert.deepEqual(await pl.withAdapter("reference", () => logits(policy)), want);
      // option 1's reference: the adapter frozen, nothing requires gradients
      const ref = await loadReference(`${root}/sft`);
      assert.ok(ref.parameters().every((t) => !t.requiresGrad));
      assert.ok(loraOf(ref)!.trainableParameters().length === 0);
      assert.deepEqual(await logits(ref), want);
      // a plain folder loads as it is; int8_base quantises the projections
      const plain = await loadPolicy(`${root}/base`, { modelAdapterName: null, refAdapterName: null });
      assert.equal(loraOf(plain), null);
      assert.ok(plain.parameters().every((t) => t.requiresGrad));
      const q = await loadReference(`${root}/base`, { int8Base: true });
      assert.equal(quantizedModules(q).length, q.projectionModules().length);
      // an adapter folder that names no base
      await Deno.mkdir(`${root}/orphan`);
      await Deno.writeTextFile(
        `${root}/orphan/adapter_config.json`,
        JSON.stringify({ ...cfg, base_model_name_or_path: null }),
      );
      await assert.rejects(
        loadReference(`${root}/orphan`),
        /names no base model \(base_model_name_or_path\)/,
      );
      free(sft, policy, ref, plain, q);
    } finally {
      await Deno.remove(root, { recursive: true });
    }
  },
);

Deno.test(
  "loraAddInto (the hook's fused branch) equals linear + loraDelta in values and every gradient",
  gpuTest,
  async () => {
    await setup();
    // awkward shapes: x [2, 3, 7], W [9, 7] (trainable here, so the base output needs its gradient too), r = 3
    const g = new Generator(11);
    const data = (n: number) => Float32Array.from({ length: n }, () => g.uniform() - 0.5);
    const [xd, wd, bd, ad, bbd, rd] = [data(42), data(63), data(9), data(21), data(27), data(54)];
    const run = async (fused: boolean) =>
      await scope(async () => {
        const x = tensor(xd, [2, 3, 7], { requiresGrad: true });
        const w = tensor(wd, [9, 7], { requiresGrad: true });
        const b = tensor(bd, [9], { requiresGrad: true });
        const A = tensor(ad, [3, 7], { requiresGrad: true });
        const B = tensor(bbd, [9, 3], { requiresGrad: true });
        const y = fused
          ? loraAddInto(linear(x, w, b), x, A, B, 1.7)
          : add(linear(x, w, b), loraDelta(x, A, B, 1.7));
        sum(mul(y, tensor(rd, [2, 3, 9]))).backward();
        const out = [await y.toArray()];
        for (const t of [x, w, b, A, B]) {
          out.push(await t.grad!.toArray());
          t.grad!.dispose();
        }
        return out;
      });
    const fused = await run(true);
    const composed = await run(false);
    ["y", "dx", "dW", "db", "dA", "dB"].forEach((name, i) =>
      assertClose(fused[i], composed[i], { atol: 1e-5, rtol: 1e-5 }, name)
    );
    assert.throws(
      () => loraAddInto(zeros([2, 9]), zeros([2, 7]), zeros([3, 7]), zeros([8, 3]), 1),
      /loraAddInto: y \[2,9\], x \[2,7\], A \[3,7\] and B \[8,3\] do not fit/,
    );
  },
);
