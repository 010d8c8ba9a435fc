/**
 * Frozen weights stored in 16 bits (src/nn/half_weights.ts, kernels/half_pack.wgsl): the kernel's rounding against
 * V8's Math.f16round and a plain bfloat16 reference, hand-checked ties and range ends, the chunk walk, a module's
 * f32 copies living as long as their scope, a 16-bit clone computing exactly what an f32 model of the rounded
 * weights computes, and the DPO trainer's 16-bit reference (ref_model_init_kwargs torch_dtype).
 */
import assert from "node:assert/strict";
import { scope } from "../src/autograd/scope.ts";
import { DPOConfig } from "../src/dpo/config.ts";
import { estimateDpoMemory } from "../src/dpo/memory_estimate.ts";
import { DPOTrainer } from "../src/dpo/trainer.ts";
import { memoryStats } from "../src/gpu/pool.ts";
import { sync } from "../src/gpu/queue.ts";
import { cloneModel } from "../src/models/clone.ts";
import { parseConfig } from "../src/models/config.ts";
import { initModel } from "../src/models/init.ts";
import { modelFor, saveModel } from "../src/models/loader.ts";
import {
  type HalfDtype,
  halfDtypeOf,
  packHalf,
  repackHalf,
  setHalfChunkElements,
  unpackHalf,
} from "../src/nn/half_weights.ts";
import { tensor } from "../src/tensor/create.ts";
import { tensorNorms, weightNorm } from "../src/train/weights.ts";
import { charTokenizer, containsATask, TINY_LLAMA } from "./trainer_helpers.ts";
import { gpuTest, randomArray, setup } from "./util.ts";

/** bfloat16 rounding (nearest, ties to even) of an f32 value, by its bits. */
function bf16Round(x: number): number {
  const f = new Float32Array([x]);
  const u = new Uint32Array(f.buffer);
  if ((u[0] & 0x7fffffff) > 0x7f800000) return NaN;
  u[0] = ((u[0] + 0x7fff + ((u[0] >>> 16) & 1)) >>> 16) << 16;
  return f[0];
}

const reference = (dtype: HalfDtype) => (x: number) => dtype === "float16" ? Math.f16round(x) : bf16Round(x);

async function roundTrip(xs: number[], dtype: HalfDtype): Promise<Float32Array> {
  return await scope(async () => {
    const p = packHalf(tensor(xs), dtype);
    try {
      return await unpackHalf(p).toArray();
    } finally {
      p.dispose();
    }
  });
}

function assertSameValues(got: Float32Array, want: number[], what: string): void {
  assert.equal(got.length, want.length, what);
  for (let i = 0; i < want.length; i++) {
    const ok = Number.isNaN(want[i]) ? Number.isNaN(got[i]) : Object.is(got[i], want[i]);
    if (!ok) assert.fail(`${what}: element ${i}: got ${got[i]}, want ${want[i]}`);
  }
}

// f32 values (exactly representable) around float16's and bfloat16's ties, range ends and subnormals
const EDGES = [
  0,
  -0,
  1,
  -2.5,
  1 + 2 ** -11, // float16 tie: to 1 (even)
  1 + 3 * 2 ** -11, // float16 tie: to 1 + 2^-9 (even)
  1 + 2 ** -8, // bfloat16 tie: to 1
  1 + 3 * 2 ** -8, // bfloat16 tie: to 1 + 2^-6
  65504, // float16's largest
  65519, // below the tie: 65504
  65520, // the tie past 65504: inf
  -1e6,
  3e38,
  2 ** -24, // float16's smallest subnormal
  2 ** -25, // half of it: a tie, to 0
  3 * 2 ** -25, // a tie between 1 and 2 subnormal steps: to 2
  2 ** -14 - 2 ** -24, // float16's largest subnormal
  1e-30,
  1.17549435e-38, // f32's smallest normal
  Infinity,
  -Infinity,
  NaN,
];

Deno.test(
  "half_pack: float16 and bfloat16 rounding at ties, range ends, subnormals, inf and NaN",
  gpuTest,
  async () => {
    await setup();
    const xs = EDGES.map((x) => Math.fround(x));
    for (const dtype of ["float16", "bfloat16"] as const) {
      assertSameValues(await roundTrip(xs, dtype), xs.map(reference(dtype)), dtype);
    }
    // the ties, by hand (so the test does not rest on the references alone)
    const f16 = await roundTrip(
      [1 + 2 ** -11, 1 + 3 * 2 ** -11, 65519, 65520, 2 ** -25, 3 * 2 ** -25],
      "float16",
    );
    assert.deepEqual([...f16], [1, 1 + 2 ** -9, 65504, Infinity, 0, 2 ** -23]);
    const bf16 = await roundTrip([1 + 2 ** -8, 1 + 3 * 2 ** -8, -(1 + 2 ** -9)], "bfloat16");
    assert.deepEqual([...bf16], [1, 1 + 2 ** -6, -1]);
  },
);

Deno.test(
  "half_pack: random weights of odd length, over several chunks, in both formats",
  gpuTest,
  async () => {
    await setup();
    const xs = [...randomArray(3 * 128 + 77, 5, -0.1, 0.1), ...randomArray(129, 6, -300, 300)];
    setHalfChunkElements(128);
    try {
      for (const dtype of ["float16", "bfloat16"] as const) {
        assertSameValues(await roundTrip(xs, dtype), xs.map(reference(dtype)), `${dtype}, chunks of 128`);
      }
    } finally {
      setHalfChunkElements(null);
    }
    for (const dtype of ["float16", "bfloat16"] as const) {
      assertSameValues(await roundTrip(xs, dtype), xs.map(reference(dtype)), `${dtype}, one chunk`);
    }
  },
);

Deno.test(
  "half_pack: repackHalf overwrites a packed weight; one element packs into one word",
  gpuTest,
  async () => {
    await setup();
    const p = packHalf(tensor([1.5]), "float16");
    assert.equal(p.data.size, 1);
    await scope(async () => {
      repackHalf(tensor([-0.1]), p);
      assert.deepEqual([...await unpackHalf(p).toArray()], [Math.f16round(-0.1)]);
      assert.throws(() => repackHalf(tensor([1, 2]), p), /1 elements/);
    });
    p.dispose();
  },
);

Deno.test("halfDtypeOf reads torch_dtype or dtype, and names a dtype it does not take", () => {
  const where = "ref_model_init_kwargs";
  assert.equal(halfDtypeOf(null, where), null);
  assert.equal(halfDtypeOf({}, where), null);
  assert.equal(halfDtypeOf({ torch_dtype: "float32" }, where), null);
  assert.equal(halfDtypeOf({ torch_dtype: "auto" }, where), null);
  assert.equal(halfDtypeOf({ torch_dtype: "float16" }, where), "float16");
  assert.equal(halfDtypeOf({ dtype: "torch.bfloat16" }, where), "bfloat16");
  assert.equal(halfDtypeOf({ torch_dtype: "bf16", dtype: "bf16" }, where), "bfloat16");
  assert.throws(
    () => halfDtypeOf({ torch_dtype: "int8" }, where),
    /ref_model_init_kwargs: torch_dtype "int8"/,
  );
  assert.throws(() => halfDtypeOf({ torch_dtype: "float16", dtype: "bfloat16" }, where), /differ/);
});

Deno.test(
  "a 16-bit clone computes what an f32 model of the rounded weights computes, bit for bit",
  gpuTest,
  async () => {
    await setup();
    const model = await initModel(TINY_LLAMA, { seed: 7 });
    const ids = [[1, 5, 9, 4, 11, 3, 2], [1, 8, 8, 6, 2, 0, 0]];
    const mask = [[1, 1, 1, 1, 1, 1, 1], [1, 1, 1, 1, 1, 0, 0]];
    for (const dtype of ["float16", "bfloat16"] as const) {
      const half = cloneModel(model, { dtype });
      // matrices packed, vectors (the norms) kept in f32
      for (const [name, p] of model.namedParameters()) {
        assert.equal(half.packedParameters().some(([n]) => n === name), p.ndim >= 2, name);
      }
      assert.equal(half.numParameters(), model.numParameters());
      assert.equal(half.halfDtype(), dtype);
      const rounded = modelFor(model.config);
      for (const [name, p] of model.namedParameters()) {
        const v = await p.toArray();
        rounded.register(name, tensor(p.ndim >= 2 ? v.map(reference(dtype)) : v, p.shape).keep());
      }
      const want = await scope(() => rounded.forward(ids, { attentionMask: mask }).toArray());
      await sync();
      const live = memoryStats().liveBytes;
      const got = await scope(() => half.forward(ids, { attentionMask: mask }).toArray());
      await sync();
      assert.equal(
        memoryStats().liveBytes,
        live,
        `${dtype}: the forward's f32 copies are released with its scope`,
      );
      assert.deepEqual([...got], [...want], dtype);
      // and it differs from the f32 model's logits (the weights were rounded)
      const exact = await scope(() => model.forward(ids, { attentionMask: mask }).toArray());
      assert.notDeepEqual([...got], [...exact], dtype);
      await assert.rejects(() => saveModel(half, "/tmp/webdpo-half-never"), /stored in .*save the policy/);
      half.dispose();
      rounded.dispose();
    }
    model.dispose();
  },
);

Deno.test("param() of a packed weight: one f32 copy per scope, released with it", gpuTest, async () => {
  await setup();
  const model = await initModel(TINY_LLAMA, { seed: 8 });
  const half = cloneModel(model, { dtype: "float16" });
  const name = "model.layers.0.mlp.up_proj.weight";
  await sync();
  const live = memoryStats().liveBytes;
  scope(() => {
    const a = half.param(name);
    assert.equal(half.param(name), a, "the same copy while it lives");
    assert.deepEqual(a.shape, model.param(name).shape);
    assert.equal(a.dtype, "f32");
    assert.ok(memoryStats().liveBytes > live);
  });
  assert.equal(memoryStats().liveBytes, live);
  // registering an f32 tensor under the name replaces (and releases) the packed weight
  const f32 = tensor(new Float32Array(model.param(name).size), model.param(name).shape).keep();
  half.register(name, f32);
  assert.equal(half.param(name), f32);
  assert.ok(!half.packedParameters().some(([n]) => n === name));
  half.dispose();
  model.dispose();
});

function dpoConfig(options: Record<string, unknown>): DPOConfig {
  return new DPOConfig({
    outputDir: "/tmp/webdpo-half-ref",
    maxLength: 32,
    maxPromptLength: 16,
    perDeviceTrainBatchSize: 2,
    maxSteps: 3,
    loggingSteps: 1,
    learningRate: 1e-3,
    disableTqdm: true,
    reportTo: ["none"],
    saveStrategy: "no",
    ...options,
  });
}

Deno.test(
  "DPO with ref_model_init_kwargs torch_dtype float16: half the reference's bytes, close losses",
  gpuTest,
  async () => {
    await setup();
    const losses: Record<string, number[]> = {};
    const refBytes: Record<string, number> = {};
    for (const dtype of ["float32", "float16", "bfloat16"]) {
      const model = await initModel(TINY_LLAMA, { seed: 9 });
      const t = new DPOTrainer({
        model,
        tokenizer: charTokenizer(),
        trainDataset: containsATask(6, 2),
        args: dpoConfig({ refModelInitKwargs: { torch_dtype: dtype } }),
        log: () => {},
      });
      await t.train();
      const logged = t.state.logHistory.filter((l) => "loss" in l).map((l) => l.loss);
      const ref = t.refModel!;
      refBytes[dtype] = ref.parameters().reduce((s, p) => s + p.bytes, 0) +
        ref.packedParameters().reduce((s, [, p]) => s + p.bytes, 0);
      assert.equal(ref.halfDtype(), dtype === "float32" ? null : dtype);
      losses[dtype] = logged;
      t.dispose();
      model.dispose();
    }
    const matrices = refBytes.float32 - refBytes.float16; // the packed half of the matrices' bytes
    assert.ok(matrices > 0.45 * refBytes.float32, JSON.stringify(refBytes));
    assert.equal(refBytes.float16, refBytes.bfloat16);
    assert.equal(losses.float32.length, 3);
    for (const dtype of ["float16", "bfloat16"]) {
      // step 1 is log 2 for an f32 reference; the rounded one moved it by 7e-6 (float16) and 2e-5 (bfloat16) here
      assert.equal(losses[dtype].length, 3);
      for (let i = 0; i < 3; i++) {
        const d = Math.abs(losses[dtype][i] - losses.float32[i]);
        assert.ok(d < 2e-4, `${dtype} step ${i + 1}: ${losses[dtype][i]} vs ${losses.float32[i]}`);
      }
    }
    assert.notDeepEqual(losses.float16, losses.float32);
  },
);

Deno.test(
  "DPO refuses a 16-bit reference with sync_ref_model, and a dtype it does not store",
  gpuTest,
  async () => {
    await setup();
    const model = await initModel(TINY_LLAMA, { seed: 10 });
    const make = (options: Record<string, unknown>) =>
      new DPOTrainer({
        model,
        tokenizer: charTokenizer(),
        trainDataset: containsATask(4, 3),
        args: dpoConfig(options),
        log: () => {},
      });
    assert.throws(
      () => make({ refModelInitKwargs: { torch_dtype: "bfloat16" }, syncRefModel: true }),
      /sync_ref_model .* 16 bits/,
    );
    assert.throws(() => make({ refModelInitKwargs: { torch_dtype: "int4" } }), /torch_dtype "int4"/);
    model.dispose();
  },
);

Deno.test("the memory estimate counts a 16-bit reference copy at half its f32 bytes", () => {
  const base = {
    config: parseConfig(TINY_LLAMA),
    params: 1_000_000,
    trainable: 1_000_000,
    referenceCopy: true,
    rows: 4,
    tokens: 16,
    gradientCheckpointing: false,
  };
  const f32 = estimateDpoMemory(base);
  const half = estimateDpoMemory({ ...base, referenceHalf: true });
  assert.equal(f32.reference, 4_000_000);
  assert.equal(half.reference, 2_000_000);
  assert.equal(f32.total - half.total, 2_000_000);
});

Deno.test(
  "weight norms of packed weights: unpacked one at a time, released after, the f32 values' norms",
  gpuTest,
  async () => {
    await setup();
    const a = randomArray(1001, 12, -2, 2), b = randomArray(64, 13, -1, 1);
    const pa = packHalf(tensor(a), "bfloat16"), pb = packHalf(tensor(b), "float16");
    const plain = tensor([3, 4]).keep();
    await sync();
    const live = memoryStats().liveBytes;
    const norms = await tensorNorms([plain, () => unpackHalf(pa), () => unpackHalf(pb)]);
    await sync();
    assert.equal(memoryStats().liveBytes, live, "the unpacked copies are released");
    const l2 = (xs: number[]) => Math.sqrt(xs.reduce((s, x) => s + x * x, 0));
    const want = [5, l2([...a].map(bf16Round)), l2([...b].map((x) => Math.f16round(x)))];
    for (let i = 0; i < 3; i++) {
      assert.ok(
        Math.abs(norms[i] - want[i]) < 1e-4 * want[i],
        `${norms[i]} vs ${want[i]}`,
      );
    }
    const total = await weightNorm([plain, () => unpackHalf(pa)]);
    assert.ok(Math.abs(total - Math.hypot(want[0], want[1])) < 1e-4 * total);
    pa.dispose();
    pb.dispose();
    plain.dispose();
  },
);

Deno.test(
  "a checkpoint records a 16-bit reference's norm: resuming with the same start is silent, another warns",
  gpuTest,
  async () => {
    await setup();
    const dir = await Deno.makeTempDir({ prefix: "webdpo-half-resume-" });
    const train = async (seed: number, resume?: string) => {
      const model = await initModel(TINY_LLAMA, { seed });
      const lines: string[] = [];
      const t = new DPOTrainer({
        model,
        tokenizer: charTokenizer(),
        trainDataset: containsATask(8, 4),
        args: dpoConfig({
          outputDir: dir,
          refModelInitKwargs: { torch_dtype: "float16" },
          maxSteps: 4,
          saveStrategy: "steps",
          saveSteps: 2,
          resumeFromCheckpoint: resume,
        }),
        log: (l) => lines.push(l),
      });
      try {
        await t.train();
      } finally {
        t.dispose();
        model.dispose();
      }
      return lines.join("\n");
    };
    try {
      await train(21);
      const state = JSON.parse(await Deno.readTextFile(`${dir}/checkpoint-2/webdpo_state.json`));
      assert.ok(state.reference_norm > 0, JSON.stringify(state.reference_norm));
      assert.doesNotMatch(await train(21, `${dir}/checkpoint-2`), /reference model differs/);
      assert.match(await train(22, `${dir}/checkpoint-2`), /reference model differs/);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
);
