/**
 * Learning-rate schedules vs values derived by hand from transformers' formulas (see src/optim/schedule.ts).
 * Exact where the arithmetic is exact; 1e-12 where a cosine is involved.
 */
import assert from "node:assert/strict";
import { AdamW } from "../src/optim/adamw.ts";
import { lrAt, lrLambda, LRScheduler, warmupStepsFor } from "../src/optim/schedule.ts";
import { tensor } from "../src/tensor/create.ts";
import { assertClose, gpuTest, setup } from "./util.ts";

const steps = (n: number) => Array.from({ length: n }, (_, s) => s);

Deno.test("linear: warmup s/W, then (N − s)/(N − W) down to 0 and clamped at 0", () => {
  const o = { type: "linear", numTrainingSteps: 10, warmupSteps: 2 } as const;
  assert.deepEqual(
    steps(12).map((s) => lrLambda(s, o)),
    [0, 0.5, 1, 7 / 8, 6 / 8, 5 / 8, 4 / 8, 3 / 8, 2 / 8, 1 / 8, 0, 0],
  );
  // No warmup: full rate at step 0.
  assert.deepEqual([0, 4, 8].map((s) => lrLambda(s, { numTrainingSteps: 8 })), [1, 0.5, 0]);
  assert.equal(lrAt(3, { lr: 5e-5, ...o }), 5e-5 * 7 / 8);
});

Deno.test("cosine: ½(1 + cos(π·cycles·2·progress)) after warmup", () => {
  const o = { type: "cosine", numTrainingSteps: 12, warmupSteps: 2 } as const;
  assert.equal(lrLambda(0, o), 0);
  assert.equal(lrLambda(1, o), 0.5);
  assert.equal(lrLambda(2, o), 1);
  assertClose([lrLambda(7, o)], [0.5], { atol: 1e-12, rtol: 0 }, "half way");
  assertClose([lrLambda(12, o)], [0], { atol: 1e-12, rtol: 0 }, "end");
  // progress 0.2 without warmup: ½(1 + cos(0.2π)), cos(0.2π) = (1 + √5)/4.
  assertClose([lrLambda(2, { type: "cosine", numTrainingSteps: 10 })], [0.5 * (1 + (1 + Math.sqrt(5)) / 4)], {
    atol: 1e-12,
    rtol: 0,
  });
  // One full cycle: down to 0 half way, back up to 1 at the end.
  const full = { type: "cosine", numTrainingSteps: 10, numCycles: 1 } as const;
  assertClose([5, 10].map((s) => lrLambda(s, full)), [0, 1], { atol: 1e-12, rtol: 0 }, "numCycles 1");
});

Deno.test("cosine_with_min_lr: the cosine factor lifted to a floor, by rate or by absolute min_lr", () => {
  const byRate = { type: "cosine_with_min_lr", numTrainingSteps: 10, minLrRate: 0.1 } as const;
  assertClose(
    [0, 5, 10].map((s) => lrLambda(s, byRate)),
    [1, 0.5 * 0.9 + 0.1, 0.1],
    { atol: 1e-12, rtol: 0 },
    "rate",
  );
  const byLr = { type: "cosine_with_min_lr", numTrainingSteps: 10, minLr: 1e-5, lr: 1e-4 } as const;
  assertClose(
    [0, 5, 10].map((s) => lrAt(s, byLr)),
    [1e-4, 5.5e-5, 1e-5],
    { atol: 1e-18, rtol: 1e-12 },
    "min_lr",
  );
  // Warmup still starts from 0, not from the floor.
  assert.equal(lrLambda(0, { ...byRate, warmupSteps: 3 }), 0);
  assert.equal(lrLambda(2, { ...byRate, warmupSteps: 4 }), 0.5);
  assert.throws(() => lrLambda(1, { ...byRate, minLr: 1e-6, lr: 1 }), /only one of minLr and minLrRate/);
  assert.throws(() => lrLambda(1, { type: "cosine_with_min_lr", numTrainingSteps: 10 }), /set one of minLr/);
  assert.throws(
    () => lrLambda(1, { type: "cosine_with_min_lr", numTrainingSteps: 10, minLr: 1e-6 }),
    /initial learning rate/,
  );
});

Deno.test("constant ignores warmup; constant_with_warmup ramps s/W then stays at 1", () => {
  assert.deepEqual(steps(4).map((s) => lrLambda(s, { type: "constant", warmupSteps: 3 })), [1, 1, 1, 1]);
  assert.deepEqual(
    steps(6).map((s) => lrLambda(s, { type: "constant_with_warmup", warmupSteps: 4 })),
    [0, 0.25, 0.5, 0.75, 1, 1],
  );
  // Neither needs numTrainingSteps.
  assert.equal(lrAt(1000, { lr: 3, type: "constant" }), 3);
});

Deno.test("warmup: warmupSteps wins when > 0, else ceil(warmupRatio · N)", () => {
  assert.equal(warmupStepsFor(10, { warmupRatio: 0.15 }), 2); // ⌈1.5⌉
  assert.equal(warmupStepsFor(10, { warmupRatio: 0.25 }), 3); // ⌈2.5⌉
  assert.equal(warmupStepsFor(1000, { warmupRatio: 0.1 }), 100);
  assert.equal(warmupStepsFor(10, { warmupSteps: 4, warmupRatio: 0.5 }), 4);
  assert.equal(warmupStepsFor(10, { warmupSteps: 0, warmupRatio: 0.5 }), 5);
  assert.equal(warmupStepsFor(10, {}), 0);
  // ratio 0.25 of 10 → 3 warmup steps: linear gives 0, 1/3, 2/3, then (10 − 3)/(10 − 3) = 1.
  const o = { type: "linear", numTrainingSteps: 10, warmupRatio: 0.25 } as const;
  assert.deepEqual([0, 1, 2, 3, 10].map((s) => lrLambda(s, o)), [0, 1 / 3, 2 / 3, 1, 0]);
  assert.throws(() => warmupStepsFor(10, { warmupSteps: 1.5 }), /warmupSteps must be an integer/);
  assert.throws(() => warmupStepsFor(10, { warmupRatio: 1.5 }), /warmupRatio must be in \[0, 1\]/);
});

Deno.test("schedule argument errors name what is wrong", () => {
  // deno-lint-ignore no-explicit-any
  assert.throws(() => lrLambda(0, { type: "cosin" as any, numTrainingSteps: 5 }), /did you mean "cosine"/);
  assert.throws(() => lrLambda(0, { type: "linear" }), /needs numTrainingSteps/);
  assert.throws(() => lrLambda(-1, { type: "constant" }), /step must be an integer/);
});

Deno.test("LRScheduler drives an optimizer's groups like torch's LambdaLR", gpuTest, async () => {
  const fake = { groups: [{ lr: 2e-4, initialLr: 2e-4 }, { lr: 1e-4, initialLr: 1e-4 }] };
  const sch = new LRScheduler(fake, { type: "linear", numTrainingSteps: 4, warmupSteps: 2 });
  // On construction: multiplier of step 0 (0 during warmup); each step() moves on by one.
  assert.deepEqual(sch.lastLr(), [0, 0]);
  sch.step();
  assert.deepEqual(sch.lastLr(), [1e-4, 5e-5]);
  sch.step();
  assert.deepEqual(sch.lastLr(), [2e-4, 1e-4]);
  sch.step();
  assert.deepEqual(sch.lastLr(), [1e-4, 5e-5]);
  assert.deepEqual(sch.state(), { stepCount: 3 });
  const again = new LRScheduler({ groups: [{ lr: 0, initialLr: 2e-4 }] }, {
    type: "linear",
    numTrainingSteps: 4,
    warmupSteps: 2,
  });
  again.loadState({ stepCount: 3 });
  assert.deepEqual(again.lastLr(), [1e-4]);
  // A real AdamW: cosine_with_min_lr by min_lr takes the rate against the initial lr.
  await setup();
  const opt = new AdamW([tensor([0], [1], { requiresGrad: true })], { lr: 1e-4 });
  const c = new LRScheduler(opt, { type: "cosine_with_min_lr", numTrainingSteps: 2, minLr: 1e-5 });
  assert.equal(opt.lr, 1e-4);
  c.step();
  assertClose([opt.lr], [5.5e-5], { atol: 0, rtol: 1e-12 }, "half way");
  c.step();
  assertClose([opt.lr], [1e-5], { atol: 0, rtol: 1e-12 }, "floor");
});
