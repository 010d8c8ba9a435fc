/**
 * Per-token log-probabilities of labels under an LM head, the heart of DPO's memory cost.
 *
 * `fusedLogProbs(h [N, C], W [V, C], labels [N])` = log softmax(h·Wᵀ)[label] per row, computed over vocabulary
 * chunks with a running max / logsumexp, so the [N, V] logits never exist: extra memory is O(N·chunk). The forward
 * saves the per-row logsumexp; the backward recomputes each chunk's logits from it, forms
 * dLogit[n, v] = d_n·(1[v = label_n] − softmax_nv) and produces dH (accumulated over chunks) and dW (each chunk's
 * rows written once, summed over all N rows inside one invocation: deterministic, no atomics).
 * `fusedLogProbsWithStats` also returns, from the same pass and without gradient, the sum of the logits over the
 * vocabulary (`logits/chosen` = its mean over scored positions, divided by V) and log Σ_v p_v² (WPO).
 *
 * Kernels: logprob_logits.wgsl (chunk logits, dLogits), logprob_stats.wgsl (running max / logsumexp, the label's
 * logit, the statistics), logprob_backward.wgsl (dH, dW). Labels: see labels.ts.
 * On CPU adapters the three products of each chunk (logits h·Wᵀ, dH += dLogits·W, dW = dLogitsᵀ·h) run on the
 * matmul kernels instead (`gemm`: the register or subgroup kernel, which load less per FMA than the LM head's own
 * 8×8 and 8×4 tiles), and logprob_dlogits.wgsl turns the recomputed logits into dLogits in place.
 */
import { bindingLimit } from "../../gpu/binding.ts";
import { cpuKernels } from "../../gpu/device.ts";
import { GpuLimitError } from "../../gpu/errors.ts";
import { kernel } from "../../gpu/kernel.ts";
import { dispatch, grid1d } from "../../gpu/queue.ts";
import { tensor } from "../../tensor/create.ts";
import { empty, type Tensor } from "../../tensor/tensor.ts";
import { needsGrad, record } from "../record.ts";
import { concat } from "./concat.ts";
import { gemm, isRegisterVariant, matmulVariant } from "./gemm.ts";
import { gatherRows } from "./gather_rows.ts";
import {
  checkIgnore,
  flattenLabels,
  IGNORE_INDEX,
  isHostLabels,
  type Labels,
  uploadLabels,
} from "./labels.ts";
import {
  BACKWARD,
  lmHeadShapes,
  LOGITS,
  LOOP_CAP,
  padCols,
  pieces,
  range,
  reshapeRaw,
  TILE,
  unpadCols,
} from "./lm_head.ts";
import { reshape } from "./reshape.ts";

const STATS = kernel("logprob_stats.wgsl");
const DLOGITS = kernel("logprob_dlogits.wgsl");

/** Whether the chunk products run on the matmul kernels (CPU adapters: see the header). */
function productsOnGemm(): boolean {
  return isRegisterVariant(matmulVariant());
}

/** out[M, N] (+)= op(A)·op(B) over whole tensors from element offsets, through the matmul kernels. */
function product(
  a: Tensor,
  aOff: number,
  b: Tensor,
  bOff: number,
  out: Tensor,
  outOff: number,
  M: number,
  N: number,
  K: number,
  o: { transA?: boolean; transB?: boolean; accumulate?: boolean },
): void {
  gemm({
    a: { t: a, off: aOff, stride: 0 },
    b: { t: b, off: bOff, stride: 0 },
    c: { t: out, off: outOff, stride: 0 },
    M,
    N,
    K,
    batch: 1,
    transA: o.transA ?? false,
    transB: o.transB ?? false,
    accumulate: o.accumulate ?? false,
    alpha: 1,
  });
}

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

const SCRATCH_BYTES = 8 * 1024 * 1024;

/**
 * Invocations per row in the statistics kernel: 1 on CPU adapters (lavapipe runs an invocation per SIMD lane and
 * workgroup barriers are costly there: one row per invocation measured ~10× faster), 64 on GPUs (coalesced reads).
 */
function statsLanes(): number {
  return cpuKernels() ? 1 : 64;
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
  const onGemm = productsOnGemm();
  for (let v0 = 0; v0 < V; v0 += chunk) {
    const vc = Math.min(chunk, V - v0);
    // the matmul kernels write the chunk's logits as a contiguous [N, vc]
    const ldz = onGemm ? vc : chunk;
    if (onGemm) {
      product(hp, 0, wp, v0 * CP, scratch, 0, N, vc, CP, { transB: true });
    } else {
      dispatch({
        kernel: LOGITS,
        entry: "logits",
        params: { N, VC: vc, C4, LDZ: chunk, VBASE: whole ? v0 : 0, VLAB: v0, ignore },
        buffers: [hp.binding, whole ? wp.binding : range(wp, v0 * CP, vc * CP), scratch.binding],
        workgroups: [Math.ceil(vc / TILE), Math.ceil(N / TILE)],
      });
    }
    dispatch({
      kernel: STATS,
      params: { N, VC: vc, LDZ: ldz, VLAB: v0, V, FIRST: v0 === 0, LAST: v0 + vc >= V, ignore },
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
  if (productsOnGemm()) {
    for (let v0 = 0; v0 < V; v0 += chunk) {
      const vc = Math.min(chunk, V - v0);
      // g = this chunk's logits as a contiguous [N, vc], then dLogits in place
      product(hp, 0, wp, v0 * CP, g, 0, N, vc, CP, { transB: true });
      dispatch({
        kernel: DLOGITS,
        params: { N, VC: vc, LDZ: vc, VLAB: v0, ignore },
        buffers: [g.binding, lab.binding, lse.binding, dy.binding],
        workgroups: grid1d(N * Math.ceil(vc / 8), 64),
      });
      if (dH) product(g, 0, wp, v0 * CP, dH, 0, N, CP, vc, { accumulate: v0 > 0 });
      if (dW) product(g, 0, hp, 0, dW, v0 * CP, vc, CP, N, { transA: true });
    }
    g.dispose();
    return [dH, dW];
  }
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
  if (hRows && !isHostLabels(labels)) throw new RangeError("fusedLogProbs: hRows needs host labels");
  if (!isHostLabels(labels) || (!hRows && (opts.scoredRowsOnly === false || h.shape.length < 2))) {
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
