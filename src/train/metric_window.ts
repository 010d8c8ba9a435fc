/**
 * The logging window: each micro-batch's metrics packed into one small GPU vector (a "pack": the loss in slot 0,
 * then whatever the trainer reports), kept on the GPU until a logging step reads the whole window back at once.
 *
 * Between logging steps only the latest step's loss and gradient norm are read, one step late (`PendingStep`):
 * the readback is queued after a step and awaited after the next one, so the GPU never waits on it, and a NaN is
 * still caught before the run goes on for long or saves a checkpoint.
 */
import { concat } from "../autograd/ops/concat.ts";
import { reshape } from "../autograd/ops/reshape.ts";
import { scope } from "../autograd/scope.ts";
import { tensor } from "../tensor/create.ts";
import type { Tensor } from "../tensor/tensor.ts";

/** Reads packs back (one readback): one row of `slots` values per pack. */
export async function readPacks(packs: Tensor[], slots: number): Promise<number[][]> {
  if (packs.length === 0) return [];
  const all = await scope(() => concat(packs).toArray());
  return packs.map((_, i) => Array.from(all.subarray(i * slots, (i + 1) * slots)));
}

/** The mean of each slot over `rows`. */
export function meanRows(rows: number[][], slots: number): number[] {
  const sums = new Array(slots).fill(0);
  for (const row of rows) for (let j = 0; j < slots; j++) sums[j] += row[j];
  return sums.map((s) => s / rows.length);
}

/** The packs of the micro-batches since the last log. */
export class MetricWindow {
  private packs: Tensor[] = [];

  constructor(readonly slots: number) {}

  /** A window restored from a checkpoint's rows. */
  static fromRows(rows: number[][], slots: number): MetricWindow {
    const w = new MetricWindow(slots);
    w.packs = rows.map((row) => tensor(row, [slots]).keep());
    return w;
  }

  get length(): number {
    return this.packs.length;
  }

  /** The latest micro-batch's pack. */
  get last(): Tensor {
    return this.packs[this.packs.length - 1];
  }

  /** Adds a pack; the window owns it from now on. */
  push(pack: Tensor): void {
    this.packs.push(pack);
  }

  read(): Promise<number[][]> {
    return readPacks(this.packs, this.slots);
  }

  /** Releases the packs and starts an empty window. */
  clear(): void {
    for (const p of this.packs) p.dispose();
    this.packs = [];
  }
}

/** A step's loss and gradient norm as read back. */
export interface StepValues {
  step: number;
  loss: number;
  gradNorm: number;
}

/** The latest step's loss and gradient norm, read back while the next step runs. */
export class PendingStep {
  private pending: { step: number; values: Promise<Float32Array> } | null = null;

  /** Queues the readback of `step`'s loss (slot 0 of its last pack) and gradient norm. */
  start(step: number, lastPack: Tensor, norm: Tensor): void {
    const slots = lastPack.size;
    this.pending = {
      step,
      values: scope(() => concat([reshape(lastPack, [slots]), norm]).toArray()).then((x) =>
        Float32Array.of(x[0], x[x.length - 1])
      ),
    };
  }

  /** The values queued last (null when none), which are then forgotten. */
  async take(): Promise<StepValues | null> {
    const p = this.pending;
    if (!p) return null;
    this.pending = null;
    const v = await p.values;
    return { step: p.step, loss: v[0], gradNorm: v[1] };
  }
}
