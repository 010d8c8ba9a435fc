/**
 * Per-kernel GPU time from timestamp queries (the `timestamp-query` feature: lavapipe and most GPUs have it).
 * The profiler plugs into the queue as its pass timer (`setPassTimer` in queue.ts) while a profile runs; the
 * queue knows nothing of it otherwise.
 *
 * While a profile runs, every dispatch gets its own compute pass whose beginning and end write a timestamp into
 * the batch's query set; `flush()` resolves the set into a buffer and reads it back asynchronously, and the time
 * of each pass is added to its kernel's row (`file.wgsl:entry`). Passes are split per dispatch only while
 * profiling, so the profile measures kernels, not the batching of a normal run (the host time per dispatch is
 * not included). Used by `bench/profile.ts`:
 *
 *   startKernelProfile();
 *   ... work ...
 *   const rows = await stopKernelProfile();
 *   console.log(formatKernelProfile(rows));
 */
import { gpu } from "./device.ts";
import { WebDPOError } from "./errors.ts";
import { setPassTimer, sync } from "./queue.ts";

/** One kernel entry point's total over the profile. */
export interface KernelTiming {
  /** `file.wgsl:entry`. */
  kernel: string;
  dispatches: number;
  /** GPU milliseconds in all. */
  ms: number;
}

/** The profile needs the `timestamp-query` feature, or a profile is already running / not running. */
export class ProfileError extends WebDPOError {}

interface Batch {
  set: GPUQuerySet;
  names: string[];
}

let totals: Map<string, KernelTiming> | null = null;
let batch: Batch | null = null;
const pending: Promise<void>[] = [];
/** Queries per batch: two per dispatch, as many dispatches as a command buffer holds. */
const QUERIES = 2 * 1024;

/** Starts collecting per-kernel GPU time (throws a `ProfileError` without `timestamp-query`). */
export function startKernelProfile(): void {
  const { info } = gpu();
  if (!info.features.timestampQuery) {
    throw new ProfileError(
      `${info.adapterName} has no timestamp-query feature: kernels cannot be timed there`,
    );
  }
  if (totals) throw new ProfileError("a kernel profile is already running");
  totals = new Map();
  setPassTimer({ timedPass, resolve: resolveTimestamps });
}

/**
 * The compute-pass descriptor for the next dispatch of kernel `name` (timestamps at its beginning and end), or
 * undefined when no profile runs or the batch's query set is full (that dispatch is then not timed).
 */
function timedPass(device: GPUDevice, name: string): GPUComputePassDescriptor | undefined {
  if (!totals) return undefined;
  batch ??= { set: device.createQuerySet({ type: "timestamp", count: QUERIES }), names: [] };
  const i = batch.names.length;
  if (2 * i + 2 > QUERIES) return undefined;
  batch.names.push(name);
  return {
    timestampWrites: {
      querySet: batch.set,
      beginningOfPassWriteIndex: 2 * i,
      endOfPassWriteIndex: 2 * i + 1,
    },
  };
}

/**
 * Called by `flush()` with the batch's encoder before it is finished: resolves the timestamps into a buffer that
 * is read back once the batch has run. Returns what to call after the submit.
 */
function resolveTimestamps(device: GPUDevice, encoder: GPUCommandEncoder): (() => void) | null {
  if (!batch || batch.names.length === 0) return null;
  const { set, names } = batch;
  batch = null;
  const bytes = names.length * 2 * 8;
  const resolved = device.createBuffer({
    size: bytes,
    usage: GPUBufferUsage.QUERY_RESOLVE | GPUBufferUsage.COPY_SRC,
  });
  const staging = device.createBuffer({
    size: bytes,
    usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST,
  });
  encoder.resolveQuerySet(set, 0, names.length * 2, resolved, 0);
  encoder.copyBufferToBuffer(resolved, 0, staging, 0, bytes);
  // a batch exists only while a profile runs, and stopKernelProfile flushes before it ends the profile
  const into = totals!;
  return () => {
    pending.push(
      staging.mapAsync(GPUMapMode.READ).then(() => {
        const t = new BigInt64Array(staging.getMappedRange());
        names.forEach((name, k) => {
          const ns = Number(t[2 * k + 1] - t[2 * k]);
          const row = into.get(name) ?? { kernel: name, dispatches: 0, ms: 0 };
          row.dispatches++;
          row.ms += Math.max(0, ns) / 1e6;
          into.set(name, row);
        });
        staging.unmap();
      }).finally(() => {
        staging.destroy();
        resolved.destroy();
        set.destroy();
      }),
    );
  };
}

/** Waits for the recorded work, stops the profile and returns the kernels, the most expensive first. */
export async function stopKernelProfile(): Promise<KernelTiming[]> {
  if (!totals) throw new ProfileError("no kernel profile is running");
  await sync();
  setPassTimer(null);
  await Promise.all(pending.splice(0));
  const rows = [...totals.values()].sort((a, b) => b.ms - a.ms);
  totals = null;
  return rows;
}

/** A text table of a profile: kernel, dispatches, total and mean GPU time, share. */
export function formatKernelProfile(rows: KernelTiming[]): string {
  const total = rows.reduce((s, r) => s + r.ms, 0);
  const w = Math.max(6, ...rows.map((r) => r.kernel.length));
  const lines = [
    `${"kernel".padEnd(w)}  dispatches   total ms    mean µs   share`,
    ...rows.map((r) =>
      `${r.kernel.padEnd(w)}  ${String(r.dispatches).padStart(10)}  ${r.ms.toFixed(2).padStart(9)}  ${
        (1000 * r.ms / r.dispatches).toFixed(1).padStart(9)
      }  ${(100 * r.ms / (total || 1)).toFixed(1).padStart(5)}%`
    ),
    `${"total".padEnd(w)}  ${String(rows.reduce((s, r) => s + r.dispatches, 0)).padStart(10)}  ${
      total.toFixed(2).padStart(9)
    }`,
  ];
  return lines.join("\n");
}
