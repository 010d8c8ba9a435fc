/** The fuzz sandbox catches what the fuzz properties rule out: hangs, claimed-size allocations, untyped errors. */
import assert from "node:assert/strict";
import { ParserSandbox } from "./fuzz_sandbox.ts";
import { checkOutcome } from "./fuzz_util.ts";

const module = new URL("./fuzz_targets/sandbox_checks.ts", import.meta.url).href;

const workerTest = { sanitizeOps: false, sanitizeResources: false };

Deno.test("fuzz sandbox: results, hangs, large allocations and untyped errors", workerTest, async () => {
  const sandbox = new ParserSandbox(1_000);
  try {
    const files = { "a/b.txt": new TextEncoder().encode("hello") };
    const echo = await sandbox.run({ module, target: "echo", files });
    assert.deepEqual(echo.kind === "result" && echo.summary, "hello");
    checkOutcome(echo, /./);

    const spin = await sandbox.run({ module, target: "spin", files: {} });
    assert.equal(spin.kind, "timeout");
    assert.throws(() => checkOutcome(spin, /./), /no answer within 1000 ms/);

    const allocate = await sandbox.run({ module, target: "allocate", files: {} }); // a fresh worker
    assert.equal(allocate.kind === "error" && allocate.typed, true);
    assert.throws(() => checkOutcome(allocate, /claimed\.bin/), /MiB allocated/);

    const untyped = await sandbox.run({ module, target: "untyped", files: {} });
    assert.throws(() => checkOutcome(untyped, /./), /unhandled TypeError/);
  } finally {
    sandbox.close();
  }
});
