/**
 * Fused AdamW and the global gradient norm vs float64 references (tests/reference/adamw.ts) and hand-derived
 * closed forms. Tolerances: parameters atol 1e-6 + rtol 1e-5 after up to 10 steps of lr ≤ 1e-2 (one step moves
 * a parameter by ~lr, so a wrong bias correction or eps placement is off by orders of magnitude more); moments
 * rtol 1e-5 (exp_avg also atol 1e-7: it cancels ±0.1·g terms); norms rtol 1e-5 (f32 sums of up to 70001 squares in blocks, against float64).
 */
import assert from "node:assert/strict";
import { tensor } from "../src/tensor/create.ts";
import type { Tensor } from "../src/tensor/tensor.ts";
import { AdamW, isNoDecayName, weightDecayGroups } from "../src/optim/adamw.ts";
import { clipGradNorm, gradNorm } from "../src/optim/grad_norm.ts";
import { rangeElements } from "../src/gpu/binding.ts";
import { clipCoef, globalNorm, RefAdamW } from "./reference/adamw.ts";
import { assertClose, gpuTest, randomArray, setup } from "./util.ts";

const P_TOL = { atol: 1e-6, rtol: 1e-5 };
const M_TOL = { atol: 1e-7, rtol: 1e-5 }; // m is a sum of ±0.1·g terms: absolute f32 rounding
const V_TOL = { atol: 1e-12, rtol: 1e-5 };

function param(data: ArrayLike<number>, name?: string): Tensor {
  const t = tensor(Float32Array.from(data), [data.length], { requiresGrad: true });
  if (name) t.name = name;
  return t;
}

function setGrad(p: Tensor, g: ArrayLike<number>): void {
  p.grad?.dispose();
  p.grad = tensor(Float32Array.from(g), p.shape);
}

/** Gradients for step `t` of parameter `k`: uniform in ±amp. */
function gradFor(n: number, k: number, t: number, amp = 1): Float32Array {
  return randomArray(n, 1000 * k + 17 * t + 5, -amp, amp);
}

async function bits(t: Tensor): Promise<Uint32Array> {
  return new Uint32Array((await t.toArray()).buffer);
}

async function checkAgainst(opt: AdamW, refs: RefAdamW[], what: string): Promise<void> {
  const st = opt.state();
  for (const [k, p] of opt.params.entries()) {
    const e = st.params.find((s) => s.index === k)!;
    assert.equal(e.step, refs[k].t, `${what}: step of parameter ${k}`);
    assertClose(await p.toArray(), refs[k].p, P_TOL, `${what}: param ${k} (n=${p.size})`);
    assertClose(await e.expAvg.toArray(), refs[k].m, M_TOL, `${what}: exp_avg ${k}`);
    assertClose(await e.expAvgSq.toArray(), refs[k].v, V_TOL, `${what}: exp_avg_sq ${k}`);
  }
}

Deno.test(
  "AdamW matches float64 torch AdamW over 10 steps (sizes 1, 7, 1000, 70001; with and without decay)",
  gpuTest,
  async () => {
    await setup();
    const sizes = [1, 7, 1000, 70001];
    for (const weightDecay of [0, 0.1]) {
      const init = sizes.map((n, k) => randomArray(n, 7 + k));
      const params = init.map((d) => param(d));
      const refs = init.map((d) => new RefAdamW(d));
      const opt = new AdamW(params, { lr: 1e-2, weightDecay });
      for (let t = 1; t <= 10; t++) {
        const lr = 1e-2 * (1 - t / 25); // changes every step, as under a schedule
        opt.setLr(lr);
        params.forEach((p, k) => {
          const g = gradFor(p.size, k, t);
          setGrad(p, g);
          refs[k].step(g, { lr, weightDecay });
        });
        opt.step();
        if (t === 1 || t === 10) await checkAgainst(opt, refs, `wd=${weightDecay}, step ${t}`);
      }
      opt.dispose();
    }
  },
);

Deno.test(
  "custom betas and eps, including β1 < 0.5 (torch's other lerp form), vs float64",
  gpuTest,
  async () => {
    await setup();
    for (const betas of [[0.3, 0.9], [0.5, 0.99], [0.95, 0.98]] as [number, number][]) {
      const init = randomArray(1000, 31);
      const p = param(init);
      const ref = new RefAdamW(init);
      const opt = new AdamW([p], { lr: 3e-3, betas, eps: 1e-6, weightDecay: 0.2 });
      for (let t = 1; t <= 4; t++) {
        const g = gradFor(1000, 3, t, 0.01);
        setGrad(p, g);
        ref.step(g, { lr: 3e-3, betas, eps: 1e-6, weightDecay: 0.2 });
        opt.step();
      }
      await checkAgainst(opt, [ref], `betas [${betas}]`);
      opt.dispose();
    }
  },
);

Deno.test(
  "AdamW bias correction by hand: step 1 moves by lr·g/(|g|+eps), a constant gradient the same at step 10",
  gpuTest,
  async () => {
    await setup();
    const lr = 1e-2;
    const eps = 1e-8;
    // Magnitudes from 1e-9 (below eps: the step shrinks) to 1, both signs.
    const g = Float32Array.from([1, -0.5, 0.25, 3e-3, -1e-4, 1e-6, 2e-8, -1e-8, 5e-9, 1e-9, 0.75]);
    const p0 = randomArray(g.length, 3);
    for (const wd of [0, 0.05]) {
      const p = param(p0);
      setGrad(p, g);
      const opt = new AdamW([p], { lr, weightDecay: wd });
      let want = Array.from(p0, (x) => x);
      for (let t = 1; t <= 10; t++) {
        opt.step();
        // With a constant gradient, m_t = (1 − β1^t)·g and v_t = (1 − β2^t)·g², so m̂ = g and v̂ = g² at every t.
        want = want.map((x, i) => x * (1 - lr * wd) - (lr * g[i]) / (Math.abs(g[i]) + eps));
        if (t === 1) {
          const s = opt.state().params[0];
          assertClose(await s.expAvg.toArray(), Array.from(g, (x) => 0.1 * x), M_TOL, "m1 = (1−β1)·g");
          assertClose(
            await s.expAvgSq.toArray(),
            Array.from(g, (x) => 0.001 * x * x),
            V_TOL,
            "v1 = (1−β2)·g²",
          );
          assertClose(await p.toArray(), want, P_TOL, `step 1 (wd ${wd})`);
        }
      }
      const s = opt.state().params[0];
      assertClose(await s.expAvg.toArray(), Array.from(g, (x) => (1 - 0.9 ** 10) * x), M_TOL, "m10");
      assertClose(await s.expAvgSq.toArray(), Array.from(g, (x) => (1 - 0.999 ** 10) * x * x), V_TOL, "v10");
      assertClose(await p.toArray(), want, P_TOL, `step 10 (wd ${wd})`);
      opt.dispose();
    }
  },
);

Deno.test(
  "global gradient norm vs float64 on many parameters of odd sizes; null grads skipped",
  gpuTest,
  async () => {
    await setup();
    const sizes = [1, 2, 3, 5, 7, 13, 31, 255, 256, 257, 1000, 4095, 4096, 4097, 8191, 12289, 70001];
    for (let k = 0; k < 23; k++) sizes.push(1 + ((k * 7919) % 3001));
    const params = sizes.map((n, k) => param(randomArray(n, 50 + k)));
    const grads: Float32Array[] = [];
    params.forEach((p, k) => {
      if (k % 9 === 4) return; // no gradient: skipped
      const g = gradFor(p.size, k, 1, 1 + (k % 5));
      setGrad(p, g);
      grads.push(g);
    });
    const want = globalNorm(grads);
    assertClose([await gradNorm(params).item()], [want], { atol: 0, rtol: 1e-5 }, "norm");
    const { norm, coef } = clipGradNorm(params, 1.5);
    assertClose([await norm.item()], [want], { atol: 0, rtol: 1e-5 }, "clip norm");
    assertClose([await coef.item()], [clipCoef(want, 1.5)], { atol: 0, rtol: 1e-5 }, "clip coef");
    // No gradients at all: torch returns 0, and the coefficient is 1.
    const bare = [param([1, 2, 3])];
    assert.equal(await gradNorm(bare).item(), 0);
    assert.equal(await clipGradNorm(bare, 1).coef.item(), 1);
  },
);

Deno.test(
  "clipping inactive and active: coefficient, in-place scaling, and AdamW steps with the GPU coefficient",
  gpuTest,
  async () => {
    await setup();
    const sizes = [7, 1000, 1, 70001];
    const init = sizes.map((n, k) => randomArray(n, 90 + k));
    const params = init.map((d) => param(d));
    const refs = init.map((d) => new RefAdamW(d));
    const opt = new AdamW(params, { lr: 5e-3, weightDecay: 0.01 });
    const maxNorm = 50;
    // Gradient scales chosen so the norm is below maxNorm (inactive) at steps 2 and 4, above it elsewhere; the
    // coefficient then differs step to step and shows in the parameters, not only in the moments.
    const amps = [3, 0.05, 1, 0.2, 6];
    for (let t = 1; t <= amps.length; t++) {
      const gs = params.map((p, k) => gradFor(p.size, k, t, amps[t - 1]));
      params.forEach((p, k) => setGrad(p, gs[k]));
      const want = globalNorm(gs);
      const c = clipCoef(want, maxNorm);
      assert.equal(
        c < 1,
        t !== 2 && t !== 4,
        `step ${t}: clipping should be ${t !== 2 && t !== 4 ? "" : "in"}active`,
      );
      const { norm, coef } = clipGradNorm(params, maxNorm);
      opt.step({ gradScale: coef });
      refs.forEach((r, k) => r.step(gs[k], { lr: 5e-3, weightDecay: 0.01, scale: c }));
      assertClose([await norm.item()], [want], { atol: 0, rtol: 1e-5 }, `norm at step ${t}`);
      const cg = await coef.item();
      if (c === 1) assert.equal(cg, 1, "an inactive clip multiplies by exactly 1");
      else assertClose([cg], [c], { atol: 0, rtol: 1e-5 }, `coef at step ${t}`);
    }
    await checkAgainst(opt, refs, "clipped steps");

    // In place (torch's clip_grad_norm_ proper): the gradients themselves are rescaled.
    const gs = params.map((p, k) => gradFor(p.size, k, 99, 4));
    params.forEach((p, k) => setGrad(p, gs[k]));
    const c = clipCoef(globalNorm(gs), 10);
    assert.ok(c < 0.5);
    clipGradNorm(params, 10, { inPlace: true });
    for (const [k, p] of params.entries()) {
      assertClose(
        await p.grad!.toArray(),
        Array.from(gs[k], (x) => x * c),
        { atol: 1e-7, rtol: 1e-5 },
        `scaled grad ${k}`,
      );
    }
    // clipAndStep = clip + step with the coefficient; returns the unclipped norm.
    params.forEach((p, k) => setGrad(p, gs[k]));
    const norm = opt.clipAndStep(10);
    refs.forEach((r, k) => r.step(gs[k], { lr: 5e-3, weightDecay: 0.01, scale: c }));
    assertClose([await norm.item()], [globalNorm(gs)], { atol: 0, rtol: 1e-5 }, "clipAndStep norm");
    await checkAgainst(opt, refs, "clipAndStep");
    opt.dispose();
  },
);

Deno.test(
  "parameters over the binding limit: ranged dispatches give the same bits as one dispatch",
  gpuTest,
  async () => {
    await setup();
    const n = 70001;
    const init = randomArray(n, 5);
    const gs = [1, 2, 3].map((t) => gradFor(n, 0, t, 2));
    const run = async (maxBindingBytes?: number) => {
      const p = param(init);
      const opt = new AdamW([p], { lr: 1e-2, weightDecay: 0.1, maxBindingBytes });
      const norms: number[] = [];
      for (const g of gs) {
        setGrad(p, g);
        norms.push(await opt.clipAndStep(40).item());
      }
      const s = opt.state().params[0];
      return { p: await bits(p), m: await bits(s.expAvg), v: await bits(s.expAvgSq), norms };
    };
    // 1024-byte bindings: 256 elements each (274 dispatches per step), at offsets that are multiples of 1024 bytes.
    assert.equal(rangeElements({ maxBindingBytes: 1024 }), 256);
    // 32 KiB bindings: 8192 elements, a whole number of norm blocks, so even the norm's summation order is kept.
    assert.equal(rangeElements({ maxBindingBytes: 32768 + 100 }), 8192);
    const whole = await run();
    const small = await run(1024);
    const blocks = await run(32768 + 100);
    for (const r of [small, blocks]) {
      assert.deepEqual(r.p, whole.p, "params");
      assert.deepEqual(r.m, whole.m, "exp_avg");
      assert.deepEqual(r.v, whole.v, "exp_avg_sq");
    }
    assert.deepEqual(blocks.norms, whole.norms, "norms with block-aligned ranges are bitwise equal");
    assertClose(small.norms, whole.norms, { atol: 0, rtol: 1e-6 }, "norms with 256-element ranges");
    assert.throws(() => rangeElements({ maxBindingBytes: 100 }), /minStorageBufferOffsetAlignment/);
  },
);

Deno.test("two identical runs give identical bits (norm and update)", gpuTest, async () => {
  await setup();
  const sizes = [70001, 13, 4097];
  const run = async () => {
    const params = sizes.map((n, k) => param(randomArray(n, 200 + k)));
    const opt = new AdamW(params, { lr: 1e-3, weightDecay: 0.01 });
    const norms: number[] = [];
    for (let t = 1; t <= 3; t++) {
      params.forEach((p, k) => setGrad(p, gradFor(p.size, k, t, 3)));
      norms.push(await opt.clipAndStep(1).item());
    }
    const out = { norms, p: [] as Uint32Array[] };
    for (const p of params) out.p.push(await bits(p));
    opt.dispose();
    return out;
  };
  const a = await run();
  const b = await run();
  assert.deepEqual(a.norms, b.norms);
  assert.deepEqual(a.p, b.p);
});

Deno.test(
  "zero gradients: norm 0, coefficient 1, only decay moves the parameters, no NaN",
  gpuTest,
  async () => {
    await setup();
    const init = randomArray(1000, 11);
    const p = param(init);
    setGrad(p, new Float32Array(1000));
    const opt = new AdamW([p], { lr: 1e-2, weightDecay: 0.1 });
    const { norm, coef } = clipGradNorm([p], 1);
    assert.equal(await norm.item(), 0);
    assert.equal(await coef.item(), 1);
    opt.step({ gradScale: coef });
    opt.step({ gradScale: coef });
    const s = opt.state().params[0];
    assert.ok((await s.expAvg.toArray()).every((x) => x === 0));
    assert.ok((await s.expAvgSq.toArray()).every((x) => x === 0));
    const got = await p.toArray();
    assert.ok(got.every(Number.isFinite));
    assertClose(got, Array.from(init, (x) => x * (1 - 1e-3) ** 2), { atol: 1e-7, rtol: 1e-6 }, "decay only");
  },
);

Deno.test("NaN and Inf gradients make the norm non-finite; NaN spreads as in torch", gpuTest, async () => {
  await setup();
  const n = 5000;
  const clean = randomArray(n, 12);
  const other = param(randomArray(70001, 13));
  setGrad(other, gradFor(70001, 1, 1));
  const cases: [string, number, (v: number) => boolean][] = [
    ["NaN", NaN, Number.isNaN],
    ["+Inf", Infinity, (v) => v === Infinity],
    ["-Inf", -Infinity, (v) => v === Infinity],
    ["an overflowing square", 3e20, (v) => v === Infinity],
  ];
  for (const [what, bad, check] of cases) {
    const g = clean.slice();
    g[4321] = bad;
    const p = param(randomArray(n, 14));
    setGrad(p, g);
    const norm = await gradNorm([other, p]).item();
    assert.ok(check(norm), `${what}: norm is ${norm}`);
    assert.ok(!Number.isFinite(norm));
    const { coef } = clipGradNorm([p, other], 1);
    const c = await coef.item();
    assert.ok(Number.isNaN(norm) ? Number.isNaN(c) : c === 0, `${what}: coefficient ${c}`);
  }
  // Without clipping a NaN gradient spoils only its own element (torch's elementwise update); with clipping the
  // NaN coefficient spoils every parameter, as torch's clip_grad_norm_ followed by a step does.
  const init = randomArray(n, 15);
  const g = clean.slice();
  g[77] = NaN;
  const p = param(init);
  setGrad(p, g);
  const ref = new RefAdamW(init);
  ref.step(g, { lr: 1e-3 });
  const opt = new AdamW([p], { lr: 1e-3 });
  opt.step();
  const got = await p.toArray();
  assert.ok(Number.isNaN(got[77]));
  const rest = (a: ArrayLike<number>) => Array.from(a).filter((_, i) => i !== 77);
  assertClose(rest(got), rest(ref.p), P_TOL, "elements with finite gradients");
  const q = param(init);
  setGrad(q, g);
  const opt2 = new AdamW([q], { lr: 1e-3 });
  const norm = opt2.clipAndStep(1);
  assert.ok(Number.isNaN(await norm.item()));
  assert.ok((await q.toArray()).every(Number.isNaN));
});

Deno.test(
  "state() and loadState(): a restored optimizer continues bit for bit; by name across orders",
  gpuTest,
  async () => {
    await setup();
    const names = ["model.embed_tokens.weight", "model.norm.weight", "lm_head.weight"];
    const sizes = [3001, 64, 70001];
    const a = sizes.map((n, k) => param(randomArray(n, 300 + k), names[k]));
    const optA = new AdamW(a, { lr: 2e-3, weightDecay: 0.02 });
    for (let t = 1; t <= 3; t++) {
      a.forEach((p, k) => setGrad(p, gradFor(p.size, k, t)));
      optA.step();
    }
    // A second optimizer over copies of the parameters, listed in another order; state matched by name.
    const order = [2, 0, 1];
    const b = await Promise.all(order.map(async (k) => param(await a[k].toArray(), names[k])));
    const optB = new AdamW(b, { lr: 2e-3, weightDecay: 0.02 });
    const saved = optA.state();
    assert.deepEqual(saved.params.map((e) => [e.index, e.name, e.step]), names.map((n, i) => [i, n, 3]));
    optB.loadState({ params: saved.params, groups: [] });
    for (let t = 4; t <= 5; t++) {
      a.forEach((p, k) => setGrad(p, gradFor(p.size, k, t)));
      order.forEach((k, j) => setGrad(b[j], gradFor(sizes[k], k, t)));
      optA.step();
      optB.step();
    }
    for (const [j, k] of order.entries()) {
      assert.deepEqual(await bits(b[j]), await bits(a[k]), `parameter ${names[k]}`);
    }
    assert.deepEqual(optB.state().params.map((e) => e.step), [5, 5, 5]);
    // Hyperparameters come back with the groups; shapes are checked.
    optA.setLr(7e-4);
    optB.loadState(optA.state());
    assert.equal(optB.lr, 7e-4);
    const wrong = optA.state();
    wrong.params[1] = { ...wrong.params[1], expAvg: tensor([1, 2, 3]) };
    assert.throws(
      () => optB.loadState(wrong),
      /expAvg of "model.norm.weight" must be a tensor of 64 elements/,
    );
    assert.throws(
      () => optB.loadState({ params: [], groups: [...optA.state().groups, ...optA.state().groups] }),
      /2 groups/,
    );
  },
);

Deno.test(
  "parameter groups: Hugging Face's decay / no-decay split by name, and null gradients skipped",
  gpuTest,
  async () => {
    await setup();
    for (
      const n of [
        "model.layers.0.input_layernorm.weight",
        "model.layers.3.post_attention_layernorm.weight",
        "model.norm.weight",
        "transformer.h.0.ln_1.weight",
        "transformer.ln_f.bias",
        "transformer.h.1.attn.c_attn.bias",
        "model.layers.0.self_attn.q_norm.weight",
      ]
    ) assert.ok(isNoDecayName(n), n);
    for (
      const n of [
        "model.embed_tokens.weight",
        "lm_head.weight",
        "model.layers.0.self_attn.q_proj.weight",
        "model.layers.0.mlp.down_proj.weight",
        "transformer.h.0.attn.c_attn.weight",
        "transformer.wte.weight",
        "model.normalizer.weight",
      ]
    ) assert.ok(!isNoDecayName(n), n);

    const named: [string, Tensor][] = [
      ["model.layers.0.self_attn.q_proj.weight", param(randomArray(257, 400))],
      ["model.layers.0.input_layernorm.weight", param(randomArray(7, 401))],
      ["model.layers.0.mlp.up_proj.weight", param(randomArray(1000, 402))],
      ["model.norm.weight", param(randomArray(7, 403))],
    ];
    const groups = weightDecayGroups(named, 0.3);
    assert.deepEqual(groups.map((g) => g.names), [
      ["model.layers.0.self_attn.q_proj.weight", "model.layers.0.mlp.up_proj.weight"],
      ["model.layers.0.input_layernorm.weight", "model.norm.weight"],
    ]);
    assert.deepEqual(groups.map((g) => g.weightDecay), [0.3, 0]);
    const opt = new AdamW(groups, { lr: 1e-2 });
    const order = [0, 2, 1, 3]; // parameter index → position in `named`
    const refs: RefAdamW[] = [];
    for (const j of order) refs.push(new RefAdamW(await named[j][1].toArray()));
    for (let t = 1; t <= 2; t++) {
      for (const [i, j] of order.entries()) {
        const p = named[j][1];
        if (j === 2 && t === 2) {
          p.grad?.dispose();
          p.grad = null; // skipped at step 2: no change, no step
          continue;
        }
        const g = gradFor(p.size, i, t);
        setGrad(p, g);
        refs[i].step(g, { lr: 1e-2, weightDecay: i < 2 ? 0.3 : 0 });
      }
      opt.step();
    }
    await checkAgainst(opt, refs, "groups");
    assert.deepEqual(opt.state().params.map((e) => [e.name, e.step]), [
      ["model.layers.0.self_attn.q_proj.weight", 2],
      ["model.layers.0.mlp.up_proj.weight", 1],
      ["model.layers.0.input_layernorm.weight", 2],
      ["model.norm.weight", 2],
    ]);
    opt.zeroGrad();
    assert.ok(opt.params.every((p) => p.grad === null));
  },
);

Deno.test("AdamW and clipGradNorm reject invalid arguments with a message", gpuTest, async () => {
  await setup();
  const p = param([1, 2, 3]);
  assert.throws(() => new AdamW([p], { lr: -1 }), /invalid learning rate -1/);
  assert.throws(() => new AdamW([p], { betas: [0.9, 1] }), /invalid beta parameter at index 1/);
  assert.throws(() => new AdamW([p], { eps: -1e-8 }), /invalid eps/);
  assert.throws(() => new AdamW([p], { weightDecay: -0.1 }), /invalid weightDecay/);
  assert.throws(() => new AdamW([]), /empty parameter list/);
  assert.throws(() => new AdamW([{ params: [p] }, { params: [p] }]), /more than one parameter group/);
  setGrad(p, [1, 1, 1]);
  const opt = new AdamW([p]);
  assert.throws(() => opt.step({ gradScale: tensor([1, 2]) }), /one-element f32 tensor/);
  assert.throws(() => clipGradNorm([p], 0), /maxNorm must be a finite number > 0/);
  p.grad = tensor([1, 2]);
  assert.throws(() => opt.step(), /does not match its parameter/);
  assert.throws(() => gradNorm([p]), /does not match its parameter/);
});

Deno.test(
  "a 49152×576 embedding (113 MB, one binding) and a 34M-element parameter (two bindings)",
  gpuTest,
  async () => {
    await setup();
    for (const n of [49152 * 576, 34_000_000]) {
      const init = randomArray(n, 21);
      const g = randomArray(n, 22, -2, 2);
      const p = tensor(init, [n], { requiresGrad: true });
      p.grad = tensor(g, [n]);
      const opt = new AdamW([p], { lr: 1e-2, weightDecay: 0.1 });
      const norm = opt.clipAndStep(1000);
      let ss = 0;
      for (let i = 0; i < n; i++) ss += g[i] * g[i];
      const want = Math.sqrt(ss);
      assertClose([await norm.item()], [want], { atol: 0, rtol: 1e-5 }, `norm of ${n} elements`);
      const c = clipCoef(want, 1000);
      const got = await p.toArray();
      const m = await opt.state().params[0].expAvg.toArray();
      // Every element against the step-1 closed form: p·(1 − lr·wd) − lr·ĝ/(|ĝ| + eps) with ĝ = c·g; m = 0.1·ĝ.
      let worst = 0;
      let worstM = 0;
      for (let i = 0; i < n; i++) {
        const gh = c * g[i];
        const e = init[i] * (1 - 1e-3) - (1e-2 * gh) / (Math.abs(gh) + 1e-8);
        worst = Math.max(worst, Math.abs(got[i] - e) / (1e-6 + 1e-5 * Math.abs(e)));
        worstM = Math.max(worstM, Math.abs(m[i] - 0.1 * gh) / (1e-9 + 1e-5 * Math.abs(0.1 * gh)));
      }
      assert.ok(worst <= 1, `params of ${n}: worst error ${worst} tolerances`);
      assert.ok(worstM <= 1, `exp_avg of ${n}: worst error ${worstM} tolerances`);
      opt.dispose();
      p.grad.dispose();
      p.dispose();
    }
  },
);

Deno.test("clipAndStep(0) steps without clipping and still returns the gradient norm", gpuTest, async () => {
  await setup();
  const make = () => {
    const p = tensor([1, -2, 3], [3], { requiresGrad: true });
    p.grad = tensor([30, 40, 0], [3]).keep();
    return p;
  };
  const a = make(), b = make();
  const optA = new AdamW([a], { lr: 0.1 });
  const optB = new AdamW([b], { lr: 0.1 });
  const norm = optA.clipAndStep(0);
  optB.step();
  assert.equal(await norm.item(), 50);
  assert.deepEqual(await a.toArray(), await b.toArray());
});
