/**
 * attention(q, k, v, opts): scaled-dot-product attention, flash style (kernels/attention_*.wgsl).
 *
 *   q [B, H, TQ, D], k and v [B, HKV, TK, D] → out [B, H, TQ, D], out = softmax(q·kᵀ·scale + mask)·v per head.
 *
 * - Grouped-query attention: query head h reads kv head ⌊h / (H / HKV)⌋; K and V are never copied.
 * - Causal by default: query t sees keys s ≤ t. With TQ < TK the queries are the last TQ positions (generation
 *   with a KV cache): query row i sits at absolute position t = i + TK − TQ.
 * - `attentionMask` [B, TK] (i32 or f32; non-zero = real token, 0 = padding): padding keys are seen by no query.
 * - `segments` [B, T, 2] (i32: the [start, end) of the segment each position belongs to): packed sequences, several
 *   sequences laid end to end in one row, each attending only within itself (padding-free batches). Or [B, T, 4]
 *   (start, end, hole start, hole end), causal only: the two sequences of a preference pair around their common
 *   prefix, which runs once ([prefix | chosen rest | rejected rest]; see `segments` below).
 * - `slidingWindow` W (Mistral, as in transformers): query t sees keys s with t − W < s ≤ t.
 * - A query that sees no key at all (e.g. a padded query whose earlier keys are all padding) gives a zero output
 *   row and zero gradients, never NaN.
 *
 * The forward keeps a running max and sum per query row over tiles of keys (online softmax) and saves only the
 * output and the per-row logsumexp L [B, H, TQ]. The backward recomputes each probability from L: Δ = rowsum(dO ⊙
 * O), then one pass per query row for dQ and one pass per key row for dK/dV (summing the query heads of its
 * group inside one invocation: deterministic, no atomics). Memory is O(B·H·T·D); no [T, T] matrix is ever made.
 *
 * Two kernel variants: "rows" (one invocation per pair of adjacent query rows — or keys in the dK/dV pass — with
 * its accumulators in registers and each K/V load feeding both rows: best where an invocation is one SIMD lane
 * and loads dominate, i.e. lavapipe/llvmpipe) and "tiled" (a workgroup per tile of 64/splits rows, `splits`
 * invocations per row each taking every splits-th key, K/V — or Q/dO — tiles shared in workgroup memory, partial
 * states merged in workgroup memory: for GPUs). The default follows `gpu().info.isFallbackAdapter`.
 *
 * The kernels read rows as vec4s; a head dim that is not a multiple of 4 runs on zero-padded copies (padding
 * columns contribute nothing to any dot product), at the cost of the copies.
 *
 * The "rows" variant runs its kernels with their head-dim loops unrolled for the head dim at hand
 * (src/gpu/unroll.ts): its per-row arrays are then registers on llvmpipe instead of per-lane memory, the same
 * sums in the same order (`setAttentionUnroll(false)` keeps the loops, for comparisons).
 */
import { gpu, hasSubgroupsOf8 } from "../../gpu/device.ts";
import { type Kernel, kernel } from "../../gpu/kernel.ts";
import { unrolledKernel } from "../../gpu/unroll.ts";
import { LOOP_BUDGET } from "../../gpu/loop_budget.ts";
import type { ParamValues } from "../../gpu/params.ts";
import { clearBuffer, dispatch, grid1d } from "../../gpu/queue.ts";
import { empty, type Tensor, view } from "../../tensor/tensor.ts";
import { needsGrad, record } from "../record.ts";
import { OperandCopies, textureKernel, textureOperandsOn } from "./texture_operands.ts";

const FWD = kernel("attention_fwd.wgsl");
const FWD_SUBGROUP = kernel("attention_fwd_subgroup.wgsl");
const DQ_SUBGROUP = kernel("attention_dq_subgroup.wgsl");
const DELTA = kernel("attention_delta.wgsl");
const BWD = kernel("attention_bwd.wgsl");
const PAD = kernel("attention_pad.wgsl");

let unroll = true;

/** Unrolls the "rows" kernels' head-dim loops (the default) or keeps them; returns the previous setting. */
export function setAttentionUnroll(on: boolean): boolean {
  const prev = unroll;
  unroll = on;
  return prev;
}

let subgroupKernels = true;

/**
 * Runs the rows variant's forward and dQ pass with K/V rows shared across a subgroup
 * (kernels/attention_fwd_subgroup.wgsl, kernels/attention_dq_subgroup.wgsl) where the device has subgroups of 8
 * lanes (the default), or on fwd_rows and dq_rows; returns the previous setting.
 */
export function setAttentionSubgroup(on: boolean): boolean {
  const prev = subgroupKernels;
  subgroupKernels = on;
  return prev;
}

/** Whether the forward and dQ pass of `pl` run on the subgroup kernels (they need the unrolled head-dim loops). */
function onSubgroup(pl: Plan): boolean {
  const { info } = gpu();
  const max = info.limits.maxComputeWorkgroupsPerDimension;
  return pl.variant === "rows" && unroll && subgroupKernels && hasSubgroupsOf8(info) &&
    pl.B * pl.H <= max && Math.ceil(pl.TQ / 16) <= max;
}

/** The kernel a dispatch of `pl` runs: `k`, or for the rows variant `k` unrolled for its head dim. */
function kernelFor(k: Kernel, pl: Plan): Kernel {
  return pl.variant === "rows" && unroll ? unrolledKernel(k, "d", "D4", pl.DP / 4) : k;
}

/**
 * The workgroups of a pass over query rows (the forward, dQ): tiles of rows (tiled), subgroups of 16 rows
 * (`shared`), or `pairs` invocations of two rows each.
 */
function queryRowGroups(pl: Plan, shared: boolean, pairs: number): [number, number] {
  if (pl.variant === "tiled") return [Math.ceil(pl.TQ / (WG / pl.ns)), pl.B * pl.H];
  return shared ? [Math.ceil(pl.TQ / 16), pl.B * pl.H] : grid1d(pairs, 64);
}

/** The largest head dimension the kernels hold in registers. */
export const ATTENTION_MAX_HEAD_DIM = 128;
/** Invocations per workgroup of the tiled kernels; fixed in the WGSL. */
const WG = 64;

export type AttentionVariant = "rows" | "tiled";

export interface AttentionOptions {
  /** [B, TK] i32 or f32: 1 (non-zero) = real token, 0 = padding key. */
  attentionMask?: Tensor;
  /**
   * [B, T, 2] i32: position t of row b belongs to the segment of positions [start, end) = (segments[b, t, 0],
   * segments[b, t, 1]), and sees only keys of that segment (packed sequences). Segments are consecutive runs:
   * start ≤ t < end, the same pair for every position of a run. Not with `attentionMask` or `keyLength`.
   *
   * [B, T, 4] i32, causal only: (start, end, holeStart, holeEnd). As a query, t sees the keys s of [start, t]
   * outside [holeStart, holeEnd); as a key, s is seen by the queries of [s, end). For a pair packed as [prefix |
   * chosen rest | rejected rest] (src/models/pack_pairs.ts): prefix positions have end = the segment's end and no
   * hole; chosen-rest positions end = the chosen rest's end; rejected-rest positions have the chosen rest as their
   * hole. The caller keeps both views consistent (no query of [s, end) has s in its hole).
   */
  segments?: Tensor;
  /**
   * With `segments`: the longest segment, in positions (known to the caller, who built them). No invocation of
   * the CPU kernels then visits more than one segment's keys, so a packed row of short sequences runs in one
   * dispatch whatever its total length (see LOOP_BUDGET). Default: T.
   */
  segmentSpan?: number;
  /** Mistral sliding window: query t sees only keys s with t − s < slidingWindow (a positive integer). */
  slidingWindow?: number;
  /** Softmax scale; 1/√D by default. */
  scale?: number;
  /** Causal masking (default true). */
  causal?: boolean;
  /** Kernel variant; by default "rows" on a CPU (fallback) adapter, "tiled" on a GPU. */
  variant?: AttentionVariant;
  /**
   * Only the first `keyLength` positions of k and v are keys; the rest is room to grow (a KV cache that appends
   * in place). Default: all of them. Forward only: a product that needs gradients must pass every position.
   */
  keyLength?: number;
  /** Tiled variant only: invocations sharing one query row (or key) — 1, 2, 4, …, 64; default 4. */
  splits?: number;
}

/** Everything a dispatch needs, validated once. */
interface Plan {
  /** The most keys (dK/dV: query positions) one invocation of a "rows" kernel may visit: TK, or 1 + the longest
   * segment with packed sequences (a pair of rows may straddle two segments). */
  span: number;
  B: number;
  H: number;
  HKV: number;
  TQ: number;
  TK: number;
  /** Positions per (batch, kv head) in k's and v's memory (≥ TK: a KV cache's capacity). */
  TKS: number;
  D: number;
  /** D rounded up to a multiple of 4: the kernels read vec4s; other head dims run on zero-padded copies. */
  DP: number;
  causal: boolean;
  window: number;
  scale: number;
  mask: Tensor | null;
  maskKind: number;
  variant: AttentionVariant;
  /** Keys (or query rows) per workgroup-memory tile in the tiled kernels. */
  bc: number;
  /** Tiled kernels: invocations per row (key); a workgroup covers 64 / ns rows (keys). */
  ns: number;
}

function shapeOf(t: Tensor): string {
  return `[${t.shape.join(", ")}]`;
}

function plan(q: Tensor, k: Tensor, v: Tensor, opts: AttentionOptions): Plan {
  for (const [name, t] of [["q", q], ["k", k], ["v", v]] as const) {
    if (t.ndim !== 4) throw new RangeError(`attention: ${name} must be 4-D [B, H, T, D], got ${shapeOf(t)}`);
    if (t.dtype !== "f32") throw new TypeError(`attention: ${name} must be f32, got ${t.dtype}`);
  }
  const [B, H, TQ, D] = q.shape;
  const [Bk, HKV, TKS, Dk] = k.shape;
  const TK = opts.keyLength ?? TKS;
  if (!Number.isInteger(TK) || TK < 0 || TK > TKS) {
    throw new RangeError(`attention: keyLength must be an integer in 0..${TKS} (k's positions), got ${TK}`);
  }
  if (Bk !== B || Dk !== D) {
    throw new RangeError(
      `attention: k ${shapeOf(k)} must be [B, HKV, TK, D] with B = ${B} and D = ${D} from q ${shapeOf(q)}`,
    );
  }
  if (v.shape.join() !== k.shape.join()) {
    throw new RangeError(`attention: v ${shapeOf(v)} must have k's shape ${shapeOf(k)}`);
  }
  if (HKV === 0 || H % HKV !== 0) {
    throw new RangeError(`attention: query heads (${H}) must be a multiple of kv heads (${HKV})`);
  }
  if (D < 1 || D > ATTENTION_MAX_HEAD_DIM) {
    throw new RangeError(`attention: head dim D = ${D} must be in 1..${ATTENTION_MAX_HEAD_DIM}`);
  }
  const causal = opts.causal ?? true;
  if (TQ > TK) {
    throw new RangeError(
      `attention: q has ${TQ} positions but k/v only ${TK}; queries must be the last TQ ≤ TK positions`,
    );
  }
  let window = 0;
  if (opts.slidingWindow !== undefined) {
    const w = opts.slidingWindow;
    if (!Number.isInteger(w) || w < 1) {
      throw new RangeError(`attention: slidingWindow must be a positive integer, got ${w}`);
    }
    if (!causal) throw new RangeError("attention: slidingWindow needs causal attention (causal: true)");
    // a window at least as long as the keys masks nothing
    window = w >= TK ? 0 : w;
  }
  const scale = opts.scale ?? 1 / Math.sqrt(D);
  if (!Number.isFinite(scale)) throw new RangeError(`attention: scale must be finite, got ${scale}`);
  const mask = opts.attentionMask ?? null;
  if (mask && (mask.ndim !== 2 || mask.shape[0] !== B || mask.shape[1] !== TK)) {
    throw new RangeError(`attention: attentionMask must be [B, TK] = [${B}, ${TK}], got ${shapeOf(mask)}`);
  }
  const segments = opts.segments ?? null;
  if (segments) {
    if (mask) throw new RangeError("attention: pass segments or an attentionMask, not both");
    if (TQ !== TK || TK !== TKS) {
      throw new RangeError(
        `attention: segments need queries and keys at the same positions (TQ = ${TQ}, keys ${TK} of ${TKS})`,
      );
    }
    const words = segments.shape[2];
    if (
      segments.dtype !== "i32" || segments.ndim !== 3 || segments.shape[0] !== B ||
      segments.shape[1] !== TK ||
      (words !== 2 && words !== 4)
    ) {
      throw new RangeError(
        `attention: segments must be i32 [B, T, 2] or [B, T, 4] with B = ${B}, T = ${TK}, got ${segments.dtype} ${
          shapeOf(segments)
        }`,
      );
    }
    if (words === 4 && !causal) throw new RangeError("attention: segments with holes need causal attention");
  }
  let span = TK;
  if (segments && opts.segmentSpan !== undefined) {
    const s = opts.segmentSpan;
    if (!Number.isInteger(s) || s < 1) throw new RangeError(`attention: segmentSpan must be ≥ 1, got ${s}`);
    span = Math.min(TK, s + 1);
  }
  const info = gpu().info;
  const variant = opts.variant ?? (info.isFallbackAdapter ? "rows" : "tiled");
  if (variant !== "rows" && variant !== "tiled") {
    throw new RangeError(`attention: variant must be "rows" or "tiled", got ${String(variant)}`);
  }
  // the tiled kernels stage two [bc, D4 + 1] vec4 tiles, two [bc] vectors and 32 (m, l) pairs in workgroup
  // memory; merging split partials reuses the tiles, which must then hold 32·D4 vec4s
  const DP = Math.ceil(D / 4) * 4;
  const D4 = DP / 4;
  let ns = opts.splits ?? 4;
  if (![1, 2, 4, 8, 16, 32, 64].includes(ns)) {
    throw new RangeError(`attention: splits must be a power of two in 1..64, got ${ns}`);
  }
  let bc = 32;
  while (bc > 4 && 2 * bc * (D4 + 1) * 16 + 8 * bc + 256 > info.limits.maxComputeWorkgroupStorageSize) {
    bc /= 2;
  }
  if (2 * bc * (D4 + 1) < 32 * D4) ns = 1;
  return {
    span,
    B,
    H,
    HKV,
    TQ,
    TK,
    TKS,
    D,
    DP,
    causal,
    window,
    scale,
    mask: mask ?? segments,
    maskKind: segments ? (segments.shape[2] === 4 ? 4 : 3) : mask ? (mask.dtype === "i32" ? 1 : 2) : 0,
    variant,
    bc,
    ns,
  };
}

/**
 * lavapipe ends an invocation silently after about 65 535 loop iterations in all, every loop of the invocation
 * counting (the inner loops over the head dimension too, where its compiler does not unroll them: dK/dV of
 * 2,100 keys with D = 64 and 3 query heads per kv head came out wrong). So the "rows" kernels visit the keys (dK/dV:
 * the query positions) in windows, one dispatch per window, each continuing what the earlier ones wrote, sized
 * so that one invocation stays under LOOP_BUDGET iterations counted as if no inner loop were unrolled. Short
 * sequences take one window. GPUs have no such limit: the tiled kernels take everything in one dispatch.
 *
 * Keys (forward, dQ) or query positions (dK/dV) per window of the "rows" kernels (LOOP_BUDGET:
 * src/gpu/loop_budget.ts).
 */
export function attentionWindow(pass: "fwd" | "dq" | "dkv", D: number, group: number): number {
  // a loop of n trips costs n + 1 (its exit test counts): per key (dK/dV: per query row and head) the outer
  // loop's trip and two head-dim loops of D4 + 1; the forward adds the block loops' own trips and rescale
  const D4 = Math.ceil(D / 4);
  if (pass === "fwd") return 8 * Math.floor(LOOP_BUDGET / (2 * D4 + 5) / 8); // keys come in blocks of 8
  if (pass === "dq") return Math.floor(LOOP_BUDGET / (2 * D4 + 3));
  return Math.floor(LOOP_BUDGET / (group * (2 * D4 + 3) + 1));
}

/**
 * Runs `fn(lo, hi, first)` over the keys [0, TK) in the windows of `pass` (see LOOP_BUDGET): one call with
 * [0, TK) for the tiled kernels (no loop limit) or when no invocation visits more than a window anyway
 * (pl.span ≤ TK).
 */
function overWindows(
  pl: Plan,
  pass: "fwd" | "dq" | "dkv",
  fn: (lo: number, hi: number, first: boolean) => void,
) {
  const n = pl.TK;
  const size = pl.variant === "tiled" ? null : attentionWindow(pass, pl.DP, pl.H / pl.HKV);
  if (size === null || pl.span <= size) return fn(0, Math.max(n, 1), true);
  for (let lo = 0; lo < n; lo += size) fn(lo, Math.min(n, lo + size), lo === 0);
}

/** The Params of attention_fwd.wgsl and attention_bwd.wgsl (the forward's also has TKS), for one window. */
function params(pl: Plan, rows: number, win: [number, number, boolean] = [0, pl.TK, true]): ParamValues {
  return {
    win_lo: win[0],
    win_hi: win[1],
    accumulate: !win[2],
    B: pl.B,
    H: pl.H,
    HKV: pl.HKV,
    TQ: pl.TQ,
    TK: pl.TK,
    causal: pl.causal,
    window: pl.window,
    rows,
    mask_kind: pl.maskKind,
    scale_log2: pl.scale * Math.LOG2E,
  };
}

function constants(pl: Plan, tiled: boolean): Record<string, number> {
  const c: Record<string, number> = { D4: pl.DP / 4 };
  if (tiled) {
    c.BC = pl.bc;
    c.NS = pl.ns;
  }
  return c;
}

/** Raw forward (no autograd): the output and the per-row logsumexp L [B, H, TQ] (-inf where no key is seen). */
export function attentionForwardRaw(
  q: Tensor,
  k: Tensor,
  v: Tensor,
  opts: AttentionOptions = {},
): { out: Tensor; lse: Tensor } {
  return forward(q, k, v, plan(q, k, v, opts));
}

/** [..., D] → [..., DP] with zero columns D..DP−1 (no autograd). */
function padHead(x: Tensor, D: number, DP: number): Tensor {
  const shape = [...x.shape.slice(0, -1), DP];
  const out = empty(shape);
  const n = out.size;
  if (n > 0) {
    dispatch({
      kernel: PAD,
      entry: "pad",
      params: { n, D, DP },
      buffers: [x.binding, out.binding],
      workgroups: grid1d(n, 256),
    });
  }
  return out;
}

/** [..., DP] → [..., D], dropping the padding columns (no autograd). */
function unpadHead(x: Tensor, D: number, DP: number): Tensor {
  const shape = [...x.shape.slice(0, -1), D];
  const out = empty(shape);
  const n = out.size;
  if (n > 0) {
    dispatch({
      kernel: PAD,
      entry: "unpad",
      params: { n, D, DP },
      buffers: [x.binding, out.binding],
      workgroups: grid1d(n, 256),
    });
  }
  return out;
}

/** Runs `fn` on head-dim-padded copies of `xs` when D is not a multiple of 4, unpadding what it returns. */
function withPadding<R extends Record<string, Tensor>>(
  pl: Plan,
  xs: Tensor[],
  fn: (...xs: Tensor[]) => R,
  padded: (keyof R)[],
): R {
  if (pl.DP === pl.D) return fn(...xs);
  const ps = xs.map((x) => padHead(x, pl.D, pl.DP));
  const res = fn(...ps);
  for (const p of ps) p.dispose();
  const out = { ...res };
  for (const key of padded) {
    const t = res[key];
    out[key] = unpadHead(t, pl.D, pl.DP) as R[keyof R];
    t.dispose();
  }
  return out;
}

function forward(q: Tensor, k: Tensor, v: Tensor, pl: Plan): { out: Tensor; lse: Tensor } {
  return withPadding(pl, [q, k, v], (qp, kp, vp) => {
    const out = empty(qp.shape);
    const lse = empty([pl.B, pl.H, pl.TQ]);
    if (pl.B * pl.H * pl.TQ === 0) return { out, lse };
    const tiled = pl.variant === "tiled";
    const shared = onSubgroup(pl);
    const work = tiled ? pl.B * pl.H * pl.TQ : pl.B * pl.H * Math.ceil(pl.TQ / 2);
    overWindows(pl, "fwd", (lo, hi, first) =>
      dispatch({
        kernel: kernelFor(shared ? FWD_SUBGROUP : FWD, pl),
        entry: tiled ? "fwd_tiled" : shared ? "fwd_subgroup" : "fwd_rows",
        constants: constants(pl, tiled),
        params: { ...params(pl, work, [lo, hi, first]), TKS: pl.TKS },
        buffers: [qp.binding, kp.binding, vp.binding, (pl.mask ?? qp).binding, out.binding, lse.binding],
        workgroups: queryRowGroups(pl, shared, work),
      }));
    return { out, lse };
  }, ["out"]);
}

/** Raw backward (no autograd): dq, dk, dv from the forward's output and logsumexp and the output gradient. */
export function attentionBackwardRaw(
  q: Tensor,
  k: Tensor,
  v: Tensor,
  out: Tensor,
  lse: Tensor,
  dout: Tensor,
  opts: AttentionOptions = {},
): { dq: Tensor; dk: Tensor; dv: Tensor } {
  const pl = plan(q, k, v, opts);
  if (out.size !== q.size || dout.size !== q.size || lse.size !== pl.B * pl.H * pl.TQ) {
    throw new RangeError(
      `attention backward: out ${shapeOf(out)} and dout ${shapeOf(dout)} must match q ${shapeOf(q)}, ` +
        `lse ${shapeOf(lse)} must hold B·H·TQ = ${pl.B * pl.H * pl.TQ} values`,
    );
  }
  return backwardPass(q, k, v, out, lse, dout, pl);
}

function backwardPass(
  q: Tensor,
  k: Tensor,
  v: Tensor,
  out: Tensor,
  lse: Tensor,
  dout: Tensor,
  pl: Plan,
): { dq: Tensor; dk: Tensor; dv: Tensor } {
  const qrows = pl.B * pl.H * pl.TQ;
  if (qrows === 0) {
    // no query rows: no key is seen by anyone, so every gradient is zero
    const g = { dq: empty(q.shape), dk: empty(k.shape), dv: empty(v.shape) };
    for (const t of Object.values(g)) clearBuffer(t.storage.buffer, 0, Math.max(4, t.bytes));
    return g;
  }
  // (L, Δ) per query row, from the unpadded output and its gradient
  const stats = empty([qrows, 2]);
  dispatch({
    kernel: DELTA,
    constants: { D: pl.D },
    params: { rows: qrows },
    buffers: [out.binding, dout.binding, lse.binding, stats.binding],
    workgroups: grid1d(qrows, 64),
  });
  const tiled = pl.variant === "tiled";
  const grads = withPadding(pl, [q, k, v, dout], (qp, kp, vp, dop) => {
    const dq = empty(qp.shape);
    const dk = empty(kp.shape);
    const dv = empty(vp.shape);
    const common = [qp.binding, kp.binding, vp.binding, (pl.mask ?? qp).binding, stats.binding, dop.binding];
    const qwork = tiled ? qrows : pl.B * pl.H * Math.ceil(pl.TQ / 2);
    const shared = onSubgroup(pl);
    overWindows(pl, "dq", (lo, hi, first) =>
      dispatch({
        kernel: kernelFor(shared ? DQ_SUBGROUP : BWD, pl),
        entry: tiled ? "dq_tiled" : shared ? "dq_subgroup" : "dq_rows",
        constants: constants(pl, tiled),
        params: params(pl, qwork, [lo, hi, first]),
        buffers: [...common, dq.binding],
        workgroups: queryRowGroups(pl, shared, qwork),
      }));
    const kwork = tiled ? pl.B * pl.HKV * pl.TK : pl.B * pl.HKV * Math.ceil(pl.TK / 2);
    // llvmpipe: dkv_rows reads each query's q and dO rows from textures (texture_operands.ts)
    const copies = !tiled && textureOperandsOn() ? new OperandCopies() : null;
    overWindows(pl, "dkv", (lo, hi, first) => {
      const tq = copies?.bind(0, qp.binding) ?? null;
      const tdo = tq && copies?.bind(1, dop.binding);
      dispatch({
        kernel: tq && tdo ? textureKernel(kernelFor(BWD, pl), ["q", "dout"]) : kernelFor(BWD, pl),
        entry: tiled ? "dkv_tiled" : "dkv_rows",
        constants: constants(pl, tiled),
        params: params(pl, kwork, [lo, hi, first]),
        // q (binding 1) and dO (binding 6) from their textures, the rest as the storage kernel binds them
        buffers: [...(tq && tdo ? [tq, ...common.slice(1, 5), tdo] : common), dk.binding, dv.binding],
        workgroups: tiled ? [Math.ceil(pl.TK / (WG / pl.ns)), pl.B * pl.HKV] : grid1d(kwork, 64),
      });
    });
    return { dq, dk, dv };
  }, ["dq", "dk", "dv"]);
  stats.dispose();
  return grads;
}

/**
 * Scaled-dot-product attention with autograd: q [B, H, TQ, D], k/v [B, HKV, TK, D] → [B, H, TQ, D].
 * Gradients flow to q, k and v (never to the mask).
 */
export function attention(q: Tensor, k: Tensor, v: Tensor, opts: AttentionOptions = {}): Tensor {
  const pl = plan(q, k, v, opts);
  if (pl.TK < pl.TKS && needsGrad(q, k, v)) {
    throw new RangeError(
      `attention: keyLength ${pl.TK} < ${pl.TKS} positions is for no-grad decoding; the backward needs every ` +
        "position of k and v as keys",
    );
  }
  const { out, lse } = forward(q, k, v, pl);
  if (!needsGrad(q, k, v)) {
    lse.dispose();
    return out;
  }
  // saved for backward: the output (a view of its own, so the caller may dispose `out`) and the logsumexp
  const saved = view(out, out.shape);
  return record("attention", [q, k, v], out, (dy) => {
    const { dq, dk, dv } = backwardPass(q, k, v, saved, lse, dy, pl);
    saved.dispose();
    lse.dispose();
    return [dq, dk, dv];
  });
}
