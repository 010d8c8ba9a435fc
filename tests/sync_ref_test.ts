import assert from "node:assert/strict";
import { isSyncStep, mixInto } from "../src/dpo/sync_ref.ts";
import { tensor } from "../src/tensor/create.ts";
import { assertClose, gpuTest, setup, values } from "./util.ts";

interface Case {
  id: string;
  config: { ref_model_mixup_alpha: number; ref_model_sync_steps: number };
  inputs: {
    ref_params?: number[][] | number[][][];
    policy_params?: number[][] | number[][][];
    policy_params_after_step?: number[][][];
  };
  outputs?: {
    new_ref_params?: unknown[];
    synced_after_steps?: number[];
    ref_params_after_step?: number[][][];
  };
  error?: string;
}
const cases: Case[] = JSON.parse(
  await Deno.readTextFile(new URL("./fixtures/dpo/vectors.json", import.meta.url)),
)
  .cases.filter((c: { kind: string }) => c.kind === "sync_ref_model");

const flat = (x: unknown): number[] => (Array.isArray(x) ? x.flatMap(flat) : [x as number]);

Deno.test("golden sync_ref_model: one synchronisation", gpuTest, async () => {
  await setup();
  const c = cases.find((c) => c.id === "sync_ref_model/alpha=0.9_one_sync")!;
  const ref = c.inputs.ref_params!.map((p) => tensor(flat(p)));
  const pol = c.inputs.policy_params!.map((p) => tensor(flat(p)));
  mixInto(ref, pol, c.config.ref_model_mixup_alpha);
  for (const [i, want] of c.outputs!.new_ref_params!.entries()) {
    assertClose(await values(ref[i]), flat(want), { atol: 1e-6, rtol: 1e-6 });
  }
});

Deno.test("golden sync_ref_model: the schedule of steps", gpuTest, async () => {
  await setup();
  const c = cases.find((c) => c.id === "sync_ref_model/schedule/every=2")!;
  const ref = c.inputs.ref_params!.map((p) => tensor(flat(p)));
  const synced: number[] = [];
  for (const [k, params] of c.inputs.policy_params_after_step!.entries()) {
    const step = k + 1;
    if (isSyncStep(step, c.config.ref_model_sync_steps)) {
      synced.push(step);
      mixInto(ref, params.map((p) => tensor(flat(p))), c.config.ref_model_mixup_alpha);
    }
    for (const [i, want] of c.outputs!.ref_params_after_step![k].entries()) {
      assertClose(await values(ref[i]), flat(want), { atol: 1e-6, rtol: 1e-6 });
    }
  }
  assert.deepEqual(synced, c.outputs!.synced_after_steps);
});
