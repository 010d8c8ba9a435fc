/**
 * Padding-free batches of preference pairs whose common prefix runs once (ForwardOptions.packed = "pairs").
 *
 * A DPO batch holds 2·P rows: rows i and P + i are the chosen and the rejected sequence of pair i, and both
 * start with the same prompt. A causal model's hidden state at a position depends only on the tokens up to it,
 * so the two sequences' common prefix (the prompt, and any first tokens the answers share) has the same hidden
 * states in both: it runs once. Each pair becomes one segment of the packed row,
 *
 *   [ prefix (L tokens) | chosen rest (Lc − L) | rejected rest (Lr − L) ]
 *
 * at the positions each token has in its own sequence (the rejected rest starts again at position L). In the
 * attention (segments [1, N, 4], src/autograd/ops/attention.ts), a rejected-rest query sees the prefix and the
 * rejected rest but not the chosen rest (its hole), and a chosen-rest key is seen only by the chosen rest. Every
 * value is that of the two sequences run apart (up to float rounding): the shared rows' gradients are the sums of
 * what the two sequences send them. On hh-rlhf-like data, where the prompt is as long as both answers, a pair
 * costs about a third less in every layer.
 *
 * @module
 */
import type { HostBatch } from "./causal_lm.ts";

/** One pair in a packed row: its common prefix, then the rest of the chosen and of the rejected sequence. */
export interface PairSpan {
  prefix: number;
  chosen: number;
  rejected: number;
}

/** A packed pair batch: one row of N tokens, the attention's segment words, and where each [b, t] went. */
export interface PackedPairs extends HostBatch {
  /** [N, 4] (start, end, holeStart, holeEnd) per packed position, as attention's 4-word segments take them. */
  segments: Int32Array;
  /** [B·T] of the input batch: the packed row of each position, −1 for padding. Both rows of a pair map their
   * common prefix to the same packed rows. */
  rows: Int32Array;
  /** The longest segment (a pair's prefix + both rests), for the attention's loop windows. */
  span: number;
  /** The pairs' spans, in order. */
  spans: PairSpan[];
}

/**
 * The attention's [N, 4] segment words for pairs laid end to end: per position (start, end, holeStart,
 * holeEnd). Prefix positions are seen by every later position of the pair, chosen-rest positions only by the
 * chosen rest, and a rejected-rest query skips the chosen rest. A pair without a common prefix is two plain
 * segments.
 */
export function pairSegments(spans: PairSpan[]): Int32Array {
  const N = spans.reduce((n, s) => n + s.prefix + s.chosen + s.rejected, 0);
  const out = new Int32Array(4 * N);
  let s0 = 0;
  for (const { prefix, chosen, rejected } of spans) {
    const chosenStart = s0 + prefix, chosenEnd = chosenStart + chosen, end = chosenEnd + rejected;
    for (let t = s0; t < chosenStart; t++) out.set([s0, end, 0, 0], 4 * t);
    for (let t = chosenStart; t < chosenEnd; t++) out.set([s0, chosenEnd, 0, 0], 4 * t);
    const shared = prefix > 0;
    const rejectedWords = shared ? [s0, end, chosenStart, chosenEnd] : [chosenEnd, end, 0, 0];
    for (let t = chosenEnd; t < end; t++) out.set(rejectedWords, 4 * t);
    s0 = end;
  }
  return out;
}

/** The real tokens of row b: their columns t (attention mask ≠ 0), in order. */
function realColumns(h: HostBatch, b: number): number[] {
  const cols: number[] = [];
  for (let t = 0; t < h.T; t++) if (!h.mask || h.mask[b * h.T + t] !== 0) cols.push(t);
  return cols;
}

/**
 * Packs a batch of 2·P rows (rows i and P + i a pair) with each pair's common prefix run once. The prefix is the
 * longest run of leading real tokens with the same id at the same position in both rows.
 */
export function packPairs(h: HostBatch): PackedPairs {
  if (h.mask && h.mask.length !== h.B * h.T) {
    throw new RangeError("packed: a batch with cached positions cannot be packed (no KV cache with packed)");
  }
  if (h.B % 2 !== 0) throw new RangeError(`packed pairs: the batch needs an even number of rows, got ${h.B}`);
  const P = h.B / 2;
  const rows = new Int32Array(h.B * h.T).fill(-1);
  const ids: number[] = [], positions: number[] = [];
  const spans: PairSpan[] = [];
  const take = (b: number, t: number) => {
    ids.push(h.ids[b * h.T + t]);
    positions.push(h.positions[b * h.T + t]);
    return ids.length - 1;
  };
  for (let i = 0; i < P; i++) {
    const c = realColumns(h, i), r = realColumns(h, P + i);
    let L = 0;
    while (
      L < c.length && L < r.length && h.ids[i * h.T + c[L]] === h.ids[(P + i) * h.T + r[L]] &&
      h.positions[i * h.T + c[L]] === h.positions[(P + i) * h.T + r[L]]
    ) L++;
    for (let u = 0; u < L; u++) {
      const n = take(i, c[u]);
      rows[i * h.T + c[u]] = n;
      rows[(P + i) * h.T + r[u]] = n;
    }
    for (let u = L; u < c.length; u++) rows[i * h.T + c[u]] = take(i, c[u]);
    for (let u = L; u < r.length; u++) rows[(P + i) * h.T + r[u]] = take(P + i, r[u]);
    spans.push({ prefix: L, chosen: c.length - L, rejected: r.length - L });
  }
  const N = ids.length;
  if (N === 0) throw new RangeError("packed: the attention mask leaves no real token to run");
  const span = spans.reduce((m, s) => Math.max(m, s.prefix + s.chosen + s.rejected), 1);
  return {
    B: 1,
    T: N,
    ids: Int32Array.from(ids),
    mask: null,
    positions: Int32Array.from(positions),
    segments: pairSegments(spans),
    rows,
    span,
    spans,
  };
}
