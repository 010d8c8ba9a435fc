/** Shared test helpers: GPU setup, closeness checks, finite-difference gradients, packed-vs-padded runs. */
import assert, { AssertionError } from "node:assert/strict";
import { mul } from "../src/autograd/ops/binary.ts";
import { sum } from "../src/autograd/ops/reduce.ts";
import { reshape } from "../src/autograd/ops/reshape.ts";
import {
  type BackwardOptions,
  type CausalLM,
  init,
  memoryStats,
  noGrad,
  resetPeakMemory,
  scope,
  setCpuKernels,
  type Tensor,
  tensor,
  WebDPOError,
} from "../mod.ts";

let ready: Promise<unknown> | null = null;

/** Initialises the GPU once per test process (compiling every kernel imported so far). */
export function setup(): Promise<unknown> {
  return (ready ??= init());
}

/**
 * Runs `fn` once with the CPU kernel variants forced and once with the GPU ones (`setCpuKernels`), whatever the
 * adapter, restoring the adapter's choice after; a failure names the variant.
 */
export async function eachKernelVariant(fn: (cpu: boolean) => Promise<void>): Promise<void> {
  for (const cpu of [true, false]) {
    setCpuKernels(cpu);
    try {
      await fn(cpu);
    } catch (e) {
      if (e instanceof Error) e.message = `[${cpu ? "CPU" : "GPU"} kernels] ${e.message}`;
      throw e;
    } finally {
      setCpuKernels(null);
    }
  }
}

/** Deno.test options for GPU tests: the device and its pooled buffers outlive each test by design. */
export const gpuTest = { sanitizeResources: false, sanitizeOps: false };

export interface Tol {
  atol?: number;
  rtol?: number;
}

/** Asserts |a − e| ≤ atol + rtol·|e| elementwise, reporting the worst element. */
export function assertClose(
  actual: ArrayLike<number>,
  expected: ArrayLike<number>,
  { atol = 1e-5, rtol = 1e-5 }: Tol = {},
  what = "values",
): void {
  if (actual.length !== expected.length) {
    throw new AssertionError({ message: `${what}: length ${actual.length} ≠ expected ${expected.length}` });
  }
  let worst = -1;
  let worstExcess = 0;
  for (let i = 0; i < actual.length; i++) {
    const a = actual[i];
    const e = expected[i];
    const ok = Number.isNaN(e) ? Number.isNaN(a) : (a === e || Math.abs(a - e) <= atol + rtol * Math.abs(e));
    if (!ok) {
      const excess = Number.isFinite(a) ? Math.abs(a - e) - (atol + rtol * Math.abs(e)) : Infinity;
      if (worst < 0 || excess > worstExcess) {
        worst = i;
        worstExcess = excess;
      }
    }
  }
  if (worst >= 0) {
    throw new AssertionError({
      message: `${what}: element ${worst} is ${actual[worst]}, expected ${expected[worst]} ` +
        `(atol ${atol}, rtol ${rtol}; first of possibly several)`,
    });
  }
}

/** Reads a tensor into a plain number array. */
export async function values(t: Tensor): Promise<number[]> {
  return Array.from(await t.toArray());
}

/** A deterministic pseudo-random array in [lo, hi) for tests (mulberry32). */
export function randomArray(n: number, seed: number, lo = -1, hi = 1): Float32Array {
  let a = seed >>> 0;
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    const u = ((t ^ (t >>> 14)) >>> 0) / 4294967296;
    out[i] = lo + (hi - lo) * u;
  }
  return out;
}

export interface GradCheckOptions {
  /** Finite-difference step (default 1e-2: f32 forward passes need a large step). */
  eps?: number;
  /** Relative tolerance on each directional derivative, relative to the larger of both magnitudes (default 2e-2). */
  rtol?: number;
  /** Absolute tolerance (default 1e-3). */
  atol?: number;
  /** Random directions per input (default 3). */
  directions?: number;
  /** Also check this many single coordinates per input (default 4). */
  coordinates?: number;
  seed?: number;
}

/**
 * Checks the analytic gradients of `f` (inputs → tensor) against central finite differences of the GPU forward
 * pass. The output is reduced to the scalar L = Σ out·R with a fixed random R, and the directional derivative
 * ⟨∇L, v⟩ is compared with (L(x+εv) − L(x−εv)) / 2ε for random directions v and for single coordinates.
 * Inputs are given as host arrays with shapes; `f` receives fresh tensors each call.
 */
export async function gradCheck(
  f: (...xs: Tensor[]) => Tensor,
  inputs: { data: ArrayLike<number>; shape: number[]; grad?: boolean }[],
  opts: GradCheckOptions = {},
): Promise<void> {
  const eps = opts.eps ?? 1e-2;
  const rtol = opts.rtol ?? 2e-2;
  const atol = opts.atol ?? 1e-3;
  const seed = opts.seed ?? 1234;
  let R: Float32Array | null = null;
  const loss = async (datas: Float64Array[]): Promise<number> =>
    await scope(() =>
      noGrad(() => {
        const xs = datas.map((d, i) => tensor(Float32Array.from(d), inputs[i].shape));
        const out = f(...xs);
        return out.toArray();
      })
    ).then((o) => {
      R ??= randomArray(o.length, seed + 7, 0.5, 1.5);
      let s = 0;
      for (let i = 0; i < o.length; i++) s += o[i] * R[i];
      return s;
    });
  const base = inputs.map((x) => Float64Array.from(x.data));
  await loss(base); // fixes R's length
  // analytic gradients
  const analytic = await scope(async () => {
    const xs = inputs.map((x) =>
      tensor(Float32Array.from(x.data), x.shape, { requiresGrad: x.grad !== false })
    );
    const out = f(...xs);
    const r = tensor(R!, out.shape);
    out.backward(r);
    const gs: (Float32Array | null)[] = [];
    for (const x of xs) gs.push(x.grad ? await x.grad.toArray() : null);
    return gs;
  });
  for (let i = 0; i < inputs.length; i++) {
    if (inputs[i].grad === false) continue;
    const g = analytic[i];
    if (!g) throw new AssertionError({ message: `input ${i}: no gradient was computed` });
    const n = base[i].length;
    const dirs: Float64Array[] = [];
    for (let d = 0; d < (opts.directions ?? 3); d++) {
      dirs.push(Float64Array.from(randomArray(n, seed + 100 * i + d, -1, 1)));
    }
    const coords = Math.min(n, opts.coordinates ?? 4);
    for (let c = 0; c < coords; c++) {
      const v = new Float64Array(n);
      v[Math.floor((c * n) / coords + (n / coords) / 2) % n] = 1;
      dirs.push(v);
    }
    for (const [d, v] of dirs.entries()) {
      const plus = base.map((b) => b.slice());
      const minus = base.map((b) => b.slice());
      for (let k = 0; k < n; k++) {
        plus[i][k] += eps * v[k];
        minus[i][k] -= eps * v[k];
      }
      const numeric = ((await loss(plus)) - (await loss(minus))) / (2 * eps);
      let an = 0;
      for (let k = 0; k < n; k++) an += g[k] * v[k];
      const tol = atol + rtol * Math.max(Math.abs(numeric), Math.abs(an));
      if (!(Math.abs(numeric - an) <= tol)) {
        throw new AssertionError({
          message: `input ${i}, direction ${d}: analytic ${an} vs numeric ${numeric} (tolerance ${
            tol.toExponential(2)
          })`,
        });
      }
    }
  }
}

/**
 * A validator for assert.throws/rejects: the error is a typed WebDPOError (not a TypeError or a bare Error from a
 * bug) whose message names at least one of the snake_case keys or quoted terms of `described` (a golden case's
 * description of the error), when it has any.
 */
export function typedErrorLike(described: string): (e: unknown) => boolean {
  return (e: unknown) => {
    if (!(e instanceof WebDPOError)) {
      throw new AssertionError({ message: `expected a WebDPOError for "${described}", got ${String(e)}` });
    }
    const terms = [...described.matchAll(/'([^']+)'|\b([a-z]+(?:_[a-z0-9]+)+)\b/g)].map((m) => m[1] ?? m[2]);
    if (terms.length > 0 && !terms.some((t) => e.message.includes(t))) {
      throw new AssertionError({
        message: `the error for "${described}" names none of ${terms.join(", ")}: ${e.message}`,
      });
    }
    return true;
  };
}

/**
 * One backward of `loss()` (a forward of `model`) from cleared gradients: the most live pool bytes it added and
 * every parameter's gradient. For tests of memory-saving modes that must not change the gradients.
 */
export async function peakAndGradients(
  model: CausalLM,
  loss: () => Tensor,
  opts?: BackwardOptions,
): Promise<{ peak: number; grads: Map<string, Float32Array> }> {
  for (const p of model.parameters()) {
    p.grad?.dispose();
    p.grad = null;
  }
  resetPeakMemory();
  const before = memoryStats().liveBytes;
  await scope(async () => {
    const l = loss();
    l.backward(undefined, opts);
    await l.item();
  });
  const peak = memoryStats().peakBytes - before;
  const grads = new Map<string, Float32Array>();
  for (const [n, p] of model.namedParameters()) grads.set(n, await p.grad!.toArray());
  return { peak, grads };
}

/** One run of a model's hidden states: the output's shape, the real tokens' values, every gradient. */
export interface HiddenAndGrads {
  shape: readonly number[];
  /** The hidden states of the real tokens, in the order `real` gives them. */
  real: Float32Array;
  /** Every parameter's gradient, by name (the parameters that got one). */
  grads: Map<string, Float32Array>;
}

/**
 * From cleared gradients, `hidden()` (a forward of `model`'s hidden states h) and the backward of Σ h·up, the
 * upstream gradient `upstream(h.size)` (flat, as h); `real` picks the real tokens' hidden states out of h's
 * values. For tests of batch layouts (packing) that must not change values or gradients.
 */
export async function hiddenAndGrads(
  model: CausalLM,
  hidden: () => Tensor,
  upstream: (size: number) => Float32Array,
  real: (h: Float32Array) => Float32Array,
): Promise<HiddenAndGrads> {
  return await scope(async () => {
    for (const p of model.parameters()) p.grad = null;
    const h = hidden();
    sum(mul(reshape(h, [h.size]), tensor(upstream(h.size), [h.size]))).backward();
    const hv = await h.toArray();
    const grads = new Map<string, Float32Array>();
    for (const [n, p] of model.namedParameters()) if (p.grad) grads.set(n, await p.grad.toArray());
    return { shape: h.shape, real: real(hv), grads };
  });
}

/**
 * A packed run (`packed`, its output of shape `shape`) gives the padded batch's run (`padded`): the hidden states
 * of the real tokens within `tol`, and gradients for the same parameters, each nonzero and within 1e-5 × its
 * largest entry (weight gradients sum over the tokens, in another grouping when padding rows are gone: rounding
 * only).
 */
export function assertSameHiddenAndGrads(
  packed: HiddenAndGrads,
  padded: HiddenAndGrads,
  shape: number[],
  tol: Tol,
  name: string,
): void {
  assert.deepEqual(packed.shape, shape);
  assertClose(packed.real, padded.real, tol, `${name}: hidden states`);
  assert.deepEqual([...packed.grads.keys()], [...padded.grads.keys()]);
  for (const [n, gp] of padded.grads) {
    const gq = packed.grads.get(n)!;
    let worst = 0, scale = 0;
    for (let i = 0; i < gp.length; i++) {
      worst = Math.max(worst, Math.abs(gq[i] - gp[i]));
      scale = Math.max(scale, Math.abs(gp[i]));
    }
    assert.ok(scale > 0, `${name}: grad ${n} is zero`);
    assert.ok(worst <= 1e-5 * scale, `${name}: grad ${n} differs by ${worst} (largest entry ${scale})`);
  }
}
