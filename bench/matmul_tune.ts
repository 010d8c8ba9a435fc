/**
 * Tuning aid for the shared-memory matmul kernel (not part of `deno task bench`): GPU-timestamp GFLOP/s of
 * each micro-tile (TM × TN per invocation, override constants of kernels/matmul_shared.wgsl) on the benchmark
 * shapes, in the three layouts. Run: deno run -A bench/matmul_tune.ts [--small]
 */
import { init } from "../src/gpu/init.ts";
import { sync } from "../src/gpu/queue.ts";
import { matmulDispatches, setMatmulVariant } from "../src/autograd/ops/matmul.ts";
import { rand } from "../src/tensor/create.ts";
import { empty } from "../src/tensor/tensor.ts";
import { kernelMs } from "./families/matmul.ts";

const info = await init();
setMatmulVariant("shared");
const shapes = Deno.args.includes("--small") ? [[256, 192, 128]] : [
  [1024, 1024, 1024],
  [2048, 2048, 2048],
  [4096, 576, 576],
  [4096, 1536, 576],
  [
    4096,
    576,
    1536,
  ],
];
const tiles = [[4, 4], [8, 4], [4, 8], [8, 8]];
console.log(`adapter: ${info.adapterName}`);
for (const [m, n, k] of shapes) {
  for (const [ta, tb] of [[false, false], [true, false], [false, true]]) {
    const a = rand(ta ? [k, m] : [m, k]);
    const b = rand(tb ? [n, k] : [k, n]);
    const out = empty([m, n]);
    const row: string[] = [];
    for (const [TM, TN] of tiles) {
      const specs = matmulDispatches(out, a, b, { transA: ta, transB: tb }).map((s) => ({
        ...s,
        constants: { ...s.constants, TM, TN },
        workgroups: [Math.ceil(n / (16 * TN)), Math.ceil(m / (16 * TM)), 1] as [number, number, number],
      }));
      const flop = 2 * m * n * k;
      const ms = await kernelMs(specs, Math.min(50, Math.max(3, Math.ceil(5e10 / flop))));
      row.push(`${TM}x${TN}: ${ms === null ? "-" : (flop / ms / 1e6).toFixed(0)}`);
    }
    console.log(`${m}x${n}x${k} ${ta ? "At" : "A"}${tb ? "Bt" : "B"}  GFLOP/s  ${row.join("  ")}`);
    for (const t of [a, b, out]) t.dispose();
    await sync();
  }
}
