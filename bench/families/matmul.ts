/**
 * matmul: f32 GFLOP/s (2·M·N·K per product) of the kernels — "register" (register-tiled, for CPU adapters),
 * "subgroup" (the register product with A's loads shared across a subgroup; measured where the device has
 * subgroups of ≥ 8 lanes), "shared" (workgroup-memory-tiled, for GPUs) and "tiled" (128×128 blocks, 8×8 per
 * invocation, for GPUs; no adapter's default until measured) — in the three training layouts: AB (forward, x·W), AtB
 * (Aᵀ·B, weight gradients) and ABt (A·Bᵀ, input gradients and nn.Linear's x·Wᵀ); M=N=K = 512, 1024, 2048 and
 * the transformer shapes (M, N, K) = (4096, 576, 576), (4096, 1536, 576), (4096, 576, 1536). `--quick` runs
 * 256³ and 512³ once. Plus one bandwidth-bound row: the `scale` op over 64 MiB (read + write counted).
 *
 * Rows "AB/register" etc. are wall clock through the project's queue (`timeGpu`: recording, submission and the
 * wait), after the pipelines were compiled on a small product. Big shapes get fewer iterations, and on CPU
 * adapters the GPU kernels (which are slow there by design) one measurement, to keep the family under ~3
 * minutes. On GPU adapters with timestamp-query, rows "AB/register/kernel" etc. (`timing: "gpu-timestamps"`)
 * time the kernels alone: the product's dispatches replayed back to back in one compute pass between two
 * timestamps, which removes the host's per-dispatch and per-wait costs that dominate small products there.
 */
import { adapterName, type BenchFamily, timeGpu } from "../harness.ts";
import { gpu } from "../../src/gpu/device.ts";
import { packParams } from "../../src/gpu/params.ts";
import { type DispatchSpec, sync } from "../../src/gpu/queue.ts";
import {
  defaultMatmulVariant,
  isRegisterVariant,
  matmulDispatches,
  matmulInto,
  type MatmulVariant,
  setMatmulVariant,
  subgroupMatmulSupported,
} from "../../src/autograd/ops/matmul.ts";
import { scale } from "../../src/autograd/ops/scale.ts";
import { empty, type Tensor } from "../../src/tensor/tensor.ts";
import { rand } from "../../src/tensor/create.ts";

const LAYOUTS = [
  { name: "AB", transA: false, transB: false },
  { name: "AtB", transA: true, transB: false },
  { name: "ABt", transA: false, transB: true },
];

export const family: BenchFamily = {
  name: "matmul",
  async run(ctx) {
    const cpu = isRegisterVariant(defaultMatmulVariant(gpu().info));
    const shapes: [number, number, number][] = ctx.quick ? [[256, 256, 256], [512, 512, 512]] : [
      [512, 512, 512],
      [1024, 1024, 1024],
      [2048, 2048, 2048],
      [4096, 576, 576],
      [4096, 1536, 576],
      [4096, 576, 1536],
    ];
    const kernels: MatmulVariant[] = subgroupMatmulSupported(gpu().info)
      ? ["register", "subgroup", "shared", "tiled"]
      : ["register", "shared", "tiled"];
    try {
      for (const kv of kernels) {
        setMatmulVariant(kv);
        // compile every layout's pipeline on a small product first
        for (const l of LAYOUTS) await product(64, 64, 64, l, () => {});
        await sync();
        for (const [m, n, k] of shapes) {
          for (const l of LAYOUTS) {
            const flop = 2 * m * n * k;
            // about 1 s of work per measurement on a CPU adapter; many more iterations on a GPU
            const slow = cpu && (!isRegisterVariant(kv) || flop > 4e9);
            const opts = ctx.quick || slow
              ? { warmup: 0, iters: 1, repeats: 1 }
              : cpu
              ? { warmup: 1, iters: 1, repeats: 3 }
              : { warmup: 2, iters: 10, repeats: 3 };
            let ms = 0;
            let kms: number | null = null;
            await product(m, n, k, l, async (run, specs) => {
              ms = await timeGpu(run, opts);
              if (!cpu) kms = await kernelMs(specs(), Math.min(50, Math.max(3, Math.ceil(5e10 / flop))));
            });
            ctx.emit({
              bench: "matmul",
              variant: `${l.name}/${kv}`,
              m,
              n,
              k,
              ms,
              gflops: flop / ms / 1e6,
              adapter: adapterName(),
            });
            if (kms !== null) {
              ctx.emit({
                bench: "matmul",
                variant: `${l.name}/${kv}/kernel`,
                timing: "gpu-timestamps",
                m,
                n,
                k,
                ms: kms,
                gflops: flop / kms / 1e6,
                adapter: adapterName(),
              });
            }
          }
        }
      }
    } finally {
      setMatmulVariant("auto");
    }

    // bandwidth: scale over 64 MiB (16 Mi floats), 64 MiB read + 64 MiB written per op
    const n = ctx.quick ? 1 << 22 : 1 << 24;
    const x = rand([n]);
    const ms = await timeGpu(
      () => scale(x, 2).dispose(),
      ctx.quick ? { warmup: 1, iters: 1, repeats: 1 } : {
        warmup: 1,
        iters: cpu ? 2 : 20,
        repeats: 3,
      },
    );
    ctx.emit({ bench: "bandwidth", variant: "scale", shape: `[${n}]`, ms, gbps: (8 * n) / ms / 1e6 });
    x.dispose();
  },
};

/** Makes random operands for one layout, hands `fn` a closure that records the product, then frees them. */
async function product(
  m: number,
  n: number,
  k: number,
  l: { transA: boolean; transB: boolean },
  fn: (run: () => void, specs: () => DispatchSpec[]) => Promise<void> | void,
): Promise<void> {
  const a: Tensor = rand(l.transA ? [k, m] : [m, k]);
  const b: Tensor = rand(l.transB ? [n, k] : [k, n]);
  const out = empty([m, n]);
  const run = () => matmulInto(out, a, b, { transA: l.transA, transB: l.transB });
  run();
  await fn(run, () => matmulDispatches(out, a, b, { transA: l.transA, transB: l.transB }));
  await sync();
  for (const t of [a, b, out]) t.dispose();
}

/**
 * Milliseconds per product of the given dispatches, replayed `reps` times back to back in one compute pass
 * between two GPU timestamps (median of 5 passes after a warm-up pass), or null without timestamp-query.
 */
export async function kernelMs(specs: DispatchSpec[], reps: number): Promise<number | null> {
  const { device, info } = gpu();
  if (!info.features.timestampQuery) return null;
  await sync();
  const owned: GPUBuffer[] = [];
  const steps = specs.map((s) => {
    const pipeline = device.createComputePipeline({
      layout: "auto",
      compute: {
        module: s.kernel.shaderModule(),
        entryPoint: s.entry ?? "main",
        constants: s.constants ?? {},
      },
    });
    const uniform = device.createBuffer({
      size: 256,
      usage: GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST,
    });
    owned.push(uniform);
    const bytes = packParams(s.kernel.paramLayout(s.entry), s.params ?? {});
    device.queue.writeBuffer(uniform, 0, bytes.buffer as ArrayBuffer, bytes.byteOffset, bytes.byteLength);
    const bindGroup = device.createBindGroup({
      layout: pipeline.getBindGroupLayout(0),
      entries: [
        { binding: 0, resource: { buffer: uniform } },
        ...s.buffers.map((b, i) => ({
          binding: i + 1,
          resource: b instanceof GPUBuffer
            ? { buffer: b }
            : "texture" in b
            ? b.texture.createView()
            : { buffer: b.buffer, offset: b.offset, size: b.size },
        })),
      ],
    });
    return { pipeline, bindGroup, wg: s.workgroups };
  });
  const querySet = device.createQuerySet({ type: "timestamp", count: 2 });
  const resolved = device.createBuffer({
    size: 16,
    usage: GPUBufferUsage.QUERY_RESOLVE | GPUBufferUsage.COPY_SRC,
  });
  const staging = device.createBuffer({ size: 16, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST });
  owned.push(resolved, staging);
  const times: number[] = [];
  for (let r = 0; r < 6; r++) {
    const enc = device.createCommandEncoder();
    const pass = enc.beginComputePass({
      timestampWrites: { querySet, beginningOfPassWriteIndex: 0, endOfPassWriteIndex: 1 },
    });
    for (let i = 0; i < reps; i++) {
      for (const st of steps) {
        pass.setPipeline(st.pipeline);
        pass.setBindGroup(0, st.bindGroup);
        pass.dispatchWorkgroups(st.wg[0], st.wg[1] ?? 1, st.wg[2] ?? 1);
      }
    }
    pass.end();
    enc.resolveQuerySet(querySet, 0, 2, resolved, 0);
    enc.copyBufferToBuffer(resolved, 0, staging, 0, 16);
    device.queue.submit([enc.finish()]);
    await staging.mapAsync(GPUMapMode.READ);
    const t = new BigInt64Array(staging.getMappedRange().slice(0));
    staging.unmap();
    if (r > 0) times.push(Number(t[1] - t[0]) / 1e6 / reps);
  }
  for (const b of owned) b.destroy();
  querySet.destroy();
  times.sort((x, y) => x - y);
  return times[Math.floor(times.length / 2)];
}
