/**
 * The materialised LM-head logits h·Wᵀ (generation, and the materialised baseline of the fused log-probs), with
 * their backward. Kernels: logprob_logits.wgsl (entry `logits`), logprob_backward.wgsl (`dh`, `dw`).
 */
import { dispatch } from "../../gpu/queue.ts";
import { empty, type Tensor } from "../../tensor/tensor.ts";
import { record } from "../record.ts";
import {
  BACKWARD,
  lmHeadShapes,
  LOGITS,
  LOOP_CAP,
  padCols,
  pieces,
  range,
  reshapeRaw,
  rowBlock,
  TILE,
  unpadCols,
} from "./lm_head.ts";

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
