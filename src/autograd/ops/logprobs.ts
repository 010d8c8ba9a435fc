/**
 * Per-token log-probabilities of labels under an LM head, and per-sequence sums of them — the heart of DPO's
 * memory cost.
 *
 * - `fusedLogProbs(h [N, C], W [V, C], labels [N])` = log softmax(h·Wᵀ)[label] per row, computed over vocabulary
 *   chunks with a running max / logsumexp, so the [N, V] logits never exist: extra memory is O(N·chunk). The
 *   forward saves the per-row logsumexp; the backward recomputes each chunk's logits from it, forms
 *   dLogit[n, v] = d_n·(1[v = label_n] − softmax_nv) and produces dH (accumulated over chunks) and dW (each chunk's
 *   rows written once, summed over all N rows inside one invocation: deterministic, no atomics).
 *   `fusedLogProbsWithStats` also returns, from the same pass and without gradient, the sum of the logits over the
 *   vocabulary (`logits/chosen` = its mean over scored positions, divided by V) and log Σ_v p_v² (WPO).
 * - `lmHeadLogits(h, W)` materialises the [N, V] logits (generation, and the materialised baseline);
 *   `logSoftmaxGather(logits, labels)` is the plain version for callers that hold logits.
 * - `shiftLabels` and `sequenceLogps` implement the causal shift and the per-sequence sums (SPEC "Batches and
 *   log-probs").
 *
 * Labels equal to `ignoreIndex` (default -100) score 0 and get no gradient. Labels given as host arrays are
 * validated (a label outside [0, V) that is not `ignoreIndex` throws, naming its position); labels given as an
 * i32 tensor cannot be checked without a readback, so an out-of-range label there yields NaN for that row.
 */
import { bindingLimit, exactRange } from "../../gpu/binding.ts";
import { cpuKernels } from "../../gpu/device.ts";
import { GpuLimitError } from "../../gpu/errors.ts";
import { kernel } from "../../gpu/kernel.ts";
import { checkLoopBudget } from "../../gpu/loop_budget.ts";
import { type BufferBinding, dispatch, grid1d } from "../../gpu/queue.ts";
import { tensor } from "../../tensor/create.ts";
import { empty, type Tensor, view } from "../../tensor/tensor.ts";
import { needsGrad, record } from "../record.ts";
import { concat } from "./concat.ts";
import { gatherRows } from "./gather_rows.ts";
import { reshape } from "./reshape.ts";

const LOGITS = kernel("logprob_logits.wgsl");
const BACKWARD = kernel("logprob_backward.wgsl");
const STATS = kernel("logprob_stats.wgsl");
const GATHER = kernel("logprob_gather.wgsl");
const SEQ = kernel("logprob_seq.wgsl");
const PAD = kernel("logprob_pad.wgsl");

/** Hugging Face's `label_pad_token_id` / PyTorch's cross-entropy `ignore_index` default. */
export const IGNORE_INDEX = -100;

/** Labels: an i32 tensor already on the GPU, or host integers (validated, then uploaded). */
export type Labels = Tensor | Int32Array | readonly number[];

/** Host labels: flat, or one array per row. */
export type HostLabels = Int32Array | readonly number[] | readonly (readonly number[])[];

export interface FusedLogProbsOptions {
  /** Label value that is not scored (default -100). */
  ignoreIndex?: number;
  /**
   * Vocabulary entries per chunk. Default: as many as keep the [N, chunk] scratch near 8 MiB (a multiple of 64,
   * at most V). Any positive integer works; it is lowered to 16384 (longer loops stop early on lavapipe) and where a
   * storage binding would be too large.
   */
  chunk?: number;
  /**
   * With host labels, run the LM head only on the rows whose label is scored (default true): the hidden states
   * of those rows are gathered, scored, and the results put back in place (0 elsewhere), so prompt and padding
   * positions — most of a DPO batch — cost nothing in the V-wide products. Same values and gradients.
   */
  scoredRowsOnly?: boolean;
  /**
   * Host labels whose positions are not h's rows one to one (a packed, padding-free h: see ForwardOptions.packed):
   * label position n is scored with h's row `hRows[n]` (−1 where the label is ignored). The results are then
   * laid out like the labels. Implies `scoredRowsOnly`.
   */
  hRows?: Int32Array;
}

/** What `fusedLogProbsWithStats` returns; every tensor is [N] (the leading dimensions of h). */
export interface FusedLogProbsResult {
  /** log p(label) per row, 0 where the label is ignored. Differentiable with respect to h and W. */
  logps: Tensor;
  /** Σ_v logit[n, v] (no gradient). */
  logitSum: Tensor;
  /** log Σ_v p[n, v]² = logsumexp(2z) − 2·logsumexp(z) (no gradient). */
  logSumP2: Tensor;
}

// ---------------------------------------------------------------------------------------------------------------
// helpers

const TILE = 64; // rows / vocabulary entries covered by one 8×8 workgroup of the tiled kernels (8 × 8 per invocation)
const SCRATCH_BYTES = 8 * 1024 * 1024;
/**
 * Longest loop one invocation may run: lavapipe (llvmpipe) stops an invocation after 65535 loop iterations in all,
 * silently. Chunks are capped at this, and the K dimension of the backward products is split into pieces of it
 * (accumulated in order). A multiple of 64, so row pieces keep 256-byte-aligned binding offsets.
 */
const LOOP_CAP = 16384;

/** [start, count] pieces of [0, K), each at most LOOP_CAP long. */
function pieces(K: number): [number, number][] {
  const out: [number, number][] = [];
  for (let k0 = 0; k0 < K; k0 += LOOP_CAP) out.push([k0, Math.min(LOOP_CAP, K - k0)]);
  return out;
}

/**
 * Invocations per row in the statistics kernel: 1 on CPU adapters (lavapipe runs an invocation per SIMD lane and
 * workgroup barriers are costly there: one row per invocation measured ~10× faster), 64 on GPUs (coalesced reads).
 */
function statsLanes(): number {
  return cpuKernels() ? 1 : 64;
}

/** The byte range of `count` f32/i32 elements of `t` starting at element `start` (planned to be aligned). */
function range(t: Tensor, start: number, count: number): BufferBinding {
  return exactRange(t.binding.buffer, start * 4, count * 4);
}

function isHost(x: unknown): x is HostLabels {
  return x instanceof Int32Array || Array.isArray(x);
}

/** Flattens host labels to an Int32Array, checking that each value is an integer. */
export function flattenLabels(labels: HostLabels): Int32Array {
  if (labels instanceof Int32Array) return labels;
  const rows = labels as readonly unknown[];
  const flat = rows.length > 0 && Array.isArray(rows[0])
    ? (rows as readonly (readonly number[])[]).flat()
    : (rows as readonly number[]);
  const out = new Int32Array(flat.length);
  for (let i = 0; i < flat.length; i++) {
    const v = flat[i];
    if (!Number.isInteger(v)) throw new TypeError(`labels[${i}] is ${v}, expected an integer token id`);
    out[i] = v;
  }
  return out;
}

/** The labels as an i32 tensor of n elements; host labels are validated against [0, V) ∪ {ignore} first. */
export function uploadLabels(what: string, labels: Labels, n: number, V: number, ignore: number): Tensor {
  if (!isHost(labels)) {
    const t = labels as Tensor;
    if (t.dtype !== "i32") throw new TypeError(`${what}: labels must be an i32 tensor, got ${t.dtype}`);
    if (t.size !== n) {
      throw new RangeError(`${what}: expected ${n} labels (one per row), got shape [${t.shape}]`);
    }
    return t;
  }
  const flat = flattenLabels(labels);
  if (flat.length !== n) {
    throw new RangeError(`${what}: expected ${n} labels (one per row), got ${flat.length}`);
  }
  for (let i = 0; i < n; i++) {
    const v = flat[i];
    if (v !== ignore && (v < 0 || v >= V)) {
      throw new RangeError(
        `${what}: label ${v} at position ${i} is outside the vocabulary [0, ${V}) and is not ignoreIndex ${ignore}`,
      );
    }
  }
  return tensor(flat, [n], { dtype: "i32" });
}

function checkIgnore(ignore: number): void {
  if (!Number.isInteger(ignore) || ignore < -0x80000000 || ignore > 0x7fffffff) {
    throw new RangeError(`ignoreIndex must be a 32-bit integer, got ${ignore}`);
  }
}

/** h [..., C] and W [V, C]: returns N (rows), C, V and the output shape (h's leading dimensions). */
function lmHeadShapes(
  what: string,
  h: Tensor,
  W: Tensor,
): { N: number; C: number; V: number; out: number[] } {
  if (h.dtype !== "f32" || W.dtype !== "f32") throw new TypeError(`${what}: h and W must be f32 tensors`);
  if (h.ndim < 2) throw new RangeError(`${what}: h must be [N, C] (or [B, T, C]), got shape [${h.shape}]`);
  if (W.ndim !== 2) throw new RangeError(`${what}: W must be [V, C], got shape [${W.shape}]`);
  const C = h.shape[h.ndim - 1];
  if (W.shape[1] !== C) {
    throw new RangeError(`${what}: h has ${C} channels but W is [${W.shape}]; expected W of shape [V, ${C}]`);
  }
  const V = W.shape[0];
  if (V < 1 || C < 1) throw new RangeError(`${what}: V and C must be at least 1 (W is [${W.shape}])`);
  // the logits kernels walk C in vec4 steps, then store 8 rows of at most 8 entries each (loops of ≤ 9)
  checkLoopBudget(
    `${what} with ${C} channels`,
    Math.ceil(C / 4) + 1 + 8 * 9,
    "hidden sizes this large need a GPU adapter",
  );
  const out = h.shape.slice(0, -1);
  return { N: out.reduce((a, b) => a * b, 1), C, V, out };
}

/** x [R, C] as [R, CP] with CP = C rounded up to 4 (x itself when C is already a multiple of 4). */
function padCols(x: Tensor, R: number, C: number): Tensor {
  const CP = Math.ceil(C / 4) * 4;
  if (CP === C) return x;
  const out = empty([R, CP]);
  dispatch({
    kernel: PAD,
    entry: "pad",
    params: { R, C, CP },
    buffers: [x.binding, out.binding],
    workgroups: grid1d(R * CP, 256),
  });
  return out;
}

/** x [R, CP] back to [R, C] (x itself when CP = C; otherwise x is disposed). */
function unpadCols(x: Tensor, R: number, C: number, shape: readonly number[]): Tensor {
  const CP = Math.ceil(C / 4) * 4;
  if (CP === C) return x;
  const out = empty(shape);
  dispatch({
    kernel: PAD,
    entry: "unpad",
    params: { R, C, CP },
    buffers: [x.binding, out.binding],
    workgroups: grid1d(R * C, 256),
  });
  x.dispose();
  return out;
}

interface ChunkPlan {
  chunk: number;
  /** W (and dW) fit one binding: bind them whole and address the chunk by VBASE; else bind each chunk's range. */
  whole: boolean;
}

function planChunks(what: string, N: number, V: number, CP: number, requested?: number): ChunkPlan {
  const maxB = bindingLimit();
  if (requested !== undefined && (!Number.isInteger(requested) || requested < 1)) {
    throw new RangeError(`${what}: chunk must be a positive integer, got ${requested}`);
  }
  let chunk = requested ?? Math.max(64, Math.floor(SCRATCH_BYTES / (4 * N) / 64) * 64);
  chunk = Math.min(chunk, V, LOOP_CAP, Math.floor(maxB / (4 * N)));
  if (chunk < 1) {
    throw new GpuLimitError(
      `${what}: ${N} rows do not fit one storage binding (${maxB} bytes) even one vocabulary entry at a time; ` +
        `pass fewer rows per call`,
    );
  }
  const whole = V * CP * 4 <= maxB;
  if (!whole) {
    // chunk ranges of W start at v0·CP·4 bytes: a multiple of 256 when v0 is a multiple of 64
    chunk = Math.min(chunk, Math.floor(maxB / (CP * 4)));
    chunk = Math.floor(chunk / 64) * 64;
    if (chunk < 64) {
      throw new GpuLimitError(
        `${what}: W [${V}, ${CP}] exceeds one storage binding and ${N} rows leave no room for a 64-entry chunk`,
      );
    }
  }
  return { chunk, whole };
}

// ---------------------------------------------------------------------------------------------------------------
// fused forward / backward (no graph)

interface FusedRaw {
  logps: Tensor;
  lse: Tensor;
  logitSum: Tensor;
  logSumP2: Tensor;
}

function fusedForwardRaw(
  hp: Tensor,
  wp: Tensor,
  lab: Tensor,
  N: number,
  V: number,
  CP: number,
  ignore: number,
  plan: ChunkPlan,
): FusedRaw {
  const { chunk, whole } = plan;
  const logps = empty([N]);
  const lse = empty([N]);
  const logitSum = empty([N]);
  const logSumP2 = empty([N]);
  const scratch = empty([N, chunk]);
  const state = empty([N, 5]);
  const C4 = CP / 4;
  const lanes = statsLanes();
  for (let v0 = 0; v0 < V; v0 += chunk) {
    const vc = Math.min(chunk, V - v0);
    dispatch({
      kernel: LOGITS,
      entry: "logits",
      params: { N, VC: vc, C4, LDZ: chunk, VBASE: whole ? v0 : 0, VLAB: v0, ignore },
      buffers: [hp.binding, whole ? wp.binding : range(wp, v0 * CP, vc * CP), scratch.binding],
      workgroups: [Math.ceil(vc / TILE), Math.ceil(N / TILE)],
    });
    dispatch({
      kernel: STATS,
      params: { N, VC: vc, LDZ: chunk, VLAB: v0, V, FIRST: v0 === 0, LAST: v0 + vc >= V, ignore },
      buffers: [
        scratch.binding,
        lab.binding,
        state.binding,
        logps.binding,
        lse.binding,
        logitSum.binding,
        logSumP2.binding,
      ],
      constants: { LANES: lanes },
      workgroups: grid1d(N, 64 / lanes),
    });
  }
  scratch.dispose();
  state.dispose();
  return { logps, lse, logitSum, logSumP2 };
}

function fusedBackwardRaw(
  hp: Tensor,
  wp: Tensor,
  lab: Tensor,
  lse: Tensor,
  dy: Tensor,
  N: number,
  V: number,
  CP: number,
  ignore: number,
  plan: ChunkPlan,
  wantH: boolean,
  wantW: boolean,
): [Tensor | null, Tensor | null] {
  const { chunk, whole } = plan;
  const C4 = CP / 4;
  const dH = wantH ? empty([N, CP]) : null;
  const dW = wantW ? empty([V, CP]) : null;
  const g = empty([N, chunk]);
  for (let v0 = 0; v0 < V; v0 += chunk) {
    const vc = Math.min(chunk, V - v0);
    const wb = whole ? wp.binding : range(wp, v0 * CP, vc * CP);
    const vbase = whole ? v0 : 0;
    dispatch({
      kernel: LOGITS,
      entry: "dlogits",
      params: { N, VC: vc, C4, LDZ: chunk, VBASE: vbase, VLAB: v0, ignore },
      buffers: [hp.binding, wb, g.binding, lab.binding, lse.binding, dy.binding],
      workgroups: [Math.ceil(vc / TILE), Math.ceil(N / TILE)],
    });
    if (dH) {
      // K = vc ≤ LOOP_CAP (chunks are capped)
      dispatch({
        kernel: BACKWARD,
        entry: "dh",
        params: { R: N, K: vc, C4, LDG: chunk, MBASE: vbase, OBASE: 0, ACC: v0 > 0, KBASE: 0 },
        buffers: [g.binding, wb, dH.binding],
        workgroups: [Math.ceil(C4 / 32), Math.ceil(N / TILE)],
      });
    }
    if (dW) {
      // this chunk's dW rows, summed over all N rows in pieces of at most LOOP_CAP rows (accumulated in order)
      const ob = whole ? dW.binding : range(dW, v0 * CP, vc * CP);
      for (const [k0, kc] of pieces(N)) {
        dispatch({
          kernel: BACKWARD,
          entry: "dw",
          params: { R: vc, K: kc, C4, LDG: chunk, MBASE: 0, OBASE: vbase, ACC: k0 > 0, KBASE: k0 },
          buffers: [g.binding, hp.binding, ob],
          workgroups: [Math.ceil(C4 / 32), Math.ceil(vc / TILE)],
        });
      }
    }
  }
  g.dispose();
  return [dH, dW];
}

function fusedImpl(
  h: Tensor,
  W: Tensor,
  labels: Labels,
  opts: FusedLogProbsOptions,
): FusedLogProbsResult {
  const what = "fusedLogProbs";
  const ignore = opts.ignoreIndex ?? IGNORE_INDEX;
  checkIgnore(ignore);
  const { N, C, V, out } = lmHeadShapes(what, h, W);
  const lab = uploadLabels(what, labels, N, V, ignore);
  const ownLabels = lab !== labels;
  if (N === 0) {
    if (ownLabels) lab.dispose();
    return { logps: empty(out), logitSum: empty(out), logSumP2: empty(out) };
  }
  const CP = Math.ceil(C / 4) * 4;
  const plan = planChunks(what, N, V, CP, opts.chunk);
  const hp = padCols(h, N, C);
  const wp = padCols(W, V, C);
  const raw = fusedForwardRaw(hp, wp, lab, N, V, CP, ignore, plan);
  if (hp !== h) hp.dispose();
  if (wp !== W) wp.dispose();
  const logps = raw.logps.shape.join() === out.join() ? raw.logps : reshapeRaw(raw.logps, out);
  const keepState = needsGrad(h, W);
  if (!keepState) raw.lse.dispose();
  let result: Tensor = logps;
  if (keepState) {
    const lse = raw.lse;
    result = record("fusedLogProbs", [h, W], logps, (dy) => {
      const hp2 = padCols(h, N, C);
      const wp2 = padCols(W, V, C);
      const [dHp, dWp] = fusedBackwardRaw(
        hp2,
        wp2,
        lab,
        lse,
        dy,
        N,
        V,
        CP,
        ignore,
        plan,
        h.requiresGrad,
        W.requiresGrad,
      );
      if (hp2 !== h) hp2.dispose();
      if (wp2 !== W) wp2.dispose();
      // the saved state is used once: backward() drops the node after this call
      lse.dispose();
      if (ownLabels) lab.dispose();
      return [
        dHp ? unpadCols(dHp, N, C, h.shape) : null,
        dWp ? unpadCols(dWp, V, C, W.shape) : null,
      ];
    });
  } else if (ownLabels) lab.dispose();
  return {
    logps: result,
    logitSum: reshapeRaw(raw.logitSum, out),
    logSumP2: reshapeRaw(raw.logSumP2, out),
  };
}

/** The same storage under another shape, releasing the original handle (no copy, no graph). */
function reshapeRaw(t: Tensor, shape: readonly number[]): Tensor {
  if (t.shape.join() === shape.join()) return t;
  const v = view(t, shape);
  t.dispose();
  return v;
}

/**
 * log softmax(h·Wᵀ)[label] for each row of h [N, C] (or [B, T, C]) with W [V, C], never materialising the [N, V]
 * logits. Returns [N] (h's leading dimensions); ignored rows give 0. Differentiable with respect to h and W
 * (W may be the tied input embedding).
 */
export function fusedLogProbs(h: Tensor, W: Tensor, labels: Labels, opts: FusedLogProbsOptions = {}): Tensor {
  const r = scoredImpl(h, W, labels, opts, false);
  r.logitSum?.dispose();
  r.logSumP2?.dispose();
  return r.logps;
}

/** `fusedLogProbs` plus the per-row logit sum and log Σ p² from the same pass (those two without gradient). */
export function fusedLogProbsWithStats(
  h: Tensor,
  W: Tensor,
  labels: Labels,
  opts: FusedLogProbsOptions = {},
): FusedLogProbsResult {
  const r = scoredImpl(h, W, labels, opts, true);
  return { logps: r.logps, logitSum: r.logitSum!, logSumP2: r.logSumP2! };
}

/**
 * `fusedImpl` on the scored rows only (see `scoredRowsOnly`): h's scored rows are gathered into [S, C]; each
 * [S] result is put back in place by a second gather from [result; 0] (position n takes its compact row, or
 * the zero row S), so both directions are differentiable gathers and ignored rows get exactly 0 and no gradient.
 */
function scoredImpl(
  h: Tensor,
  W: Tensor,
  labels: Labels,
  opts: FusedLogProbsOptions,
  stats: boolean,
): Partial<FusedLogProbsResult> & { logps: Tensor } {
  const hRows = opts.hRows;
  if (hRows && !isHost(labels)) throw new RangeError("fusedLogProbs: hRows needs host labels");
  if (!isHost(labels) || (!hRows && (opts.scoredRowsOnly === false || h.shape.length < 2))) {
    return fusedImpl(h, W, labels, opts);
  }
  const ignore = opts.ignoreIndex ?? IGNORE_INDEX;
  const flat = flattenLabels(labels);
  const C = h.shape[h.shape.length - 1];
  const NH = h.size / C;
  const N = hRows ? flat.length : NH;
  if (flat.length !== N) return fusedImpl(h, W, labels, opts); // fusedImpl reports the mismatch
  if (hRows && hRows.length !== N) {
    throw new RangeError(`fusedLogProbs: hRows has ${hRows.length} entries for ${N} labels`);
  }
  let S = 0;
  for (let n = 0; n < N; n++) if (flat[n] !== ignore) S++;
  if (!hRows && (S === N || S === 0)) return fusedImpl(h, W, labels, opts);
  if (S === 0) throw new RangeError("fusedLogProbs: hRows with no scored label");
  // the k-th scored label: its row of h and its value; place[n] = k (S for an ignored label)
  const rows = new Int32Array(S);
  const scored = new Int32Array(S);
  const place = new Int32Array(N).fill(S);
  for (let n = 0, k = 0; n < N; n++) {
    if (flat[n] !== ignore) {
      const r = hRows ? hRows[n] : n;
      if (!(r >= 0 && r < NH)) {
        throw new RangeError(`fusedLogProbs: label ${n} is scored but hRows gives h row ${r} (h has ${NH})`);
      }
      rows[k] = r;
      scored[k] = flat[n];
      place[n] = k++;
    }
  }
  const out = hRows ? [N] : h.shape.slice(0, -1);
  const hS = gatherRows(reshape(h, [NH, C]), rows);
  const r = fusedImpl(hS, W, scored, { ...opts, scoredRowsOnly: false, hRows: undefined });
  const zero = tensor(new Float32Array(1), [1, 1]);
  const back = (t: Tensor) => reshape(gatherRows(concat([reshape(t, [S, 1]), zero]), place), out);
  // the statistics are put back in place only for callers that want them
  const result = stats
    ? { logps: back(r.logps), logitSum: back(r.logitSum), logSumP2: back(r.logSumP2) }
    : { logps: back(r.logps) };
  r.logitSum.dispose();
  r.logSumP2.dispose();
  if (!needsGrad(h, W)) { for (const t of [hS, r.logps, zero]) t.dispose(); }
  return result;
}

// ---------------------------------------------------------------------------------------------------------------
// materialised logits and the plain log-softmax gather

/** Rows per block so that a [rows, width] f32 block fits one binding (a multiple of 64 when blocks are needed). */
function rowBlock(what: string, N: number, width: number): number {
  const maxB = bindingLimit();
  if (N * width * 4 <= maxB) return N;
  const rb = Math.floor(maxB / (width * 4) / 64) * 64;
  if (rb < 64) {
    throw new GpuLimitError(`${what}: rows of ${width} values are too wide for 64-row blocks of one binding`);
  }
  return rb;
}

function logitsRaw(hp: Tensor, wp: Tensor, N: number, V: number, CP: number): Tensor {
  const out = empty([N, V]);
  const rb = rowBlock("lmHeadLogits", N, Math.max(V, CP));
  for (let r0 = 0; r0 < N; r0 += rb) {
    const r = Math.min(rb, N - r0);
    dispatch({
      kernel: LOGITS,
      entry: "logits",
      params: { N: r, VC: V, C4: CP / 4, LDZ: V, VBASE: 0, VLAB: 0, ignore: 0 },
      buffers: [range(hp, r0 * CP, r * CP), wp.binding, range(out, r0 * V, r * V)],
      workgroups: [Math.ceil(V / TILE), Math.ceil(r / TILE)],
    });
  }
  return out;
}

/**
 * The materialised logits h·Wᵀ: h [N, C] (or [B, T, C]), W [V, C] → [N, V] (or [B, T, V]), with backward
 * dH = dZ·W (row blocks) and dW = dZᵀ·h (accumulated over row blocks in order, deterministic). Memory is N·V·4
 * bytes; prefer `fusedLogProbs` for log-probs of labels.
 */
export function lmHeadLogits(h: Tensor, W: Tensor): Tensor {
  const { N, C, V, out } = lmHeadShapes("lmHeadLogits", h, W);
  const shape = [...out, V];
  if (N === 0) return empty(shape);
  const CP = Math.ceil(C / 4) * 4;
  const hp = padCols(h, N, C);
  const wp = padCols(W, V, C);
  const z = reshapeRaw(logitsRaw(hp, wp, N, V, CP), shape);
  if (hp !== h) hp.dispose();
  if (wp !== W) wp.dispose();
  return record("lmHeadLogits", [h, W], z, (dz) => {
    const C4 = CP / 4;
    const hp2 = padCols(h, N, C);
    const wp2 = padCols(W, V, C);
    const rb = rowBlock("lmHeadLogits backward", N, Math.max(V, CP));
    let dH: Tensor | null = null;
    let dW: Tensor | null = null;
    if (h.requiresGrad) {
      dH = empty([N, CP]);
      for (let r0 = 0; r0 < N; r0 += rb) {
        const r = Math.min(rb, N - r0);
        for (const [k0, kc] of pieces(V)) {
          dispatch({
            kernel: BACKWARD,
            entry: "dh",
            params: { R: r, K: kc, C4, LDG: V, MBASE: 0, OBASE: 0, ACC: k0 > 0, KBASE: k0 },
            buffers: [range(dz, r0 * V, r * V), wp2.binding, range(dH, r0 * CP, r * CP)],
            workgroups: [Math.ceil(C4 / 32), Math.ceil(r / TILE)],
          });
        }
      }
    }
    if (W.requiresGrad) {
      // summed over all rows: row blocks of at most LOOP_CAP rows (a multiple of 64), accumulated in order
      dW = empty([V, CP]);
      const rbw = Math.min(rb, LOOP_CAP);
      for (let r0 = 0; r0 < N; r0 += rbw) {
        const r = Math.min(rbw, N - r0);
        dispatch({
          kernel: BACKWARD,
          entry: "dw",
          params: { R: V, K: r, C4, LDG: V, MBASE: 0, OBASE: 0, ACC: r0 > 0, KBASE: 0 },
          buffers: [range(dz, r0 * V, r * V), range(hp2, r0 * CP, r * CP), dW.binding],
          workgroups: [Math.ceil(C4 / 32), Math.ceil(V / TILE)],
        });
      }
    }
    if (hp2 !== h) hp2.dispose();
    if (wp2 !== W) wp2.dispose();
    return [dH ? unpadCols(dH, N, C, h.shape) : null, dW ? unpadCols(dW, V, C, W.shape) : null];
  });
}

/**
 * log softmax(logits)[label] per row, for callers that already hold logits [..., V]; labels has one entry per
 * row. Returns the leading shape; ignored rows give 0. Backward: dLogits = d·(onehot(label) − softmax), 0 on
 * ignored rows. Logits larger than one storage binding are processed in row blocks.
 */
export function logSoftmaxGather(logits: Tensor, labels: Labels, ignoreIndex: number = IGNORE_INDEX): Tensor {
  const what = "logSoftmaxGather";
  checkIgnore(ignoreIndex);
  if (logits.dtype !== "f32") throw new TypeError(`${what}: logits must be f32`);
  if (logits.ndim < 1) throw new RangeError(`${what}: logits must be [N, V], got a scalar`);
  const V = logits.shape[logits.ndim - 1];
  const out = logits.shape.slice(0, -1);
  const N = out.reduce((a, b) => a * b, 1);
  if (V < 1) throw new RangeError(`${what}: the vocabulary dimension is empty (shape [${logits.shape}])`);
  const lab = uploadLabels(what, labels, N, V, ignoreIndex);
  const ownLabels = lab !== labels;
  if (N === 0) {
    if (ownLabels) lab.dispose();
    return empty(out);
  }
  // one workgroup of 64 per row: two strided passes over V and a tree of 6 steps
  checkLoopBudget(
    `${what} over ${V} logits per row`,
    2 * (Math.ceil(V / 64) + 1) + 7,
    "rows this long need a GPU adapter",
  );
  const logp = empty(out);
  const lse = empty([N]);
  const rb = rowBlock(what, N, V);
  for (let r0 = 0; r0 < N; r0 += rb) {
    const r = Math.min(rb, N - r0);
    dispatch({
      kernel: GATHER,
      entry: "forward",
      params: { R: r, V, ROW0: r0, ignore: ignoreIndex },
      buffers: [range(logits, r0 * V, r * V), lab.binding, logp.binding, lse.binding],
      workgroups: grid1d(r, 1),
    });
  }
  if (!needsGrad(logits)) {
    lse.dispose();
    if (ownLabels) lab.dispose();
    return logp;
  }
  return record("logSoftmaxGather", [logits], logp, (dy) => {
    const dz = empty(logits.shape);
    for (let r0 = 0; r0 < N; r0 += rb) {
      const r = Math.min(rb, N - r0);
      dispatch({
        kernel: GATHER,
        entry: "backward",
        params: { R: r, V, ROW0: r0, ignore: ignoreIndex },
        buffers: [
          range(logits, r0 * V, r * V),
          lab.binding,
          range(dz, r0 * V, r * V),
          lse.binding,
          dy.binding,
        ],
        workgroups: grid1d(r * V, 256),
      });
    }
    lse.dispose();
    if (ownLabels) lab.dispose();
    return [dz];
  });
}

// ---------------------------------------------------------------------------------------------------------------
// the causal shift and per-sequence sums

/**
 * The causal one-position shift, on host labels [B, T]: out[b, t] = labels[b, t + 1] for t < T − 1 and
 * `ignoreIndex` at t = T − 1. Position t's logits (computed from hidden state t) score the next token, so
 * `fusedLogProbs(h [B·T, C], W, shiftLabels(labels, [B, T]))` gives token log-probs aligned with positions 0..T−1:
 * the first label of each row is never scored and the last position scores nothing, with no copy of h.
 * (Equivalently a caller may pass hidden states of positions 0..T−2 with labels 1..T−1.)
 */
export function shiftLabels(
  labels: HostLabels,
  shape: readonly [number, number],
  ignoreIndex: number = IGNORE_INDEX,
): Int32Array {
  const [B, T] = shape;
  const flat = flattenLabels(labels);
  if (flat.length !== B * T) {
    throw new RangeError(`shiftLabels: ${flat.length} labels do not form the shape [${B}, ${T}]`);
  }
  const out = new Int32Array(B * T);
  for (let b = 0; b < B; b++) {
    for (let t = 0; t < T - 1; t++) out[b * T + t] = flat[b * T + t + 1];
    if (T > 0) out[b * T + T - 1] = ignoreIndex;
  }
  return out;
}

export interface SequenceLogpsOptions {
  ignoreIndex?: number;
  /** Divide each row's sum by its number of scored labels (IPO, WPO means). Default false: sums. */
  average?: boolean;
}

export interface SequenceLogps {
  /** [B]: per-sequence Σ of the scored token log-probs (or their mean with `average`). Differentiable. */
  logps: Tensor;
  /** Number of scored labels per sequence (host values; all ≥ 1). */
  counts: Int32Array;
}

/** out[b] = scale[b]·Σ_t x[b, t]·1[label ≠ ignore], recorded with its backward. */
export function maskedRowSum(
  x: Tensor,
  lab: Tensor,
  scale: Tensor,
  B: number,
  T: number,
  ignore: number,
): Tensor {
  const out = empty([B]);
  // one workgroup of 64 per row: a strided pass over T and a tree of 6 steps
  checkLoopBudget(`maskedRowSum over ${T} tokens per row`, Math.ceil(T / 64) + 1 + 7, "pass shorter rows");
  if (B > 0) {
    dispatch({
      kernel: SEQ,
      entry: "forward",
      params: { B, T, ignore },
      buffers: [x.binding, lab.binding, scale.binding, out.binding],
      workgroups: grid1d(B, 1),
    });
  }
  return record("maskedRowSum", [x], out, (dy) => {
    const dx = empty(x.shape);
    if (B * T > 0) {
      dispatch({
        kernel: SEQ,
        entry: "backward",
        params: { B, T, ignore },
        buffers: [dy.binding, lab.binding, scale.binding, dx.binding],
        workgroups: grid1d(B * T, 256),
      });
    }
    return [dx];
  });
}

/**
 * Per-sequence log-probs from token log-probs [B, T] (e.g. `fusedLogProbs` output reshaped), with host labels
 * [B, T] aligned with them — that is, already shifted with `shiftLabels` (position t holds the label its logits
 * score). Σ over positions whose label is not `ignoreIndex` (SPEC: Σ_t log softmax(logits[t−1])[labels[t]] over
 * t ≥ 1, labels[t] ≠ −100, before the shift). A sequence with no scored label throws, naming the row.
 */
export function sequenceLogps(
  tokenLogps: Tensor,
  labels: HostLabels,
  opts: SequenceLogpsOptions = {},
): SequenceLogps {
  const ignore = opts.ignoreIndex ?? IGNORE_INDEX;
  checkIgnore(ignore);
  if (tokenLogps.ndim !== 2) {
    throw new RangeError(`sequenceLogps: token log-probs must be [B, T], got shape [${tokenLogps.shape}]`);
  }
  const [B, T] = tokenLogps.shape;
  const flat = flattenLabels(labels);
  if (flat.length !== B * T) {
    throw new RangeError(
      `sequenceLogps: expected ${B * T} labels for [${B}, ${T}] token log-probs, got ${flat.length}`,
    );
  }
  const counts = new Int32Array(B);
  for (let b = 0; b < B; b++) {
    let c = 0;
    for (let t = 0; t < T; t++) if (flat[b * T + t] !== ignore) c++;
    if (c === 0) {
      throw new RangeError(
        `sequenceLogps: sequence ${b} has no scored label (every label is ignoreIndex ${ignore}); ` +
          `its log-prob would be empty — check the prompt/completion lengths and truncation of that row`,
      );
    }
    counts[b] = c;
  }
  const lab = tensor(flat, [B * T], { dtype: "i32" });
  const scale = tensor(Float32Array.from(counts, (c) => (opts.average ? 1 / c : 1)), [B]);
  const logps = maskedRowSum(tokenLogps, lab, scale, B, T, ignore);
  if (!logps.requiresGrad) {
    lab.dispose();
    scale.dispose();
  }
  return { logps, counts };
}
