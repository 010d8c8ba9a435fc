/**
 * LoRA adapters (src/nn/lora.ts, lora_config.ts, lora_dropout.ts) and PEFT adapter folders
 * (src/models/adapter_io.ts): the layer against float64 references and finite differences, PEFT's initialisation
 * and shapes (Conv1D included), frozen bases and the memory they save, named adapters, disabling, merging, and
 * saving/loading PEFT folders — on the tiny hf-reference llama and gpt2 checkpoints.
 */
import assert from "node:assert/strict";
import { memoryStats, mul, noGrad, resetPeakMemory, scope, sum, type Tensor, tensor } from "../mod.ts";
import { upload } from "../src/gpu/queue.ts";
import { ADAPTER_CONFIG, ADAPTER_WEIGHTS, loadAdapter, saveAdapter } from "../src/models/adapter_io.ts";
import type { CausalLM } from "../src/models/causal_lm.ts";
import { loadModel, saveModel } from "../src/models/loader.ts";
import { readSafetensors, readSafetensorsHeader, writeSafetensors } from "../src/models/safetensors.ts";
import { linear } from "../src/nn/layers.ts";
import {
  applyLora,
  type LoraLayer,
  loraLinear,
  type LoraModel,
  loraOf,
  mergeAdapter,
  setAdapter,
  trainableParametersOf,
  unloadLora,
  withAdapter,
  withAdaptersDisabled,
} from "../src/nn/lora.ts";
import { loraConfig, loraConfigFromPeft, moduleHyper } from "../src/nn/lora_config.ts";
import { loraDropout } from "../src/nn/lora_dropout.ts";
import { AdamW } from "../src/optim/adamw.ts";
import { dropoutKeepRef, linearRef, loraLinearRef, mergedWeightRef } from "./reference/lora.ts";
import { assertClose, gpuTest, gradCheck, randomArray, setup } from "./util.ts";

const FIX = new URL("./fixtures/hf-reference/", import.meta.url).pathname;
const IDS = [[1, 17, 45, 3, 99, 210, 7, 64], [1, 5, 300, 12, 8, 9, 2, 150]];

async function load(name: "llama" | "gpt2", requiresGrad = true): Promise<CausalLM> {
  await setup();
  return await loadModel(`${FIX}${name}`, { requiresGrad });
}

function logits(model: CausalLM, ids = IDS): Promise<Float32Array> {
  return scope(() => noGrad(() => model.forward(ids).toArray()));
}

/** Overwrites a tensor's values (test setup). */
function fill(t: Tensor, data: Float32Array): void {
  assert.equal(data.length, t.size);
  upload(t.storage.buffer, data);
}

/** Gives every B of an adapter random values in ±amp. */
function randomizeB(l: LoraModel, seed: number, amp = 0.2, name?: string): void {
  let i = 0;
  for (const layer of l.adapter(name).layers.values()) {
    fill(layer.B, randomArray(layer.B.size, seed + i++, -amp, amp));
  }
}

function dispose(model: CausalLM): void {
  unloadLora(model);
  model.dispose();
}

function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

async function tempDir(): Promise<string> {
  return await Deno.makeTempDir({ prefix: "webdpo_lora_" });
}

// ---------------------------------------------------------------------------------------------------------------
Deno.test("loraConfig: PEFT defaults, camelCase / snake_case / TRL spellings, validation", () => {
  const d = loraConfig();
  assert.equal(d.r, 8);
  assert.equal(d.loraAlpha, 8);
  assert.equal(d.loraDropout, 0);
  assert.equal(d.targetModules, null);
  assert.equal(d.useRslora, false);
  const trl = loraConfig({
    lora_r: 16,
    lora_alpha: 32,
    lora_dropout: 0.05,
    lora_target_modules: ["q_proj", "v_proj"],
    lora_modules_to_save: ["lm_head"],
    use_rslora: true,
  });
  assert.deepEqual(
    [trl.r, trl.loraAlpha, trl.loraDropout, trl.targetModules, trl.modulesToSave, trl.useRslora],
    [16, 32, 0.05, ["q_proj", "v_proj"], ["lm_head"], true],
  );
  const camel = loraConfig({ r: 4, loraAlpha: 8, targetModules: "all-linear", modulesToSave: "lm_head" });
  assert.deepEqual([camel.r, camel.targetModules, camel.modulesToSave], [4, "all-linear", ["lm_head"]]);
  assert.throws(
    () => loraConfig({ lora_alfa: 3 }),
    /unknown key "lora_alfa" \(did you mean "lora_alpha"\?\)/,
  );
  assert.throws(() => loraConfig({ r: 8, lora_r: 4 }), /"lora_r" and "r" set the same option/);
  assert.throws(() => loraConfig({ r: 0 }), /r must be an integer ≥ 1/);
  assert.throws(() => loraConfig({ r: 2.5 }), /integer/);
  assert.throws(() => loraConfig({ lora_dropout: 1 }), /\[0, 1\)/);
  assert.throws(() => loraConfig({ bias: "all" }), /bias "none" only/);
  assert.throws(() => loraConfig({ init_lora_weights: "gaussian" }), /not supported/);
  assert.throws(() => loraConfig({ target_modules: [3] }), /list of module names/);
  assert.throws(() => loraConfig({ rank_pattern: { "(": 2 } }), /not a valid regex/);
  // scaling: alpha / r, rsLoRA alpha / sqrt(r); rank_pattern / alpha_pattern by PEFT's (.*\.)?(pattern)$ rule
  const c = loraConfig({ r: 8, lora_alpha: 16, rank_pattern: { "layers\\.1\\.self_attn\\.q_proj": 2 } });
  assert.deepEqual(moduleHyper(c, "model.layers.0.self_attn.q_proj"), { r: 8, alpha: 16, scaling: 2 });
  assert.deepEqual(moduleHyper(c, "model.layers.1.self_attn.q_proj"), { r: 2, alpha: 16, scaling: 8 });
  const rs = loraConfig({ r: 16, lora_alpha: 8, use_rslora: true, alpha_pattern: { o_proj: 4 } });
  assert.equal(moduleHyper(rs, "model.layers.0.self_attn.v_proj").scaling, 8 / 4);
  assert.equal(moduleHyper(rs, "model.layers.0.self_attn.o_proj").scaling, 4 / 4);
  // PEFT files: neutral values of unimplemented options pass, set ones fail naming the key
  const peft = loraConfigFromPeft({
    peft_type: "LORA",
    task_type: "CAUSAL_LM",
    r: 4,
    lora_alpha: 8,
    target_modules: ["q_proj"],
    use_dora: false,
    layers_to_transform: null,
    loftq_config: {},
    megatron_core: "megatron.core",
    fan_in_fan_out: false,
    inference_mode: true,
  }, "x/adapter_config.json");
  assert.deepEqual([peft.r, peft.loraAlpha, peft.targetModules], [4, 8, ["q_proj"]]);
  assert.throws(
    () => loraConfigFromPeft({ use_dora: true }, "x/adapter_config.json"),
    /x\/adapter_config.json: "use_dora"/,
  );
  assert.throws(() => loraConfigFromPeft({ layers_to_transform: [0] }, "f"), /"layers_to_transform" is set/);
  assert.throws(() => loraConfigFromPeft({ peft_type: "IA3" }, "f"), /peft_type is "IA3"/);
  assert.throws(() => loraConfigFromPeft({ task_type: "SEQ_CLS" }, "f"), /CAUSAL_LM/);
});

// ---------------------------------------------------------------------------------------------------------------
const LAYER_SHAPES: [number, number, number, number][] = [[1, 1, 1, 1], [3, 5, 7, 2], [129, 65, 33, 8], [
  4,
  64,
  96,
  16,
]];

Deno.test(
  "loraLinear equals float64 x·Wᵀ + b + s·(x·Aᵀ)·Bᵀ in both layouts, and the base exactly when B = 0",
  gpuTest,
  async () => {
    await setup();
    for (const layout of ["out_in", "in_out"] as const) {
      for (const [N, inF, outF, r] of LAYER_SHAPES) {
        const seed = N * 1000 + inF * 10 + outF + (layout === "in_out" ? 7 : 0);
        const x = randomArray(N * inF, seed);
        const w = randomArray(outF * inF, seed + 1);
        const b = randomArray(outF, seed + 2);
        const A = randomArray(r * inF, seed + 3);
        const B = randomArray(outF * r, seed + 4);
        const s = 1.75;
        const wShape = layout === "out_in" ? [outF, inF] : [inF, outF];
        const [y, base, y0] = await scope(() =>
          noGrad(async () => {
            const xt = tensor(x, [N, inF]), wt = tensor(w, wShape), bt = tensor(b);
            return [
              await loraLinear(xt, wt, bt, tensor(A, [r, inF]), tensor(B, [outF, r]), s, layout).toArray(),
              await linear(xt, wt, bt, layout).toArray(),
              await loraLinear(
                xt,
                wt,
                bt,
                tensor(A, [r, inF]),
                tensor(new Float32Array(outF * r), [outF, r]),
                s,
                layout,
              )
                .toArray(),
            ];
          })
        );
        const want = loraLinearRef(x, N, inF, w, outF, b, A, r, B, s, layout);
        // f32 products over ≤ 129 terms of magnitude ≤ 1
        assertClose(y, want, { atol: 2e-4, rtol: 1e-4 }, `${layout} ${N}×${inF}×${outF} r=${r}`);
        assertClose(base, linearRef(x, N, inF, w, outF, b, layout), { atol: 2e-4, rtol: 1e-4 }, "base");
        assert.deepEqual(y0, base, "B = 0 adds exactly nothing");
      }
    }
  },
);

Deno.test(
  "loraLinear gradients (x, W, bias, A, B) match finite differences in both layouts",
  gpuTest,
  async () => {
    await setup();
    for (const layout of ["out_in", "in_out"] as const) {
      const inF = 5, outF = 4, r = 2;
      await gradCheck(
        (x, w, b, A, B) => loraLinear(x, w, b, A, B, 1.5, layout),
        [
          { data: randomArray(2 * 3 * inF, 1), shape: [2, 3, inF] },
          { data: randomArray(outF * inF, 2), shape: layout === "out_in" ? [outF, inF] : [inF, outF] },
          { data: randomArray(outF, 3), shape: [outF] },
          { data: randomArray(r * inF, 4), shape: [r, inF] },
          { data: randomArray(outF * r, 5), shape: [outF, r] },
        ],
      ); // eps 1e-2, rtol 2e-2, atol 1e-3 (util defaults for f32 forwards)
    }
  },
);

// ---------------------------------------------------------------------------------------------------------------
Deno.test(
  "applyLora on llama: PEFT shapes and Kaiming-uniform init, frozen base, identical logits while B = 0",
  gpuTest,
  async () => {
    const model = await load("llama");
    try {
      const before = await logits(model);
      const lora = applyLora(model, { r: 8, lora_alpha: 16, target_modules: ["q_proj", "v_proj"] }, {
        seed: 1,
      });
      assert.equal(loraOf(model), lora);
      const a = lora.adapter("default");
      assert.deepEqual([...a.layers.keys()], [
        "model.layers.0.self_attn.q_proj",
        "model.layers.0.self_attn.v_proj",
        "model.layers.1.self_attn.q_proj",
        "model.layers.1.self_attn.v_proj",
      ]);
      const q = a.layers.get("model.layers.0.self_attn.q_proj")!;
      const v = a.layers.get("model.layers.0.self_attn.v_proj")!;
      assert.deepEqual([q.A.shape, q.B.shape, v.A.shape, v.B.shape], [[8, 64], [64, 8], [8, 64], [32, 8]]);
      assert.equal(q.scaling, 2);
      // torch.nn.init.kaiming_uniform_(a=√5) on [r, in]: U(−1/√in, 1/√in); B zero
      const bound = 1 / Math.sqrt(64);
      const all: number[] = [];
      for (const l of a.layers.values()) {
        all.push(...await l.A.toArray());
        assert.ok((await l.B.toArray()).every((x) => x === 0));
      }
      assert.ok(all.every((x) => Math.abs(x) <= bound));
      const mean = all.reduce((s, x) => s + x, 0) / all.length;
      const variance = all.reduce((s, x) => s + x * x, 0) / all.length;
      assert.ok(Math.abs(mean) < 0.05 * bound, `mean ${mean}`);
      assert.ok(
        Math.abs(variance / (bound * bound / 3) - 1) < 0.1,
        `variance ${variance} vs ${bound * bound / 3}`,
      );
      assert.ok(Math.max(...all) > 0.95 * bound && Math.min(...all) < -0.95 * bound);
      // every base parameter frozen; the trainable tensors are the adapter's A and B
      for (const [n, t] of model.namedParameters()) assert.equal(t.requiresGrad, false, n);
      const trainable = lora.namedTrainableParameters();
      assert.equal(trainable.length, 8);
      assert.equal(trainable[0][0], "base_model.model.model.layers.0.self_attn.q_proj.lora_A.default.weight");
      assert.ok(trainable.every(([, t]) => t.requiresGrad));
      assert.deepEqual(trainableParametersOf(model), trainable.map(([, t]) => t));
      assert.deepEqual(lora.parameterCounts(), {
        trainable: 4 * 8 * 64 + 2 * (64 * 8 + 32 * 8),
        total: model.numParameters() + 4 * 8 * 64 + 2 * (64 * 8 + 32 * 8),
      });
      // B = 0: the adapted model is the base model, bit for bit
      assert.deepEqual(await logits(model), before);
      // the same seed gives the same A, another seed another
      lora.addAdapter("same", { r: 8, lora_alpha: 16, target_modules: ["q_proj", "v_proj"] }, { seed: 1 });
      lora.addAdapter("other", { r: 8, lora_alpha: 16, target_modules: ["q_proj", "v_proj"] }, { seed: 2 });
      const A1 = await q.A.toArray();
      assert.deepEqual(await lora.adapter("same").layers.get(q.module)!.A.toArray(), A1);
      assert.notDeepEqual(await lora.adapter("other").layers.get(q.module)!.A.toArray(), A1);
      assert.equal(lora.activeAdapter, "default", "added adapters do not become active");
      assert.throws(() => applyLora(model, {}), /already has LoRA adapters/);
      assert.throws(() => lora.addAdapter("same", {}), /already exists/);
      // unload restores the flags the parameters had
      unloadLora(model);
      assert.equal(loraOf(model), null);
      assert.deepEqual([model.linearHooks.base, model.linearHooks.adapter], [null, null]);
      for (const [n, t] of model.namedParameters()) assert.equal(t.requiresGrad, true, n);
    } finally {
      dispose(model);
    }
  },
);

Deno.test(
  "target_modules: all-linear, PEFT defaults, regex strings, exclusions and clear errors",
  gpuTest,
  async () => {
    const model = await load("llama");
    const gpt2 = await load("gpt2");
    try {
      const l = applyLora(model, { target_modules: "all-linear" });
      assert.equal(l.adapter().layers.size, 14);
      assert.deepEqual(l.adapter().savedTargetModules, [
        "down_proj",
        "gate_proj",
        "k_proj",
        "o_proj",
        "q_proj",
        "up_proj",
        "v_proj",
      ]);
      l.addAdapter("defaults", {});
      assert.deepEqual([...l.adapter("defaults").layers.keys()].map((m) => m.split(".").pop()), [
        "q_proj",
        "v_proj",
        "q_proj",
        "v_proj",
      ]);
      l.addAdapter("regex", { target_modules: "model\\.layers\\.1\\..*_proj" });
      assert.equal(l.adapter("regex").layers.size, 7);
      assert.ok([...l.adapter("regex").layers.keys()].every((m) => m.startsWith("model.layers.1.")));
      assert.equal(l.adapter("regex").savedTargetModules, "model\\.layers\\.1\\..*_proj");
      l.addAdapter("excl", { target_modules: "all-linear", exclude_modules: ["down_proj", "up_proj"] });
      assert.equal(l.adapter("excl").layers.size, 10);
      l.addAdapter("rank", {
        r: 4,
        target_modules: ["q_proj"],
        rank_pattern: { "layers\\.1\\.self_attn\\.q_proj": 2 },
      });
      assert.deepEqual([...l.adapter("rank").layers.values()].map((x) => x.A.shape[0]), [4, 2]);
      assert.throws(
        () => l.addAdapter("x", { target_modules: ["lm_head"] }),
        /not a projection.*modules_to_save/,
      );
      assert.throws(
        () => l.addAdapter("x", { target_modules: ["q_proj", "qproj"] }),
        /"qproj" matches no module.*q_proj/,
      );
      assert.throws(() => l.addAdapter("x", { target_modules: ["c_attn"] }), /matches no module/);
      assert.throws(() => l.addAdapter("bad name", {}), /adapter name/);
      assert.equal(l.adapters.size, 5, "failed adds leave nothing behind");
      const g = applyLora(gpt2, {});
      assert.deepEqual([...g.adapter().layers.keys()], [
        "transformer.h.0.attn.c_attn",
        "transformer.h.1.attn.c_attn",
      ]);
      g.addAdapter("all", { target_modules: "all-linear" });
      assert.deepEqual(g.adapter("all").savedTargetModules, ["c_attn", "c_fc", "c_proj"]);
      assert.equal(g.adapter("all").layers.size, 8, "c_proj matches both attn.c_proj and mlp.c_proj");
    } finally {
      dispose(model);
      dispose(gpt2);
    }
  },
);

// ---------------------------------------------------------------------------------------------------------------
/** The hook's output for one module and a random input, vs the float64 reference with the module's weights. */
async function checkModule(model: CausalLM, layer: LoraLayer, layout: "out_in" | "in_out", seed: number) {
  const w = model.param(`${layer.module}.weight`);
  const bias = model.maybeParam(`${layer.module}.bias`);
  const [inF, outF] = layout === "out_in" ? [w.shape[1], w.shape[0]] : [w.shape[0], w.shape[1]];
  const N = 7;
  const x = randomArray(N * inF, seed);
  const y = await scope(() =>
    noGrad(() => {
      const xt = tensor(x, [N, inF]);
      return model.linearHooks.project(xt, layer.module, () => linear(xt, w, bias, layout)).toArray();
    })
  );
  const want = loraLinearRef(
    x,
    N,
    inF,
    await w.toArray(),
    outF,
    bias ? await bias.toArray() : null,
    await layer.A.toArray(),
    layer.r,
    await layer.B.toArray(),
    layer.scaling,
    layout,
  );
  assertClose(y, want, { atol: 1e-4, rtol: 1e-4 }, layer.module);
  assert.ok(
    maxAbsDiff(y, linearRef(x, N, inF, await w.toArray(), outF, bias ? await bias.toArray() : null, layout)) >
      1e-3,
  );
}

Deno.test(
  "llama: an adapted projection equals x·Wᵀ + s·x·Aᵀ·Bᵀ; merging gives the adapted logits",
  gpuTest,
  async () => {
    const model = await load("llama");
    try {
      const lora = applyLora(
        model,
        { r: 4, lora_alpha: 12, target_modules: "all-linear", use_rslora: true },
        { seed: 5 },
      );
      randomizeB(lora, 10);
      for (const l of lora.adapter().layers.values()) assert.equal(l.scaling, 12 / 2);
      await checkModule(model, lora.adapter().layers.get("model.layers.0.self_attn.k_proj")!, "out_in", 1);
      await checkModule(model, lora.adapter().layers.get("model.layers.1.mlp.down_proj")!, "out_in", 2);
      const adapted = await logits(model);
      const base = await withAdaptersDisabled(model, () => logits(model));
      assert.ok(maxAbsDiff(adapted, base) > 1e-2, "the adapter changes the logits");
      // merged weights: W + s·B·A
      const l = lora.adapter().layers.get("model.layers.0.mlp.up_proj")!;
      const wBefore = await model.param(`${l.module}.weight`).toArray();
      const [A, B] = [await l.A.toArray(), await l.B.toArray()];
      mergeAdapter(model);
      assert.equal(loraOf(model), null, "merging the only adapter removes LoRA");
      assert.deepEqual([model.linearHooks.base, model.linearHooks.adapter], [null, null]);
      assertClose(
        await model.param(`${l.module}.weight`).toArray(),
        mergedWeightRef(wBefore, 128, 64, A, 4, B, 6, "out_in"),
        { atol: 1e-5, rtol: 1e-5 },
        "merged up_proj",
      );
      const merged = await logits(model);
      assertClose(merged, adapted, { atol: 1e-4, rtol: 1e-4 }, "merged vs adapted logits");
      // saveModel writes the merged full model, which loads back with the same logits
      const dir = await tempDir();
      await saveModel(model, dir);
      const back = await loadModel(dir);
      try {
        assertClose(await logits(back), merged, { atol: 1e-6, rtol: 0 }, "reloaded merged model");
      } finally {
        back.dispose();
        await Deno.remove(dir, { recursive: true });
      }
    } finally {
      dispose(model);
    }
  },
);

Deno.test(
  "gpt2 Conv1D: A [r, in], B [out, r] as PEFT; forward and merge respect the [in, out] weights",
  gpuTest,
  async () => {
    const model = await load("gpt2");
    try {
      const lora = applyLora(model, { r: 8, lora_alpha: 16, target_modules: ["c_attn", "c_fc", "c_proj"] }, {
        seed: 3,
      });
      const c = lora.adapter().layers.get("transformer.h.0.attn.c_attn")!;
      assert.deepEqual([c.A.shape, c.B.shape], [[8, 64], [192, 8]]);
      const fc = lora.adapter().layers.get("transformer.h.1.mlp.c_proj")!;
      assert.deepEqual([fc.A.shape, fc.B.shape], [[8, 256], [64, 8]]);
      const A0 = await fc.A.toArray();
      assert.ok(A0.every((x) => Math.abs(x) <= 1 / 16), "bound 1/√256");
      randomizeB(lora, 20);
      await checkModule(model, c, "in_out", 3);
      await checkModule(model, fc, "in_out", 4);
      const adapted = await logits(model);
      const w = await model.param(`${c.module}.weight`).toArray();
      const [A, B] = [await c.A.toArray(), await c.B.toArray()];
      mergeAdapter(model, "default");
      assertClose(
        await model.param(`${c.module}.weight`).toArray(),
        mergedWeightRef(w, 192, 64, A, 8, B, 2, "in_out"),
        { atol: 1e-5, rtol: 1e-5 },
        "merged c_attn [in, out]",
      );
      assertClose(await logits(model), adapted, { atol: 1e-4, rtol: 1e-4 }, "merged vs adapted logits");
    } finally {
      dispose(model);
    }
  },
);

// ---------------------------------------------------------------------------------------------------------------
Deno.test(
  "llama end to end: the loss gradient reaches only A and B, and matches finite differences",
  gpuTest,
  async () => {
    const model = await load("llama");
    try {
      const lora = applyLora(model, { r: 4, lora_alpha: 8, target_modules: "all-linear" }, { seed: 9 });
      randomizeB(lora, 30, 0.1);
      const V = model.config.vocabSize;
      const R = randomArray(IDS.length * IDS[0].length * V, 77, 0.5, 1.5);
      const loss = (): Tensor => sum(mul(model.forward(IDS), tensor(R, [IDS.length, IDS[0].length, V])));
      await scope(() => loss().backward());
      for (const [n, t] of model.namedParameters()) {
        assert.equal(
          t.grad,
          null,
          `base parameter ${n} got a gradient`,
        );
      }
      for (const t of lora.trainableParameters()) assert.ok(t.grad, `${t.name} got no gradient`);
      // directional derivatives of two A's and two B's vs central differences (f32 forward: eps 1e-2, rtol 3e-2)
      const ad = lora.adapter();
      const picks = [
        ad.layers.get("model.layers.0.self_attn.q_proj")!.A,
        ad.layers.get("model.layers.1.mlp.down_proj")!.A,
        ad.layers.get("model.layers.0.self_attn.v_proj")!.B,
        ad.layers.get("model.layers.1.mlp.gate_proj")!.B,
      ];
      const lossValue = () => scope(() => noGrad(() => loss().item()));
      for (const [i, t] of picks.entries()) {
        const g = await t.grad!.toArray();
        const x0 = await t.toArray();
        const v = randomArray(t.size, 500 + i, -1, 1);
        const eps = 1e-2;
        fill(t, x0.map((x, k) => x + eps * v[k]));
        const plus = await lossValue();
        fill(t, x0.map((x, k) => x - eps * v[k]));
        const minus = await lossValue();
        fill(t, x0);
        const numeric = (plus - minus) / (2 * eps);
        const analytic = g.reduce((s, x, k) => s + x * v[k], 0);
        assert.ok(
          Math.abs(numeric - analytic) <= 1e-2 + 3e-2 * Math.max(Math.abs(numeric), Math.abs(analytic)),
          `${t.name}: analytic ${analytic} vs numeric ${numeric}`,
        );
        assert.ok(Math.abs(analytic) > 1e-3, `${t.name}: a non-trivial direction`);
      }
    } finally {
      dispose(model);
    }
  },
);

Deno.test(
  "gradient checkpointing: the same A/B gradients; dropout with checkpointing is refused",
  gpuTest,
  async () => {
    const model = await load("llama");
    try {
      const lora = applyLora(model, { r: 4, target_modules: "all-linear", modules_to_save: ["lm_head"] }, {
        seed: 2,
      });
      randomizeB(lora, 90, 0.1);
      const R = randomArray(IDS.length * IDS[0].length * 320, 91, 0.5, 1.5);
      const grads = async (ckpt: boolean) => {
        model.gradientCheckpointing = ckpt;
        await scope(() => sum(mul(model.forward(IDS), tensor(R, [2, 8, 320]))).backward());
        const out: Float32Array[] = [];
        for (const t of lora.trainableParameters()) {
          out.push(await t.grad!.toArray());
          t.grad!.dispose();
          t.grad = null;
        }
        for (const [n, t] of model.namedParameters()) {
          if (t !== lora.adapter().saved.get("lm_head.weight")) assert.equal(t.grad, null, n);
        }
        return out;
      };
      const plain = await grads(false);
      const ckpt = await grads(true);
      assert.equal(plain.length, 29);
      plain.forEach((g, i) => assertClose(ckpt[i], g, { atol: 1e-5, rtol: 1e-4 }, `gradient ${i}`));
      lora.addAdapter("drop", { r: 2, lora_dropout: 0.1 });
      lora.setAdapter("drop");
      model.train();
      assert.throws(() => logits(model), /lora_dropout 0.1.*gradient checkpointing/);
      lora.dropoutEnabled = false;
      await logits(model);
    } finally {
      model.gradientCheckpointing = false;
      dispose(model);
    }
  },
);

Deno.test(
  "memory: LoRA r=8 on all linear layers vs full fine-tuning (gradients + AdamW state)",
  gpuTest,
  async () => {
    await setup();
    const V = 320;
    const R = randomArray(IDS.length * IDS[0].length * V, 78, 0.5, 1.5);
    const measure = async (useLora: boolean) => {
      const model = await load("llama");
      try {
        if (useLora) applyLora(model, { r: 8, lora_alpha: 16, target_modules: "all-linear" });
        const params = trainableParametersOf(model);
        const start = memoryStats().liveBytes;
        await scope(() => sum(mul(model.forward(IDS), tensor(R, [2, 8, V]))).backward());
        const afterBackward = memoryStats().liveBytes;
        const opt = new AdamW(params, { lr: 1e-3 });
        opt.step();
        const afterStep = memoryStats().liveBytes;
        for (const [n, t] of model.namedParameters()) {
          if (useLora) assert.equal(t.grad, null, n);
          else assert.ok(t.grad, n);
        }
        const trainableBytes = params.reduce((s, t) => s + t.bytes, 0);
        for (const t of params) {
          t.grad?.dispose();
          t.grad = null;
        }
        return { grads: afterBackward - start, state: afterStep - afterBackward, trainableBytes };
      } finally {
        dispose(model);
      }
    };
    const full = await measure(false);
    const lora = await measure(true);
    console.log(
      `llama fixture: trainable ${full.trainableBytes} B (full) vs ${lora.trainableBytes} B (LoRA r=8 all-linear); ` +
        `gradient buffers ${full.grads} vs ${lora.grads} B; AdamW state ${full.state} vs ${lora.state} B`,
    );
    assert.equal(full.trainableBytes, 4 * 115008);
    assert.equal(lora.trainableBytes, 4 * 2 * (8 * 64 * 6 + 8 * 128 + 64 * 8 * 3 + 32 * 8 * 2 + 128 * 8 * 2));
    // pooled size classes add ≤ 25% slack to each buffer
    assert.ok(
      full.grads >= full.trainableBytes && full.grads <= 1.25 * full.trainableBytes,
      `full grads ${full.grads}`,
    );
    assert.ok(
      lora.grads >= lora.trainableBytes && lora.grads <= 1.25 * lora.trainableBytes,
      `LoRA grads ${lora.grads}`,
    );
    assert.ok(lora.state <= 2.5 * lora.trainableBytes && full.state >= 2 * full.trainableBytes);
    assert.ok(lora.grads + lora.state < 0.2 * (full.grads + full.state));
  },
);

// ---------------------------------------------------------------------------------------------------------------
Deno.test(
  "disabled adapters give the base logits exactly; setAdapter / withAdapter switch between adapters",
  gpuTest,
  async () => {
    const model = await load("llama");
    try {
      const base = await logits(model);
      const lora = applyLora(model, { r: 4, target_modules: ["q_proj", "o_proj"] }, {
        seed: 1,
        adapterName: "a",
      });
      randomizeB(lora, 40, 0.2, "a");
      lora.addAdapter("b", { r: 2, lora_alpha: 4, target_modules: "all-linear" }, { seed: 2 });
      randomizeB(lora, 50, 0.2, "b");
      assert.equal(lora.activeAdapter, "a");
      const la = await logits(model);
      setAdapter(model, "b");
      const lb = await logits(model);
      assert.ok(maxAbsDiff(la, base) > 1e-2 && maxAbsDiff(lb, base) > 1e-2 && maxAbsDiff(la, lb) > 1e-2);
      assert.deepEqual(
        lora.trainableParameters().map((t) => t.name!.split(".").slice(-2)[0]),
        new Array(14).fill(["b", "b"]).flat(),
      );
      lora.disableAdapters();
      assert.deepEqual(await logits(model), base, "disabled: the bare base, bit for bit");
      lora.enableAdapters();
      assert.deepEqual(await logits(model), lb);
      // scoped forms restore the previous state, also for async functions and on errors
      assert.deepEqual(await withAdaptersDisabled(model, () => logits(model)), base);
      assert.deepEqual(await withAdapter(model, "a", () => logits(model)), la);
      assert.equal(lora.activeAdapter, "b");
      assert.throws(() =>
        withAdaptersDisabled(model, () => {
          throw new Error("boom");
        }), /boom/);
      assert.equal(lora.enabled, true);
      assert.deepEqual(await logits(model), lb);
      assert.throws(() => setAdapter(model, "c"), /no adapter named "c" \(adapters: a, b\)/);
      lora.deleteAdapter("b");
      assert.equal(lora.activeAdapter, "a");
      assert.deepEqual(await logits(model), la);
    } finally {
      dispose(model);
    }
  },
);

// ---------------------------------------------------------------------------------------------------------------
Deno.test(
  "PEFT folder: adapter_config.json and tensor names as PEFT writes them; round trip gives the same logits",
  gpuTest,
  async () => {
    const dir = await tempDir();
    const model = await load("llama");
    const fresh = await load("llama");
    try {
      const lora = applyLora(model, {
        r: 4,
        lora_alpha: 16,
        lora_dropout: 0.1,
        target_modules: ["v_proj", "q_proj", "down_proj"],
        modules_to_save: ["lm_head"],
      }, { seed: 4 });
      randomizeB(lora, 60);
      const head = lora.adapter().saved.get("lm_head.weight")!;
      fill(head, (await head.toArray()).map((x, i) => x + 0.05 * Math.sin(i)));
      const adapted = await logits(model);
      await saveAdapter(model, dir);
      const cfg = JSON.parse(await Deno.readTextFile(`${dir}/${ADAPTER_CONFIG}`));
      assert.deepEqual(Object.keys(cfg).sort(), [
        "alpha_pattern",
        "auto_mapping",
        "base_model_name_or_path",
        "bias",
        "exclude_modules",
        "fan_in_fan_out",
        "inference_mode",
        "init_lora_weights",
        "layer_replication",
        "layers_pattern",
        "layers_to_transform",
        "loftq_config",
        "lora_alpha",
        "lora_bias",
        "lora_dropout",
        "megatron_config",
        "megatron_core",
        "modules_to_save",
        "peft_type",
        "r",
        "rank_pattern",
        "revision",
        "target_modules",
        "task_type",
        "use_dora",
        "use_rslora",
      ]);
      assert.equal(cfg.peft_type, "LORA");
      assert.equal(cfg.task_type, "CAUSAL_LM");
      assert.equal(cfg.r, 4);
      assert.equal(cfg.lora_alpha, 16);
      assert.equal(cfg.lora_dropout, 0.1);
      assert.deepEqual(cfg.target_modules, ["down_proj", "q_proj", "v_proj"]);
      assert.deepEqual(cfg.modules_to_save, ["lm_head"]);
      assert.equal(cfg.bias, "none");
      assert.equal(cfg.use_rslora, false);
      assert.equal(cfg.fan_in_fan_out, false);
      assert.equal(cfg.inference_mode, true);
      assert.equal(cfg.base_model_name_or_path, `${FIX}llama`.replace(/\/+$/, ""));
      const header = await readSafetensorsHeader(`${dir}/${ADAPTER_WEIGHTS}`);
      assert.equal(header.metadata.format, "pt");
      const shapes = Object.fromEntries(header.tensors.map((t) => [t.name, t.shape]));
      const want: Record<string, number[]> = { "base_model.model.lm_head.weight": [320, 64] };
      for (const l of [0, 1]) {
        const p = `base_model.model.model.layers.${l}`;
        Object.assign(want, {
          [`${p}.self_attn.q_proj.lora_A.weight`]: [4, 64],
          [`${p}.self_attn.q_proj.lora_B.weight`]: [64, 4],
          [`${p}.self_attn.v_proj.lora_A.weight`]: [4, 64],
          [`${p}.self_attn.v_proj.lora_B.weight`]: [32, 4],
          [`${p}.mlp.down_proj.lora_A.weight`]: [4, 128],
          [`${p}.mlp.down_proj.lora_B.weight`]: [64, 4],
        });
      }
      assert.deepEqual(shapes, want);
      assert.ok(header.tensors.every((t) => t.dtype === "F32"));
      const stored = await readSafetensors(`${dir}/${ADAPTER_WEIGHTS}`);
      const q1 = lora.adapter().layers.get("model.layers.1.self_attn.q_proj")!;
      assert.deepEqual(
        stored.get("base_model.model.model.layers.1.self_attn.q_proj.lora_B.weight")!.data,
        await q1.B.toArray(),
      );
      // load into a fresh model: the same logits; frozen unless isTrainable
      const before = await logits(fresh);
      const l2 = await loadAdapter(fresh, dir);
      assert.equal(l2.activeAdapter, "default");
      assert.deepEqual(await logits(fresh), adapted);
      assert.deepEqual(await withAdaptersDisabled(fresh, () => logits(fresh)), before);
      assert.equal(
        l2.trainableParameters().length,
        0,
        "a loaded adapter is frozen by default (PEFT's is_trainable)",
      );
      await loadAdapter(fresh, dir, "train", { isTrainable: true, activate: true });
      assert.equal(l2.activeAdapter, "train");
      assert.equal(l2.trainableParameters().length, 13, "6 A/B pairs + the lm_head copy");
      assert.deepEqual(await logits(fresh), adapted);
      // the adapter config's base_model_name_or_path round-trips
      await saveAdapter(fresh, `${dir}/again`, "train");
      assert.equal(JSON.parse(await Deno.readTextFile(`${dir}/again/${ADAPTER_CONFIG}`)).lora_dropout, 0.1);
    } finally {
      dispose(model);
      dispose(fresh);
      await Deno.remove(dir, { recursive: true });
    }
  },
);

Deno.test("PEFT folder for gpt2: fan_in_fan_out true, Conv1D names, round trip", gpuTest, async () => {
  const dir = await tempDir();
  const model = await load("gpt2");
  const fresh = await load("gpt2");
  try {
    const lora = applyLora(model, { r: 2, lora_alpha: 4, target_modules: ["c_attn", "c_proj"] }, { seed: 8 });
    randomizeB(lora, 70);
    const adapted = await logits(model);
    await saveAdapter(lora, dir, "default", { dtype: "F32" });
    const cfg = JSON.parse(await Deno.readTextFile(`${dir}/${ADAPTER_CONFIG}`));
    assert.equal(cfg.fan_in_fan_out, true);
    assert.deepEqual(cfg.target_modules, ["c_attn", "c_proj"]);
    const header = await readSafetensorsHeader(`${dir}/${ADAPTER_WEIGHTS}`);
    const names = header.tensors.map((t) => t.name);
    assert.equal(names.length, 2 * 3 * 2);
    assert.ok(names.includes("base_model.model.transformer.h.1.mlp.c_proj.lora_A.weight"));
    assert.deepEqual(header.byName.get("base_model.model.transformer.h.1.mlp.c_proj.lora_A.weight")!.shape, [
      2,
      256,
    ]);
    assert.deepEqual(header.byName.get("base_model.model.transformer.h.0.attn.c_attn.lora_B.weight")!.shape, [
      192,
      2,
    ]);
    await loadAdapter(fresh, dir);
    assert.deepEqual(await logits(fresh), adapted);
    // the tied lm_head cannot be a module to save on its own
    assert.throws(() => lora.addAdapter("head", { modules_to_save: ["lm_head"] }), /tied.*wte/);
  } finally {
    dispose(model);
    dispose(fresh);
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test(
  "loadAdapter: errors name the tensor and the file, and leave the model as it was",
  gpuTest,
  async () => {
    const dir = await tempDir();
    const model = await load("llama");
    const target = await load("llama");
    try {
      const lora = applyLora(model, { r: 4, target_modules: ["q_proj"] });
      await saveAdapter(model, dir);
      const file = `${dir}/${ADAPTER_WEIGHTS}`;
      const good = await readSafetensors(file);
      const write = (entries: [string, { shape: number[]; data: Float32Array }][]) =>
        writeSafetensors(file, entries.map(([name, t]) => ({ name, shape: t.shape, data: t.data })));
      const entries = [...good].map(([n, t]) =>
        [n, { shape: t.shape, data: t.data }] as [string, { shape: number[]; data: Float32Array }]
      );
      const bad = "base_model.model.model.layers.1.self_attn.q_proj.lora_B.weight";
      const check = async (re: RegExp) => {
        await assert.rejects(loadAdapter(target, dir), re);
        assert.equal(loraOf(target), null);
        assert.deepEqual([target.linearHooks.base, target.linearHooks.adapter], [null, null]);
        assert.ok(target.namedParameters().every(([, t]) => t.requiresGrad));
      };
      await write(
        entries.map(([n, t]) => [n, n === bad ? { shape: [64, 2], data: t.data.slice(0, 128) } : t]),
      );
      await check(
        new RegExp(`${file}: tensor "${bad.replace(/\./g, "\\.")}" has shape \\[64,2\\], .* need \\[64,4\\]`),
      );
      await write(entries.filter(([n]) => n !== bad));
      await check(new RegExp(`${file}: missing tensor "${bad.replace(/\./g, "\\.")}"`));
      await write([...entries, [
        "base_model.model.model.layers.0.self_attn.k_proj.lora_A.weight",
        entries[0][1],
      ]]);
      await check(
        /unexpected tensor "base_model\.model\.model\.layers\.0\.self_attn\.k_proj\.lora_A\.weight"/,
      );
      await write(entries);
      const cfgPath = `${dir}/${ADAPTER_CONFIG}`;
      const cfg = JSON.parse(await Deno.readTextFile(cfgPath));
      await Deno.writeTextFile(cfgPath, JSON.stringify({ ...cfg, use_dora: true }));
      await check(new RegExp(`${cfgPath}: "use_dora" is set to true`));
      await Deno.writeTextFile(cfgPath, JSON.stringify({ ...cfg, target_modules: ["c_attn"] }));
      await check(new RegExp(`${cfgPath}: target_modules: "c_attn" matches no module`));
      await Deno.writeTextFile(cfgPath, "{not json");
      await check(/not valid JSON/);
      await Deno.remove(cfgPath);
      await check(/adapter_config\.json: missing/);
      // on a model that has adapters already, a failed load removes only what it added
      await Deno.writeTextFile(cfgPath, JSON.stringify(cfg));
      await write(entries.filter(([n]) => n !== bad));
      await assert.rejects(loadAdapter(model, dir, "second"), /missing tensor/);
      assert.deepEqual([...lora.adapters.keys()], ["default"]);
      await assert.rejects(loadAdapter(model, dir, "default"), /already exists/);
    } finally {
      dispose(model);
      dispose(target);
      await Deno.remove(dir, { recursive: true });
    }
  },
);

Deno.test(
  "loadAdapter checks every tensor's shape and dtype against the model before it allocates anything",
  gpuTest,
  async () => {
    const dir = await tempDir();
    const model = await load("llama");
    const target = await load("llama");
    try {
      applyLora(model, { r: 4, target_modules: ["q_proj"] });
      await saveAdapter(model, dir);
      const cfgPath = `${dir}/${ADAPTER_CONFIG}`;
      const file = `${dir}/${ADAPTER_WEIGHTS}`;
      const cfg = JSON.parse(await Deno.readTextFile(cfgPath));
      const weights = await Deno.readFile(file);
      /** loadAdapter fails with `re`, allocating nothing on the way, and leaves the model as it was. */
      const refused = async (re: RegExp) => {
        resetPeakMemory();
        const before = memoryStats().liveBytes;
        await assert.rejects(loadAdapter(target, dir), re);
        const grew = memoryStats().peakBytes - before;
        assert.ok(grew === 0, `the refused load allocated ${grew} bytes first`);
        assert.equal(loraOf(target), null);
        assert.deepEqual([target.linearHooks.base, target.linearHooks.adapter], [null, null]);
      };
      // a config claiming a huge rank against a file of rank 4: A would be [20000, 64] and B [64, 20000] a layer
      await Deno.writeTextFile(cfgPath, JSON.stringify({ ...cfg, r: 20_000 }));
      await refused(
        new RegExp(
          `${file}: tensor "base_model\\.model\\.model\\.layers\\.0\\.self_attn\\.q_proj\\.lora_A\\.weight" ` +
            `has shape \\[4,64\\], .* need \\[20000,64\\]`,
        ),
      );
      // a tensor of the right shape in a dtype webdpo cannot load (F32 relabelled I32: the same byte size)
      await Deno.writeTextFile(cfgPath, JSON.stringify(cfg));
      const header = new TextDecoder().decode(
        weights.subarray(8, 8 + Number(new DataView(weights.buffer).getBigUint64(0, true))),
      );
      const at = header.indexOf('"F32"');
      assert.ok(at >= 0);
      const relabelled = weights.slice();
      relabelled.set(new TextEncoder().encode('"I32"'), 8 + at);
      await Deno.writeFile(file, relabelled);
      await refused(new RegExp(`${file}: tensor ".*" has dtype I32; .*F32, F16 (or|and) BF16`));
      // and the good folder loads
      await Deno.writeFile(file, weights);
      await loadAdapter(target, dir);
      assert.ok(loraOf(target));
    } finally {
      dispose(model);
      dispose(target);
      await Deno.remove(dir, { recursive: true });
    }
  },
);

// ---------------------------------------------------------------------------------------------------------------
Deno.test(
  "modules_to_save: the adapter's own lm_head copy is trained, disabled adapters use the original",
  gpuTest,
  async () => {
    const model = await load("llama");
    try {
      const original = model.param("lm_head.weight");
      const base = await logits(model);
      const lora = applyLora(model, { r: 2, target_modules: ["q_proj"], modules_to_save: ["lm_head"] });
      const copy = lora.adapter().saved.get("lm_head.weight")!;
      assert.notEqual(copy, original);
      assert.equal(model.param("lm_head.weight"), copy, "the active adapter's copy is the model's parameter");
      assert.deepEqual(await copy.toArray(), await original.toArray());
      assert.equal(copy.requiresGrad, true);
      assert.equal(original.requiresGrad, false);
      assert.ok(lora.trainableParameters().includes(copy));
      assert.equal(
        lora.namedTrainableParameters().at(-1)![0],
        "base_model.model.lm_head.modules_to_save.default.weight",
      );
      assert.deepEqual(await logits(model), base);
      await scope(() => sum(model.forward(IDS)).backward());
      assert.ok(copy.grad, "the copy gets a gradient");
      assert.equal(original.grad, null);
      fill(copy, (await copy.toArray()).map((x, i) => x * (1 + 0.1 * Math.cos(i))));
      assert.ok(maxAbsDiff(await logits(model), base) > 1e-3);
      await withAdaptersDisabled(model, async () => {
        assert.equal(model.param("lm_head.weight"), original);
        assert.deepEqual(await logits(model), base);
      });
      assert.equal(model.param("lm_head.weight"), copy);
      assert.throws(
        () => lora.addAdapter("x", { modules_to_save: ["nothing_here"] }),
        /"nothing_here" matches no module/,
      );
      assert.throws(
        () => lora.addAdapter("x", { target_modules: ["q_proj"], modules_to_save: ["q_proj"] }),
        /also a LoRA target/,
      );
      unloadLora(model);
      assert.equal(model.param("lm_head.weight"), original);
      assert.equal(original.requiresGrad, true);
    } finally {
      dispose(model);
    }
  },
);

// ---------------------------------------------------------------------------------------------------------------
Deno.test(
  "lora dropout: the documented hash mask, 1/(1−p) scaling, the same mask backward, train mode only",
  gpuTest,
  async () => {
    await setup();
    const n = 10007, p = 0.3, seed = 123456789;
    const x = randomArray(n, 1, 0.5, 1.5);
    const dy = randomArray(n, 2, -1, 1);
    const [y, dx] = await scope(async () => {
      const xt = tensor(x, [n], { requiresGrad: true });
      const out = loraDropout(xt, p, seed);
      out.backward(tensor(dy));
      return [await out.toArray(), await xt.grad!.toArray()];
    });
    const keep = dropoutKeepRef(n, seed, p);
    const kept = keep.reduce((s, k) => s + k, 0);
    assert.ok(Math.abs(kept / n - (1 - p)) < 0.02, `kept fraction ${kept / n}`);
    assertClose(
      y,
      Array.from(x, (v, i) => (keep[i] ? v / (1 - p) : 0)),
      { atol: 1e-6, rtol: 1e-6 },
      "forward",
    );
    assertClose(
      dx,
      Array.from(dy, (v, i) => (keep[i] ? v / (1 - p) : 0)),
      { atol: 1e-6, rtol: 1e-6 },
      "backward",
    );
    assert.throws(() => loraDropout(tensor([1]), 1, 0), /\[0, 1\)/);

    const model = await load("llama");
    try {
      const lora = applyLora(model, { r: 4, lora_dropout: 0.5, target_modules: ["q_proj", "up_proj"] }, {
        seed: 1,
      });
      randomizeB(lora, 80);
      const evalLogits = await logits(model);
      assert.deepEqual(await logits(model), evalLogits, "eval mode: no dropout");
      model.train();
      const t1 = await logits(model);
      const t2 = await logits(model);
      assert.ok(maxAbsDiff(t1, evalLogits) > 1e-3 && maxAbsDiff(t1, t2) > 1e-3, "train mode: fresh masks");
      lora.dropoutEnabled = false; // TRL's disable_dropout
      assert.deepEqual(await logits(model), evalLogits);
      // the seeded generator makes train-mode forwards reproducible from the adapter's seed
      const again = await load("llama");
      try {
        const l2 = applyLora(again, { r: 4, lora_dropout: 0.5, target_modules: ["q_proj", "up_proj"] }, {
          seed: 1,
        });
        randomizeB(l2, 80);
        again.train();
        assert.deepEqual(await logits(again), t1);
      } finally {
        dispose(again);
      }
    } finally {
      dispose(model);
    }
  },
);

// ---------------------------------------------------------------------------------------------------------------
Deno.test(
  "the three reference options' building blocks give the explicit two-model references exactly",
  gpuTest,
  async () => {
    const dir = await tempDir();
    const policy = await load("llama");
    const explicitBase = await load("llama", false);
    const explicitAdapted = await load("llama", false);
    try {
      // an "SFT" adapter on disk
      const sft = applyLora(await load("llama"), { r: 4, lora_alpha: 8, target_modules: "all-linear" }, {
        seed: 6,
      });
      randomizeB(sft, 100, 0.1);
      await saveAdapter(sft, dir);
      dispose(sft.model);
      // the explicit setups: (1) a second instance with the adapter, (2) the bare base
      await loadAdapter(explicitAdapted, dir);
      const ref1 = await logits(explicitAdapted);
      const ref0 = await logits(explicitBase);
      // the policy: the adapter loaded trainable as "train", and once more frozen as "reference"
      const lora = await loadAdapter(policy, dir, "train", { isTrainable: true });
      await loadAdapter(policy, dir, "reference");
      policy.train();
      const pol = await logits(policy);
      assert.deepEqual(pol, ref1, "policy = adapted model");
      // option 2: no ref model with a PEFT model → the same model with adapters disabled
      assert.deepEqual(await withAdaptersDisabled(policy, () => logits(policy)), ref0);
      // option 3: ref_adapter_name → the same model with the reference adapter active
      assert.deepEqual(await withAdapter(policy, "reference", () => logits(policy)), ref1);
      // the policy state is back; only "train" is trainable
      assert.equal(lora.activeAdapter, "train");
      assert.deepEqual(await logits(policy), pol);
      assert.ok(lora.trainableParameters().every((t) => t.name!.includes(".train.")));
      assert.equal(lora.trainableParameters().length, 28);
    } finally {
      dispose(policy);
      dispose(explicitBase);
      dispose(explicitAdapted);
      await Deno.remove(dir, { recursive: true });
    }
  },
);
