/**
 * Multi-tensor dispatches for the optimizer: AdamW (kernels/adamw_multi.wgsl) and the gradient norm's partial pass
 * (kernels/grad_norm_multi.wgsl) take several tensors, or binding-sized element ranges of tensors ("pieces"), in
 * one dispatch, as torch's foreach/fused AdamW launches one kernel over a list of tensors. WebGPU binds whole
 * buffers, not pointers, so a dispatch has a fixed number of tensor slots, each its own bindings; the uniform
 * holds, for each slot, its element count and the end of its run of workgroups, and each workgroup finds its slot
 * from that table. Both kernels compute each element (each 4096-element block, for the norm) exactly as their
 * one-tensor kernels do, so the results are the same bits; only the number of dispatches changes (a
 * SmolLM2-135M-shaped model's 272 parameters: 46 AdamW and 12 norm dispatches instead of 272 and 272).
 *
 * The slot kernels need 25 storage bindings per shader stage (lavapipe offers 32, desktop GPUs more; WebGPU's
 * guaranteed minimum is 8): on an adapter with fewer, the optimizer keeps one dispatch per piece. So it does
 * where kernels take their CPU variants (`cpuKernels()`: lavapipe, SwiftShader): there a dispatch costs the host
 * microseconds, while a slot kernel's workgroups run every slot's branch with their lanes masked off, which made
 * the real-scale optimizer step 2.6× slower on lavapipe (bench/RESULTS.md, session 7).
 * `setMultiTensor(false)` forces that path (tests compare the two).
 */
import { cpuKernels, gpu } from "../gpu/device.ts";
import type { Kernel } from "../gpu/kernel.ts";

/** Storage bindings the slot kernels declare (adamw_multi: 1 + 4·6, grad_norm_multi: 1 + 24). */
export const MULTI_BINDINGS = 25;

let override: boolean | null = null;

/** Forces the multi-tensor kernels on (true) or off (false), or restores the adapter's choice (null): for tests. */
export function setMultiTensor(on: boolean | null): void {
  override = on;
}

/** Whether the optimizer dispatches several tensors at a time on this device. */
export function multiTensor(): boolean {
  return override ?? (!cpuKernels() && gpu().info.limits.maxStorageBuffersPerShaderStage >= MULTI_BINDINGS);
}

/** The tensor slots of a slot kernel: its storage bindings less `fixed`, over `perSlot` bindings a slot. */
export function slotCount(k: Kernel, fixed: number, perSlot: number): number {
  const storage = [...k.bindings.values()].filter((b) => b !== "uniform").length;
  const slots = (storage - fixed) / perSlot;
  if (!Number.isInteger(slots) || slots < 1) {
    throw new Error(`internal: ${k.name} declares ${storage} storage bindings, not ${fixed} + ${perSlot}·k`);
  }
  return slots;
}

/**
 * Splits `items` into runs of at most `slots`, in order, a new run starting where `sameRun(prev, next)` is false
 * (another parameter group or step count) or where `clash` says the next item cannot share a dispatch with those
 * already in the run (a buffer bound writable twice).
 */
export function runs<T>(
  items: readonly T[],
  slots: number,
  sameRun: (a: T, b: T) => boolean,
  clash: (run: readonly T[], next: T) => boolean = () => false,
): T[][] {
  const out: T[][] = [];
  let cur: T[] = [];
  for (const it of items) {
    if (cur.length > 0 && (cur.length >= slots || !sameRun(cur[0], it) || clash(cur, it))) {
      out.push(cur);
      cur = [];
    }
    cur.push(it);
  }
  if (cur.length > 0) out.push(cur);
  return out;
}

/**
 * The slot table of one dispatch: for each of `slots` slots, its element count (`ns`, 0 past the pieces) and the
 * end of its workgroups (`ends`, cumulative; unused slots repeat the last end), each piece taking
 * ceil(count / perWorkgroup) workgroups; `groups` is the total. Both lists are padded to a multiple of 4 entries
 * (the kernels' `array<vec4u, n>`).
 */
export function slotTable(
  counts: readonly number[],
  perWorkgroup: number,
  slots: number,
): { ends: number[]; ns: number[]; groups: number } {
  if (counts.length > slots) throw new Error(`internal: ${counts.length} pieces for ${slots} slots`);
  const ends: number[] = [];
  const ns: number[] = [];
  let total = 0;
  // the uniform holds them as vec4u arrays: padded to a multiple of 4 like unused slots
  for (let k = 0; k < Math.ceil(slots / 4) * 4; k++) {
    const n = counts[k] ?? 0;
    total += Math.ceil(n / perWorkgroup);
    ends.push(total);
    ns.push(n);
  }
  return { ends, ns, groups: total };
}
