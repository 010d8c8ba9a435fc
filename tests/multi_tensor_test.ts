/**
 * The optimizer's multi-tensor dispatches (src/optim/multi_tensor.ts, kernels/adamw_multi.wgsl,
 * kernels/grad_norm_multi.wgsl) against its one-tensor-a-dispatch path: the same bits for parameters, moments and
 * norms on awkward sizes, two parameter groups, a skipped gradient (step counts that differ), ranges of parameters
 * split over bindings and views sharing one buffer; and the number of dispatches the plan says.
 */
import assert from "node:assert/strict";
import { tensor } from "../src/tensor/create.ts";
import { type Tensor, view } from "../src/tensor/tensor.ts";
import { AdamW, weightDecayGroups } from "../src/optim/adamw.ts";
import { gradNorm } from "../src/optim/grad_norm.ts";
import { multiTensor, runs, setMultiTensor, slotTable } from "../src/optim/multi_tensor.ts";
import { rangeElements } from "../src/gpu/binding.ts";
import { cpuKernels, gpu, setCpuKernels } from "../src/gpu/device.ts";
import { dispatchCounter } from "../src/gpu/queue.ts";
import { gpuTest, randomArray, setup } from "./util.ts";

const SIZES = [
  1,
  7,
  255,
  256,
  257,
  4095,
  4096,
  4097,
  70001,
  3,
  12289,
  1000,
  33,
  64,
  65,
  8191,
  100000,
  5,
  2,
  9,
  6,
];

async function bits(t: Tensor): Promise<Uint32Array> {
  return new Uint32Array((await t.toArray()).buffer);
}

interface Run {
  params: Uint32Array[];
  moments: Uint32Array[];
  steps: number[];
  norms: Uint32Array[];
  dispatches: number[];
}

/** Four steps of two groups of parameters (clipping on, off, and parameter 4 without a gradient at step 2). */
async function train(multi: boolean, maxBindingBytes?: number): Promise<Run> {
  setMultiTensor(multi);
  try {
    const named = SIZES.map((n, k) => {
      const t = tensor(randomArray(n, 40 + k), [n], { requiresGrad: true });
      return [k % 3 === 0 ? `layers.${k}.norm.weight` : `layers.${k}.proj.weight`, t] as const;
    });
    const opt = new AdamW(weightDecayGroups(named, 0.1), { lr: 1e-2, maxBindingBytes });
    const out: Run = { params: [], moments: [], steps: [], norms: [], dispatches: [] };
    for (let step = 1; step <= 4; step++) {
      for (const [k, [, p]] of named.entries()) {
        if (step === 2 && k === 4) continue;
        p.grad = tensor(randomArray(p.size, 1000 * step + k, -(k + 1), k + 1), p.shape);
      }
      const d0 = dispatchCounter();
      const norm = opt.clipAndStep(step === 3 ? 0 : 5);
      out.dispatches.push(dispatchCounter() - d0);
      out.norms.push(await bits(norm));
      out.norms.push(await bits(gradNorm(named.map(([, p]) => p), { maxBindingBytes })));
      opt.zeroGrad();
    }
    for (const [, p] of named) out.params.push(await bits(p));
    for (const e of opt.state().params) {
      out.steps.push(e.step);
      out.moments.push(await bits(e.expAvg), await bits(e.expAvgSq));
    }
    opt.dispose();
    for (const [, p] of named) p.dispose();
    return out;
  } finally {
    setMultiTensor(null);
  }
}

Deno.test(
  "multi-tensor AdamW and gradient norm: the same bits as one dispatch per tensor, in far fewer dispatches",
  gpuTest,
  async () => {
    await setup();
    const bindings = gpu().info.limits.maxStorageBuffersPerShaderStage;
    assert.equal(
      multiTensor(),
      !cpuKernels() && bindings >= 25,
      "the default: GPUs with 25 storage bindings",
    );
    setCpuKernels(false);
    assert.equal(multiTensor(), bindings >= 25, "a GPU adapter's choice (lavapipe offers 32 bindings)");
    setCpuKernels(null);
    for (const maxBindingBytes of [undefined, 1024, 32768 + 100]) {
      const one = await train(false, maxBindingBytes);
      const multi = await train(true, maxBindingBytes);
      const what = `maxBindingBytes ${maxBindingBytes}`;
      assert.deepEqual(multi.params, one.params, `${what}: parameters`);
      assert.deepEqual(multi.moments, one.moments, `${what}: exp_avg, exp_avg_sq`);
      assert.deepEqual(multi.norms, one.norms, `${what}: norms`);
      assert.deepEqual(multi.steps, one.steps, `${what}: step counts`);
      // state() lists the decay group (k % 3 ≠ 0) first, then the no-decay group
      const order = [...SIZES.keys()].filter((k) => k % 3 !== 0).concat(
        [...SIZES.keys()].filter((k) => k % 3 === 0),
      );
      assert.deepEqual(one.steps, order.map((k) => k === 4 ? 3 : 4));
      // one dispatch per piece (a parameter, or a binding-sized range of one) for AdamW and for the norm, + finish;
      // step 3 (no clipping) also fills the optimizer's unit gradient scale, once
      const per = rangeElements({ maxBindingBytes });
      const pieces = (skip: boolean) =>
        SIZES.reduce((s, n, k) => s + (skip && k === 4 ? 0 : Math.ceil(n / per)), 0);
      assert.deepEqual(one.dispatches, [1, 2, 3, 4].map((t) => 2 * pieces(t === 2) + 1 + (t === 3 ? 1 : 0)));
      if (maxBindingBytes === undefined) {
        // 21 parameters: decay group 14 (k % 3 ≠ 0), no-decay 7. Norm: 1 partial dispatch (≤ 24 pieces) + finish.
        // AdamW: steps 1-2: 14 → 3 dispatches of ≤ 6, 7 → 2 (step 2: 13 → 3). Steps 3-4: parameter 4 (decay
        // group) is a step behind, so its group runs as 4 | 1 | 9 → 1 + 1 + 2.
        assert.deepEqual(multi.dispatches, [2 + 3 + 2, 2 + 3 + 2, 2 + 4 + 2 + 1, 2 + 4 + 2]);
      }
      for (const [i, d] of multi.dispatches.entries()) {
        assert.ok(
          d * 4 < one.dispatches[i],
          `${what}, step ${i + 1}: ${d} vs ${one.dispatches[i]} dispatches`,
        );
      }
    }
  },
);

Deno.test(
  "multi-tensor AdamW: parameters sharing one buffer go to separate dispatches (no writable aliasing), same bits",
  gpuTest,
  async () => {
    await setup();
    const run = async (multi: boolean) => {
      setMultiTensor(multi);
      try {
        const a = tensor(randomArray(300, 1), [300], { requiresGrad: true });
        const b = view(a, [10, 30]); // the same storage: each step updates it twice, as torch would
        const c = tensor(randomArray(5, 2), [5], { requiresGrad: true });
        const opt = new AdamW([a, b, c], { lr: 1e-2 });
        for (let t = 1; t <= 2; t++) {
          for (const [k, p] of [a, b, c].entries()) p.grad = tensor(randomArray(p.size, 10 * t + k), p.shape);
          opt.step();
          opt.zeroGrad();
        }
        const out = [await bits(a), await bits(c)];
        opt.dispose();
        return out;
      } finally {
        setMultiTensor(null);
      }
    };
    assert.deepEqual(await run(true), await run(false));
  },
);

Deno.test("multi-tensor planning: slot tables and runs", () => {
  assert.deepEqual(slotTable([1, 256, 257], 256, 6), {
    ends: [1, 2, 4, 4, 4, 4, 4, 4],
    ns: [1, 256, 257, 0, 0, 0, 0, 0],
    groups: 4,
  });
  assert.deepEqual(slotTable([4097, 1], 4096, 24).ends.length, 24);
  assert.throws(() => slotTable([1, 2, 3], 256, 2), /3 pieces for 2 slots/);
  const same = (a: number, b: number) => Math.sign(a) === Math.sign(b);
  assert.deepEqual(runs([1, 2, 3, 4, 5], 2, same), [[1, 2], [3, 4], [5]]);
  assert.deepEqual(runs([1, 2, -3, -4, 5], 6, same), [[1, 2], [-3, -4], [5]]);
  assert.deepEqual(runs([1, 2, 2, 3], 6, same, (run, x) => run.includes(x)), [[1, 2], [2, 3]]);
  assert.deepEqual(runs([], 6, same), []);
});
