/**
 * AdamW: effective memory bandwidth of the fused step over 10M parameters (1M with --quick).
 * Bytes counted per step: param, grad, exp_avg, exp_avg_sq read and param, exp_avg, exp_avg_sq written, 28 B per
 * parameter; with clipping also the norm pass's read of every gradient (+4 B per parameter).
 *
 * Rows:
 * - "step, 1 tensor" / "step, 60 tensors" / "clip+step, 1 tensor": wall clock through the project's queue
 *   (`timeGpu`: recording, submission and the wait included, over many steps), so `gbps` there is what a
 *   training loop sees; 60 tensors of uneven sizes show the per-dispatch cost of a model's parameter list.
 * - "kernel (gpu timestamps)": the AdamW kernel alone, timed on the GPU by timestamp queries around 20
 *   back-to-back dispatches in one pass (only where the adapter offers timestamp-query).
 */
import { adapterName, type BenchFamily, timeGpu } from "../harness.ts";
import { gpu } from "../../src/gpu/device.ts";
import { kernel } from "../../src/gpu/kernel.ts";
import { packParams } from "../../src/gpu/params.ts";
import { grid1d, sync } from "../../src/gpu/queue.ts";
import { full, tensor } from "../../src/tensor/create.ts";
import type { Tensor } from "../../src/tensor/tensor.ts";
import { AdamW } from "../../src/optim/adamw.ts";
import { clipGradNorm } from "../../src/optim/grad_norm.ts";

function makeParams(sizes: number[]): Tensor[] {
  return sizes.map((n, k) => {
    const d = new Float32Array(n);
    const g = new Float32Array(n);
    for (let i = 0; i < n; i++) {
      d[i] = Math.sin(i * 0.37 + k);
      g[i] = 0.01 * Math.cos(i * 0.11 + k);
    }
    const p = tensor(d, [n], { requiresGrad: true });
    p.grad = tensor(g, [n]);
    return p;
  });
}

/** `total` split into `parts` uneven sizes (a few large, many small, none a multiple of a tile). */
function unevenSizes(total: number, parts: number): number[] {
  const w = Array.from({ length: parts }, (_, k) => 1 + ((k * 7919) % 13) ** 2);
  const sum = w.reduce((a, b) => a + b, 0);
  const sizes = w.map((x) => Math.max(1, Math.floor((total * x) / sum)));
  sizes[0] += total - sizes.reduce((a, b) => a + b, 0);
  return sizes;
}

/**
 * Milliseconds per dispatch of the AdamW kernel over one tensor of the state, measured by GPU timestamps
 * (median of 5 passes of `reps` dispatches each), or null without timestamp-query.
 */
async function kernelMs(p: Tensor, g: Tensor, m: Tensor, v: Tensor, reps: number): Promise<number | null> {
  const { device, info } = gpu();
  if (!info.features.timestampQuery) return null;
  await sync();
  const module = kernel("adamw.wgsl").shaderModule();
  const uniform = device.createBuffer({ size: 256, usage: GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST });
  const params = packParams(kernel("adamw.wgsl").paramLayout(), {
    n: p.size,
    decay: 1 - 1e-6,
    w1: 0.1,
    beta2: 0.999,
    w2: 0.001,
    step_size: 1e-4,
    bc2_sqrt: 0.03,
    eps: 1e-8,
  });
  device.queue.writeBuffer(uniform, 0, params.buffer as ArrayBuffer, params.byteOffset, params.byteLength);
  const one = full([1], 1);
  const pipeline = device.createComputePipeline({
    layout: "auto",
    compute: { module, entryPoint: "main", constants: { ITEMS: 1 } },
  });
  const bindGroup = device.createBindGroup({
    layout: pipeline.getBindGroupLayout(0),
    entries: [
      { binding: 0, resource: { buffer: uniform } },
      ...[p, g, m, v, one].map((t, i) => ({
        binding: i + 1,
        resource: { buffer: t.storage.buffer, size: t.bytes },
      })),
    ],
  });
  await sync();
  const querySet = device.createQuerySet({ type: "timestamp", count: 2 });
  const resolved = device.createBuffer({
    size: 16,
    usage: GPUBufferUsage.QUERY_RESOLVE | GPUBufferUsage.COPY_SRC,
  });
  const staging = device.createBuffer({ size: 16, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST });
  const times: number[] = [];
  const [wx, wy] = grid1d(p.size, 256);
  for (let r = 0; r < 6; r++) {
    const enc = device.createCommandEncoder();
    const pass = enc.beginComputePass({
      timestampWrites: { querySet, beginningOfPassWriteIndex: 0, endOfPassWriteIndex: 1 },
    });
    pass.setPipeline(pipeline);
    pass.setBindGroup(0, bindGroup);
    for (let i = 0; i < reps; i++) pass.dispatchWorkgroups(wx, wy);
    pass.end();
    enc.resolveQuerySet(querySet, 0, 2, resolved, 0);
    enc.copyBufferToBuffer(resolved, 0, staging, 0, 16);
    device.queue.submit([enc.finish()]);
    await staging.mapAsync(GPUMapMode.READ);
    const t = new BigInt64Array(staging.getMappedRange().slice(0));
    staging.unmap();
    if (r > 0) times.push(Number(t[1] - t[0]) / 1e6 / reps); // the first pass warms up
  }
  for (const b of [uniform, resolved, staging]) b.destroy();
  querySet.destroy();
  one.dispose();
  times.sort((a, b) => a - b);
  return times[Math.floor(times.length / 2)];
}

export const family: BenchFamily = {
  name: "adamw",
  async run(ctx) {
    const n = ctx.quick ? 1_000_000 : 10_000_000;
    const cases: { variant: string; sizes: number[]; clip: boolean }[] = [
      { variant: "step, 1 tensor", sizes: [n], clip: false },
      { variant: "step, 60 tensors", sizes: unevenSizes(n, 60), clip: false },
      { variant: "clip+step, 1 tensor", sizes: [n], clip: true },
    ];
    for (const c of cases) {
      const params = makeParams(c.sizes);
      const opt = new AdamW(params, { lr: 1e-4, weightDecay: 0.01 });
      const step = () => {
        if (c.clip) {
          const { norm, coef } = clipGradNorm(params, 1);
          opt.step({ gradScale: coef });
          norm.dispose();
          coef.dispose();
        } else opt.step();
      };
      // Enough steps per measurement (~0.5 s, 3 to 50) to amortise the wait for the GPU on a fast device
      // without taking minutes on a CPU adapter.
      const once = await timeGpu(step, { warmup: 1, iters: 1, repeats: 1 });
      const iters = ctx.quick ? 2 : Math.min(50, Math.max(3, Math.ceil(500 / once)));
      const ms = await timeGpu(step, { warmup: ctx.quick ? 0 : 2, iters, repeats: ctx.quick ? 1 : 3 });
      ctx.emit({
        bench: "adamw",
        variant: c.variant,
        n,
        shape: `${c.sizes.length} tensor${c.sizes.length > 1 ? "s" : ""}`,
        ms,
        gbps: ((c.clip ? 32 : 28) * n) / (ms * 1e6),
        adapter: adapterName(),
      });
      if (c.variant === "step, 1 tensor") {
        const s = opt.state().params[0];
        const kms = await kernelMs(params[0], params[0].grad!, s.expAvg, s.expAvgSq, ctx.quick ? 2 : 20);
        if (kms !== null) {
          ctx.emit({
            bench: "adamw",
            variant: "kernel (gpu timestamps)",
            n,
            shape: "1 tensor",
            ms: kms,
            gbps: (28 * n) / (kms * 1e6),
            adapter: adapterName(),
          });
        }
      }
      opt.dispose();
      for (const p of params) {
        p.grad?.dispose();
        p.dispose();
      }
    }
  },
};
