import assert from "node:assert/strict";
import {
  dispatchCounter,
  formatKernelProfile,
  gpu,
  ProfileError,
  startKernelProfile,
  stopKernelProfile,
  sync,
  tensor,
} from "../mod.ts";
import { add } from "../src/autograd/ops/binary.ts";
import { matmul } from "../src/autograd/ops/matmul.ts";
import { gpuTest, randomArray, setup, values } from "./util.ts";

Deno.test(
  "the kernel profile times every dispatch by kernel, and leaves results unchanged",
  gpuTest,
  async () => {
    await setup();
    if (!gpu().info.features.timestampQuery) {
      assert.throws(() => startKernelProfile(), ProfileError);
      return;
    }
    await assert.rejects(() => stopKernelProfile(), /no kernel profile is running/);
    const a = tensor(randomArray(96 * 80, 1), [96, 80]);
    const b = tensor(randomArray(80 * 64, 2), [80, 64]);
    const plain = await values(add(matmul(a, b), matmul(a, b)));

    startKernelProfile();
    assert.throws(() => startKernelProfile(), /already running/);
    const before = dispatchCounter();
    const profiled = await values(add(matmul(a, b), matmul(a, b)));
    const n = dispatchCounter() - before;
    const rows = await stopKernelProfile();
    assert.deepEqual(profiled, plain, "one pass per dispatch computes the same");
    assert.equal(rows.reduce((s, r) => s + r.dispatches, 0), n, "every dispatch is counted once");
    const mm = rows.filter((r) => r.kernel.startsWith("matmul"));
    assert.equal(mm.reduce((s, r) => s + r.dispatches, 0), 2);
    const bin = rows.find((r) => r.kernel === "binary.wgsl:main");
    assert.equal(bin?.dispatches, 1);
    for (const r of rows) assert.ok(r.ms >= 0 && Number.isFinite(r.ms), `${r.kernel}: ${r.ms} ms`);
    assert.ok(rows.some((r) => r.ms > 0), "some kernel took measurable time");
    for (let i = 1; i < rows.length; i++) assert.ok(rows[i - 1].ms >= rows[i].ms, "most expensive first");

    const table = formatKernelProfile(rows);
    assert.match(table, /^kernel +dispatches +total ms +mean µs +share$/m);
    assert.match(table, /^binary\.wgsl:main +1 +\d+\.\d\d +\d+\.\d +\d+\.\d%$/m);
    assert.match(table, new RegExp(`^total +${n} +\\d+\\.\\d\\d$`, "m"));

    // stopped: later work is not profiled, and a new profile starts empty
    await values(add(a, a));
    startKernelProfile();
    await sync();
    assert.deepEqual(await stopKernelProfile(), []);
  },
);
