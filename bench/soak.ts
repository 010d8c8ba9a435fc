/**
 * `deno task soak [--steps N] [--every K] [--warmup W]`: a long DPO run of the demo model (examples/tiny-chat on its
 * training pairs, 16 pairs per step, several epochs) in one process, recording the memory that could leak every K
 * optimizer steps (default 2,000 steps, every 100): the pool's live, pooled and reserved bytes, the JS heap and
 * the process's RSS. After the warm-up (default: the first 200 steps) each series is fitted with a least-squares
 * line; the run fails (exit 1) when a series gains more than 1% of its mean per 1,000 steps, or when the pool's
 * live or reserved bytes ever exceed their values at the end of the warm-up by more than 10%. Prints one JSON line
 * per record and a table; the figures go into bench/RESULTS.md.
 *
 * The JS heap read between steps follows the collector's sawtooth. Run with `--v8-flags=--expose-gc`
 * (`deno run -A --v8-flags=--expose-gc bench/soak.ts`) and each record also holds the heap after a full
 * collection (`heapGc`), which is what is left alive: it is then judged in place of the sawtooth. Each record
 * also holds, for telling where RSS goes (reported, not judged), V8's external memory (ArrayBuffers) and, on
 * Linux, RSS's anonymous and file-backed parts (/proc/self/status RssAnon, RssFile).
 */
import { parseArgs } from "node:util";
import { DPOConfig, DPOTrainer, init, loadModel, loadTokenizer, memoryStats, sync } from "../mod.ts";
import { loadDataset } from "../src/data/dataset.ts";

const { values: a } = parseArgs({
  args: Deno.args,
  options: {
    steps: { type: "string", default: "2000" },
    every: { type: "string", default: "100" },
    warmup: { type: "string", default: "200" },
  },
});
const steps = Number(a.steps), every = Number(a.every), warmup = Number(a.warmup);
if (![steps, every, warmup].every((n) => Number.isInteger(n) && n > 0) || warmup >= steps) {
  console.error("usage: deno task soak [--steps N] [--every K] [--warmup W]  (integers, W < N)");
  Deno.exit(2);
}

interface Record {
  step: number;
  live: number;
  pooled: number;
  reserved: number;
  heap: number;
  rss: number;
  /** The heap after a full collection (with --v8-flags=--expose-gc). */
  heapGc?: number;
  /** V8's external memory (ArrayBuffers). */
  external: number;
  /** RSS's anonymous and file-backed parts (Linux). */
  rssAnon?: number;
  rssFile?: number;
}

/** RssAnon and RssFile of /proc/self/status, in bytes (Linux; elsewhere nothing). */
function rssParts(): { rssAnon?: number; rssFile?: number } {
  try {
    const status = Deno.readTextFileSync("/proc/self/status");
    const kB = (key: string) => {
      const m = new RegExp(`^${key}:\\s+(\\d+) kB`, "m").exec(status);
      return m ? Number(m[1]) * 1024 : undefined;
    };
    return { rssAnon: kB("RssAnon"), rssFile: kB("RssFile") };
  } catch {
    return {};
  }
}

/** V8's collector, when the script runs with --v8-flags=--expose-gc. */
const gc = (globalThis as { gc?: () => void }).gc;

const info = await init();
const dir = new URL("../examples/tiny-chat", import.meta.url).pathname;
const model = await loadModel(dir);
const tokenizer = await loadTokenizer(dir);
const records: Record[] = [];
const t0 = performance.now();
const trainer = new DPOTrainer({
  model,
  tokenizer,
  trainDataset: await loadDataset(`${dir}/data/dpo_train.jsonl`),
  args: new DPOConfig({
    outputDir: await Deno.makeTempDir({ prefix: "webdpo-soak-" }),
    maxSteps: steps,
    perDeviceTrainBatchSize: 16,
    learningRate: 5e-5,
    lrSchedulerType: "constant",
    maxLength: 96,
    maxPromptLength: 64,
    loggingSteps: every,
    disableTqdm: true,
    reportTo: ["none"],
    saveStrategy: "no",
  }),
  callbacks: [{
    onStepEnd: async (s) => {
      if (s.globalStep % every !== 0) return;
      await sync();
      const m = memoryStats();
      const u = Deno.memoryUsage();
      const r: Record = {
        step: s.globalStep,
        live: m.liveBytes,
        pooled: m.pooledBytes,
        reserved: m.reservedBytes,
        heap: u.heapUsed,
        rss: u.rss,
        external: u.external,
        ...rssParts(),
      };
      if (gc) {
        gc();
        r.heapGc = Deno.memoryUsage().heapUsed;
      }
      records.push(r);
      console.log(JSON.stringify({ ...r, s: +((performance.now() - t0) / 1000).toFixed(1) }));
    },
  }],
  log: () => {},
});
await trainer.train();
trainer.dispose();
model.dispose();

const MB = (x: number) => (x / 1e6).toFixed(1);
console.log(
  `\nadapter: ${info.adapterName}; ${steps} steps, ${((performance.now() - t0) / 1000).toFixed(0)} s`,
);
const optional = (x: number | undefined, width: number) =>
  x === undefined ? "" : `  ${MB(x).padStart(width)}`;
console.log(
  "step    live MB  pooled MB  reserved MB  JS heap MB  RSS MB" + (gc ? "  heap after GC MB" : "") +
    "  external MB" + (records[0]?.rssAnon === undefined ? "" : "  RssAnon MB  RssFile MB"),
);
for (const r of records) {
  console.log(
    `${String(r.step).padEnd(6)}  ${MB(r.live).padStart(7)}  ${MB(r.pooled).padStart(9)}  ${
      MB(r.reserved).padStart(11)
    }  ${MB(r.heap).padStart(10)}  ${MB(r.rss).padStart(6)}${optional(r.heapGc, 16)}${
      optional(r.external, 11)
    }${optional(r.rssAnon, 10)}${optional(r.rssFile, 10)}`,
  );
}

/** Least-squares slope of y over x. */
function slope(xs: number[], ys: number[]): number {
  const n = xs.length;
  const mx = xs.reduce((s, v) => s + v, 0) / n, my = ys.reduce((s, v) => s + v, 0) / n;
  let num = 0, den = 0;
  for (let i = 0; i < n; i++) {
    num += (xs[i] - mx) * (ys[i] - my);
    den += (xs[i] - mx) ** 2;
  }
  return den === 0 ? 0 : num / den;
}

const after = records.filter((r) => r.step >= warmup);
const failures: string[] = [];
if (after.length >= 3) {
  // with a collection before each record, what is left alive is judged, not the collector's sawtooth
  const judged = ["live", "pooled", "reserved", gc ? "heapGc" as const : "heap" as const, "rss"] as const;
  const reported = [...(gc ? ["heap"] as const : []), "external", "rssAnon", "rssFile"] as const;
  for (const key of [...judged, ...reported]) {
    if (after.some((r) => r[key] === undefined)) continue;
    const ys = after.map((r) => r[key]!);
    const mean = ys.reduce((s, v) => s + v, 0) / ys.length;
    const per1000 = slope(after.map((r) => r.step), ys) * 1000;
    const share = mean > 0 ? per1000 / mean : 0;
    const isJudged = (judged as readonly string[]).includes(key);
    console.log(
      `${key}: slope ${MB(per1000)} MB per 1,000 steps (${(100 * share).toFixed(2)}% of its mean)` +
        (isJudged ? "" : " (reported, not judged)"),
    );
    if (isJudged && share > 0.01) {
      failures.push(`${key} grows ${(100 * share).toFixed(2)}% of its mean per 1,000 steps`);
    }
  }
  const base = after[0];
  for (const key of ["live", "reserved"] as const) {
    const most = Math.max(...after.map((r) => r[key]));
    if (most > base[key] * 1.1) failures.push(`${key} reached ${MB(most)} MB against ${MB(base[key])} MB`);
  }
}
if (failures.length) {
  console.error(`soak: ${failures.join("; ")}`);
  Deno.exit(1);
}
console.log("soak: no series grows after the warm-up");
