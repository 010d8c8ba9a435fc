/**
 * The JSON Lines logs (metrics.jsonl, generations.jsonl) when the disk fails under them: a full disk (injected
 * ENOSPC, and Linux's /dev/full, which fails every write with ENOSPC), a log path that is a folder, and a folder
 * that cannot be made. Each is a MetricsLogError (a WebDPOError) naming the file, never the operating system's
 * bare error.
 */
import assert from "node:assert/strict";
import { JsonlLog, MetricsLogError } from "../src/train/metrics_log.ts";
import { WebDPOError } from "../src/gpu/errors.ts";

/** Asserts `e` is a MetricsLogError whose message matches every pattern. */
function isLogError(...patterns: RegExp[]): (e: unknown) => boolean {
  return (e: unknown) => {
    assert.ok(e instanceof MetricsLogError, `${(e as Error)?.name}: ${(e as Error)?.message}`);
    assert.ok(e instanceof WebDPOError);
    for (const p of patterns) assert.match(e.message, p);
    return true;
  };
}

const escape = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");

Deno.test("a full disk while appending to metrics.jsonl: a MetricsLogError naming the file and the step", async () => {
  const dir = await Deno.makeTempDir({ prefix: "webdpo-metrics-log-" });
  const path = `${dir}/out/metrics.jsonl`;
  const log = new JsonlLog(path, true);
  await log.start(null);
  await log.append({ step: 1, loss: 0.69 });
  // the disk fills up: Deno reports ENOSPC as a plain Error with code "ENOSPC"
  const writeTextFile = Deno.writeTextFile;
  Deno.writeTextFile = () =>
    Promise.reject(
      Object.assign(new Error(`No space left on device (os error 28): writefile '${path}'`), {
        code: "ENOSPC",
      }),
    );
  try {
    await assert.rejects(
      () => log.append({ step: 2, loss: 0.5 }),
      isLogError(
        new RegExp(`^${escape(path)}: `),
        /the line of step 2/,
        /No space left on device/,
        /The disk is full: free some space, or set report_to to "none"/,
      ),
    );
  } finally {
    Deno.writeTextFile = writeTextFile;
  }
  // what was written before stays
  assert.equal(await Deno.readTextFile(path), '{"step":1,"loss":0.69}\n');
  await Deno.remove(dir, { recursive: true });
});

Deno.test(
  "a real full disk (/dev/full) while appending: a MetricsLogError naming the file",
  { ignore: Deno.build.os !== "linux" },
  async () => {
    const log = new JsonlLog("/dev/full", true);
    await assert.rejects(
      () => log.append({ step: 7, eval_loss: 0.25 }),
      isLogError(/^\/dev\/full: /, /the line of step 7/, /os error 28/, /The disk is full/),
    );
  },
);

Deno.test("a log path that is a folder, or under a file: a MetricsLogError naming it", async () => {
  const dir = await Deno.makeTempDir({ prefix: "webdpo-metrics-log-" });
  // a resumed run reads the log back first: the path is a folder
  await Deno.mkdir(`${dir}/metrics.jsonl`);
  await assert.rejects(
    () => new JsonlLog(`${dir}/metrics.jsonl`, true).start(3),
    isLogError(new RegExp(`^${escape(dir)}/metrics\\.jsonl: cannot read`), /Is a directory/),
  );
  // the output folder cannot be made: a file is in the way
  await Deno.writeTextFile(`${dir}/file`, "");
  await assert.rejects(
    () => new JsonlLog(`${dir}/file/generations.jsonl`, true).append({ step: 1 }),
    // (mkdir reports "File exists" for a file in the way)
    isLogError(
      new RegExp(`^${escape(dir)}/file/generations\\.jsonl: cannot make its folder ${escape(dir)}/file \\(`),
    ),
  );
  await Deno.remove(dir, { recursive: true });
});

Deno.test("a disabled log (report_to none) touches nothing", async () => {
  const log = new JsonlLog("/dev/full", false);
  await log.start(null);
  await log.append({ step: 1 });
});
