/**
 * A plain, slow float64 reference of a whole causal LM — the Llama family and GPT-2 — forward and backward, built
 * by composing the other references in this folder (norms, RoPE, attention, the elementwise and shape ops, the
 * logits product) on a tiny reverse-mode tape. Tests only; it shares no code with src/, so it is an independent
 * check of the models, the fused log-probs and the trainer.
 *
 * Parameters are a Map from Hugging Face state-dict names to row-major Float64Arrays: Llama linear weights are
 * [out, in] (`model.layers.{l}.self_attn.q_proj.weight`, …), GPT-2 Conv1D weights are [in, out] and carry the
 * `transformer.` prefix (`transformer.h.{l}.attn.c_attn.weight`, …). A tied LM head reads the token embedding,
 * whose gradient then holds both contributions.
 *
 * What it computes (transformers' LlamaForCausalLM / GPT2LMHeadModel in eval mode, eager attention):
 * - Position ids are cumsum(attentionMask) − 1 clamped at 0 per row (left padding keeps real tokens at 0, 1, …).
 * - Llama: embed → per layer [RMSNorm → q/k/v (+ bias) → RoPE (rotate_half; llama3 scaling when given) → causal
 *   GQA attention (sliding window where given) → o_proj → residual; RMSNorm → down(silu(gate)·up) → residual] →
 *   RMSNorm → LM head (embed_tokens when tied).
 * - GPT-2: wte + wpe[position] → per layer [LayerNorm (biased variance) → c_attn → split q, k, v → causal
 *   attention (scale 1/√D, or as `scale_attn_weights` / `scale_attn_by_inverse_layer_idx` in `raw` say) →
 *   c_proj → residual; LayerNorm → c_fc → gelu (tanh form) → c_proj → residual] → ln_f → LM head.
 * - Attention masks padding keys for every query. A query that sees no key at all (a left-padded position: every
 *   key up to it is padding) outputs a zero row and passes no gradient — webdpo's attention semantics (transformers
 *   gives such a row a uniform average instead; those positions are padding and never scored).
 */
import { binaryGradRef, binaryRef, unaryGradRef, type UnaryName, unaryRef } from "./elementwise.ts";
import { layerNormBackwardRef, layerNormRef, rmsNormBackwardRef, rmsNormRef } from "./norm.ts";
import { invFreqRef, ropeRef } from "./rope.ts";
import { attentionBackwardRef, attentionRef, type AttnRefOptions, type AttnShape } from "./attention.ts";
import { gatherRowsBackwardRef, gatherRowsRef, transposeRef } from "./shape.ts";
import { refLogits, refLogitsBackward } from "./logprobs.ts";

/** The fields of a model config the reference reads (src/models/config.ts's ModelConfig satisfies it). */
export interface RefModelConfig {
  architecture: "llama" | "gpt2";
  vocabSize: number;
  hiddenSize: number;
  intermediateSize: number;
  numLayers: number;
  numHeads: number;
  numKvHeads: number;
  headDim: number;
  normEps: number;
  /** Llama only. */
  ropeTheta: number;
  ropeScaling?: {
    factor: number;
    lowFreqFactor: number;
    highFreqFactor: number;
    originalMaxPositionEmbeddings: number;
  } | null;
  tieWordEmbeddings: boolean;
  /** Llama only (GPT-2's Conv1D layers always have biases). */
  qkvBias: boolean;
  oBias: boolean;
  mlpBias: boolean;
  /** Per layer: a sliding attention window (keys a query sees, itself included), or null. Llama only. */
  layerSlidingWindow?: (number | null)[];
  /** GPT-2: rows of `transformer.wpe.weight` (else read from the parameter's size). */
  maxPositionEmbeddings?: number;
  /** The config.json as read; GPT-2 reads `scale_attn_weights` and `scale_attn_by_inverse_layer_idx` here. */
  raw?: Record<string, unknown>;
}

export type RefParams = Map<string, Float64Array>;
/** Token ids or a mask, [B][T]. */
export type IdRows = readonly (readonly number[])[];

// ---------------------------------------------------------------------------------------------------------------
// The tape: values with shapes, and backward closures run in reverse order of recording.

/** A value on the tape: row-major data, its shape, and its gradient once backward has reached it. */
class Var {
  grad: Float64Array | null = null;
  constructor(readonly data: Float64Array, readonly shape: readonly number[]) {}
}

/** Adds d into v's gradient (allocated on first use). */
function accumulate(v: Var, d: ArrayLike<number>): void {
  const g = (v.grad ??= new Float64Array(v.data.length));
  for (let i = 0; i < g.length; i++) g[i] += d[i];
}

class Tape {
  private readonly steps: (() => void)[] = [];
  constructor(private readonly recording: boolean) {}

  /** A new value; its backward (given the value's gradient) runs during `backward` if the value got one. */
  node(data: Float64Array, shape: readonly number[], backward: (dy: Float64Array) => void): Var {
    const out = new Var(data, shape);
    if (this.recording) {
      this.steps.push(() => {
        if (out.grad) backward(out.grad);
      });
    }
    return out;
  }

  /** Seeds `out` with `seed` and runs every recorded backward step, newest first. */
  backward(out: Var, seed: ArrayLike<number>): void {
    if (!this.recording) throw new Error("reference: this tape did not record");
    if (seed.length !== out.data.length) {
      throw new RangeError(`reference: the seed has ${seed.length} values, the output ${out.data.length}`);
    }
    out.grad = Float64Array.from(seed);
    for (let i = this.steps.length - 1; i >= 0; i--) this.steps[i]();
  }

  // --- ops: each forward is a reference function, each backward the matching reference backward ---

  /** out[n, :] = table[ids[n], :] → [N, C]. */
  embed(table: Var, ids: Int32Array): Var {
    const [V, C] = table.shape;
    return this.node(gatherRowsRef(table.data, C, ids), [ids.length, C], (dy) => {
      accumulate(table, gatherRowsBackwardRef(dy, V, C, ids));
    });
  }

  /**
   * y = x·Wᵀ (+ b) for W stored [out, in] (nn.Linear), or y = x·W (+ b) for W stored [in, out] (Conv1D); x [N, in].
   * Both go through the logits reference z = h·Wᵀ, the Conv1D weight transposed first.
   */
  linear(x: Var, w: Var, b: Var | null, layout: "out_in" | "in_out"): Var {
    const N = x.shape[0];
    const [O, I] = layout === "out_in" ? w.shape : [w.shape[1], w.shape[0]];
    if (x.shape[1] !== I) {
      throw new RangeError(`reference: linear input width ${x.shape[1]}, weight expects ${I}`);
    }
    const wOI = layout === "out_in" ? w.data : transposeRef(w.data, 1, I, O);
    const xw = { data: refLogits(x.data, wOI, N, I, O), shape: [N, O] };
    const bias = b && { data: b.data, shape: [O] };
    const y = bias ? binaryRef("add", xw, bias).data : xw.data;
    return this.node(y, [N, O], (dy) => {
      const { dH, dW } = refLogitsBackward(dy, x.data, wOI, N, I, O);
      accumulate(x, dH);
      accumulate(w, layout === "out_in" ? dW : transposeRef(dW, 1, O, I));
      if (b && bias) accumulate(b, binaryGradRef("add", xw, bias, dy)[1]);
    });
  }

  /** a + b or a ⊙ b, same shapes. */
  binary(op: "add" | "mul", a: Var, b: Var): Var {
    const A = { data: a.data, shape: [...a.shape] };
    const B = { data: b.data, shape: [...b.shape] };
    const y = binaryRef(op, A, B);
    return this.node(y.data, y.shape, (dy) => {
      const [da, db] = binaryGradRef(op, A, B, dy);
      accumulate(a, da);
      accumulate(b, db);
    });
  }

  unary(op: UnaryName, x: Var): Var {
    return this.node(unaryRef(op, x.data), x.shape, (dy) => accumulate(x, unaryGradRef(op, x.data, dy)));
  }

  /** RMSNorm over the last axis. */
  rmsNorm(x: Var, w: Var, eps: number): Var {
    const C = w.data.length;
    return this.node(rmsNormRef(x.data, w.data, C, eps).y, x.shape, (dy) => {
      const { dx, dw } = rmsNormBackwardRef(dy, x.data, w.data, C, eps);
      accumulate(x, dx);
      accumulate(w, dw);
    });
  }

  /** LayerNorm over the last axis. */
  layerNorm(x: Var, w: Var, b: Var, eps: number): Var {
    const C = w.data.length;
    return this.node(layerNormRef(x.data, w.data, b.data, C, eps).y, x.shape, (dy) => {
      const { dx, dw, db } = layerNormBackwardRef(dy, x.data, w.data, C, eps);
      accumulate(x, dx);
      accumulate(w, dw);
      accumulate(b, db);
    });
  }

  /**
   * Columns [offset, offset + n·D) of x [B·T, W] as heads [B, n, T, D] (a reshape and permute; for GPT-2 also the
   * q/k/v split of the fused projection).
   */
  heads(x: Var, B: number, T: number, n: number, D: number, offset = 0): Var {
    const W = x.shape[1];
    const idx = (b: number, h: number, t: number, d: number) => (b * T + t) * W + offset + h * D + d;
    const out = new Float64Array(B * n * T * D);
    let o = 0;
    for (let b = 0; b < B; b++) {
      for (let h = 0; h < n; h++) {
        for (let t = 0; t < T; t++) for (let d = 0; d < D; d++) out[o++] = x.data[idx(b, h, t, d)];
      }
    }
    return this.node(out, [B, n, T, D], (dy) => {
      const dx = new Float64Array(x.data.length);
      let i = 0;
      for (let b = 0; b < B; b++) {
        for (let h = 0; h < n; h++) {
          for (let t = 0; t < T; t++) for (let d = 0; d < D; d++) dx[idx(b, h, t, d)] = dy[i++];
        }
      }
      accumulate(x, dx);
    });
  }

  /** Heads [B, H, T, D] back to rows [B·T, H·D]. */
  merge(x: Var): Var {
    const [B, H, T, D] = x.shape;
    const src = (b: number, t: number, h: number, d: number) => ((b * H + h) * T + t) * D + d;
    const out = new Float64Array(x.data.length);
    let o = 0;
    for (let b = 0; b < B; b++) {
      for (let t = 0; t < T; t++) {
        for (let h = 0; h < H; h++) for (let d = 0; d < D; d++) out[o++] = x.data[src(b, t, h, d)];
      }
    }
    return this.node(out, [B * T, H * D], (dy) => {
      const dx = new Float64Array(x.data.length);
      let i = 0;
      for (let b = 0; b < B; b++) {
        for (let t = 0; t < T; t++) {
          for (let h = 0; h < H; h++) for (let d = 0; d < D; d++) dx[src(b, t, h, d)] = dy[i++];
        }
      }
      accumulate(x, dx);
    });
  }

  /** RoPE on [B, n, T, D]; its backward is the rotation by the opposite angle (the transpose). */
  rope(x: Var, positions: Int32Array, invFreq: Float64Array): Var {
    const shape = x.shape as [number, number, number, number];
    return this.node(ropeRef(x.data, shape, positions, invFreq), x.shape, (dy) => {
      accumulate(x, ropeRef(dy, shape, positions, invFreq, { inverse: true }));
    });
  }

  /** Scaled-dot-product attention, q [B, H, T, D], k and v [B, HKV, T, D]. */
  attention(q: Var, k: Var, v: Var, opts: AttnRefOptions): Var {
    const [B, H, T, D] = q.shape;
    const sh: AttnShape = { B, H, HKV: k.shape[1], TQ: T, TK: T, D };
    return this.node(attentionRef(q.data, k.data, v.data, sh, opts).out, q.shape, (dy) => {
      const { dq, dk, dv } = attentionBackwardRef(q.data, k.data, v.data, dy, sh, opts);
      accumulate(q, dq);
      accumulate(k, dk);
      accumulate(v, dv);
    });
  }
}

// ---------------------------------------------------------------------------------------------------------------
// The models.

/** The state-dict names and shapes a config needs (tied heads have no lm_head.weight). */
export function referenceParamShapes(config: RefModelConfig, maxPositions?: number): Map<string, number[]> {
  const c = config;
  const C = c.hiddenSize, I = c.intermediateSize, D = c.headDim;
  const m = new Map<string, number[]>();
  if (c.architecture === "gpt2") {
    const P = maxPositions ?? c.maxPositionEmbeddings;
    if (P === undefined) throw new Error("reference: GPT-2 needs maxPositionEmbeddings");
    m.set("transformer.wte.weight", [c.vocabSize, C]);
    m.set("transformer.wpe.weight", [P, C]);
    for (let l = 0; l < c.numLayers; l++) {
      const p = `transformer.h.${l}`;
      for (const ln of ["ln_1", "ln_2"]) {
        m.set(`${p}.${ln}.weight`, [C]);
        m.set(`${p}.${ln}.bias`, [C]);
      }
      m.set(`${p}.attn.c_attn.weight`, [C, 3 * C]);
      m.set(`${p}.attn.c_attn.bias`, [3 * C]);
      m.set(`${p}.attn.c_proj.weight`, [C, C]);
      m.set(`${p}.attn.c_proj.bias`, [C]);
      m.set(`${p}.mlp.c_fc.weight`, [C, I]);
      m.set(`${p}.mlp.c_fc.bias`, [I]);
      m.set(`${p}.mlp.c_proj.weight`, [I, C]);
      m.set(`${p}.mlp.c_proj.bias`, [C]);
    }
    m.set("transformer.ln_f.weight", [C]);
    m.set("transformer.ln_f.bias", [C]);
  } else {
    const Q = c.numHeads * D, KV = c.numKvHeads * D;
    m.set("model.embed_tokens.weight", [c.vocabSize, C]);
    for (let l = 0; l < c.numLayers; l++) {
      const p = `model.layers.${l}`;
      m.set(`${p}.input_layernorm.weight`, [C]);
      m.set(`${p}.self_attn.q_proj.weight`, [Q, C]);
      m.set(`${p}.self_attn.k_proj.weight`, [KV, C]);
      m.set(`${p}.self_attn.v_proj.weight`, [KV, C]);
      if (c.qkvBias) {
        m.set(`${p}.self_attn.q_proj.bias`, [Q]);
        m.set(`${p}.self_attn.k_proj.bias`, [KV]);
        m.set(`${p}.self_attn.v_proj.bias`, [KV]);
      }
      m.set(`${p}.self_attn.o_proj.weight`, [C, Q]);
      if (c.oBias) m.set(`${p}.self_attn.o_proj.bias`, [C]);
      m.set(`${p}.post_attention_layernorm.weight`, [C]);
      m.set(`${p}.mlp.gate_proj.weight`, [I, C]);
      m.set(`${p}.mlp.up_proj.weight`, [I, C]);
      m.set(`${p}.mlp.down_proj.weight`, [C, I]);
      if (c.mlpBias) {
        m.set(`${p}.mlp.gate_proj.bias`, [I]);
        m.set(`${p}.mlp.up_proj.bias`, [I]);
        m.set(`${p}.mlp.down_proj.bias`, [C]);
      }
    }
    m.set("model.norm.weight", [C]);
  }
  if (!c.tieWordEmbeddings) m.set("lm_head.weight", [c.vocabSize, C]);
  return m;
}

/** Flattens [B][T] rows, checking they are rectangular integers. */
function flatRows(rows: IdRows, what: string): { data: Int32Array; B: number; T: number } {
  const B = rows.length;
  const T = B ? rows[0].length : 0;
  if (B === 0 || T === 0) throw new RangeError(`reference: ${what} is empty [${B}, ${T}]`);
  const data = new Int32Array(B * T);
  rows.forEach((row, b) => {
    if (row.length !== T) {
      throw new RangeError(`reference: ${what} row ${b} has ${row.length} entries, not ${T}`);
    }
    row.forEach((v, t) => {
      if (!Number.isInteger(v)) {
        throw new RangeError(`reference: ${what}[${b}][${t}] = ${v} is not an integer`);
      }
      data[b * T + t] = v;
    });
  });
  return { data, B, T };
}

/** cumsum(mask) − 1, clamped at 0, per row. */
export function referencePositions(mask: Int32Array, B: number, T: number): Int32Array {
  const pos = new Int32Array(B * T);
  for (let b = 0; b < B; b++) {
    let c = 0;
    for (let t = 0; t < T; t++) {
      if (mask[b * T + t] !== 0) c++;
      pos[b * T + t] = Math.max(0, c - 1);
    }
  }
  return pos;
}

interface Built {
  tape: Tape;
  vars: Map<string, Var>;
  logits: Var;
}

/** Runs the model on the tape; `vars` are the parameters as tape values. */
function build(
  config: RefModelConfig,
  params: RefParams,
  inputIds: IdRows,
  attentionMask: IdRows | undefined,
  record: boolean,
): Built {
  const c = config;
  const { data: ids, B, T } = flatRows(inputIds, "inputIds");
  let mask: Int32Array = new Int32Array(B * T).fill(1);
  if (attentionMask) {
    const m = flatRows(attentionMask, "attentionMask");
    if (m.B !== B || m.T !== T) {
      throw new RangeError(`reference: attentionMask is [${m.B}, ${m.T}], inputIds [${B}, ${T}]`);
    }
    mask = m.data;
  }
  for (const id of ids) {
    if (id < 0 || id >= c.vocabSize) {
      throw new RangeError(`reference: token id ${id} outside vocab ${c.vocabSize}`);
    }
  }
  const positions = referencePositions(mask, B, T);

  // parameters, checked by name and size
  const wpeRows = c.architecture === "gpt2"
    ? (c.maxPositionEmbeddings ?? (params.get("transformer.wpe.weight")?.length ?? 0) / c.hiddenSize)
    : undefined;
  const shapes = referenceParamShapes(c, wpeRows);
  const vars = new Map<string, Var>();
  for (const [name, shape] of shapes) {
    const data = params.get(name);
    const n = shape.reduce((a, b) => a * b, 1);
    if (!data) throw new RangeError(`reference: parameter "${name}" [${shape}] is missing`);
    if (data.length !== n) {
      throw new RangeError(
        `reference: parameter "${name}" has ${data.length} values, expected [${shape}] = ${n}`,
      );
    }
    vars.set(name, new Var(data, shape));
  }
  const P = (name: string) => vars.get(name)!;
  const maybe = (name: string) => vars.get(name) ?? null;

  const tape = new Tape(record);
  const C = c.hiddenSize, H = c.numHeads, HKV = c.numKvHeads, D = c.headDim;
  let x: Var;
  let head: Var;
  if (c.architecture === "llama") {
    if (H % HKV !== 0) throw new RangeError(`reference: ${H} heads are not a multiple of ${HKV} KV heads`);
    const invFreq = invFreqRef(D, c.ropeTheta, c.ropeScaling ?? undefined);
    x = tape.embed(P("model.embed_tokens.weight"), ids);
    for (let l = 0; l < c.numLayers; l++) {
      const p = `model.layers.${l}`;
      const lin = (v: Var, m: string) =>
        tape.linear(v, P(`${p}.${m}.weight`), maybe(`${p}.${m}.bias`), "out_in");
      const a = tape.rmsNorm(x, P(`${p}.input_layernorm.weight`), c.normEps);
      const q = tape.rope(tape.heads(lin(a, "self_attn.q_proj"), B, T, H, D), positions, invFreq);
      const k = tape.rope(tape.heads(lin(a, "self_attn.k_proj"), B, T, HKV, D), positions, invFreq);
      const v = tape.heads(lin(a, "self_attn.v_proj"), B, T, HKV, D);
      const window = c.layerSlidingWindow?.[l] ?? undefined;
      const o = tape.attention(q, k, v, { mask, causal: true, window });
      x = tape.binary("add", x, lin(tape.merge(o), "self_attn.o_proj"));
      const m = tape.rmsNorm(x, P(`${p}.post_attention_layernorm.weight`), c.normEps);
      const gate = tape.unary("silu", lin(m, "mlp.gate_proj"));
      x = tape.binary("add", x, lin(tape.binary("mul", gate, lin(m, "mlp.up_proj")), "mlp.down_proj"));
    }
    x = tape.rmsNorm(x, P("model.norm.weight"), c.normEps);
    head = c.tieWordEmbeddings ? P("model.embed_tokens.weight") : P("lm_head.weight");
  } else {
    if (H * D !== C) throw new RangeError(`reference: GPT-2 needs numHeads·headDim = hiddenSize`);
    for (const p of positions) {
      if (p >= wpeRows!) {
        throw new RangeError(`reference: position ${p} exceeds the ${wpeRows} learned positions`);
      }
    }
    const scaleWeights = c.raw?.scale_attn_weights !== false;
    const byLayer = c.raw?.scale_attn_by_inverse_layer_idx === true;
    x = tape.binary(
      "add",
      tape.embed(P("transformer.wte.weight"), ids),
      tape.embed(P("transformer.wpe.weight"), positions),
    );
    for (let l = 0; l < c.numLayers; l++) {
      const p = `transformer.h.${l}`;
      const conv = (v: Var, m: string) =>
        tape.linear(v, P(`${p}.${m}.weight`), P(`${p}.${m}.bias`), "in_out");
      const a = tape.layerNorm(x, P(`${p}.ln_1.weight`), P(`${p}.ln_1.bias`), c.normEps);
      const qkv = conv(a, "attn.c_attn");
      const [q, k, v] = [0, 1, 2].map((i) => tape.heads(qkv, B, T, H, D, i * C));
      const scale = (scaleWeights ? 1 / Math.sqrt(D) : 1) / (byLayer ? l + 1 : 1);
      const o = tape.attention(q, k, v, { mask, causal: true, scale });
      x = tape.binary("add", x, conv(tape.merge(o), "attn.c_proj"));
      const m = tape.layerNorm(x, P(`${p}.ln_2.weight`), P(`${p}.ln_2.bias`), c.normEps);
      x = tape.binary("add", x, conv(tape.unary("gelu", conv(m, "mlp.c_fc")), "mlp.c_proj"));
    }
    x = tape.layerNorm(x, P("transformer.ln_f.weight"), P("transformer.ln_f.bias"), c.normEps);
    head = c.tieWordEmbeddings ? P("transformer.wte.weight") : P("lm_head.weight");
  }
  const logits = tape.linear(x, head, null, "out_in");
  return { tape, vars, logits };
}

/** Logits [B, T, V] (flat, float64) for token ids [B][T] and a 0/1 attention mask [B][T] (default all ones). */
export function referenceForward(
  config: RefModelConfig,
  params: RefParams,
  inputIds: IdRows,
  attentionMask?: IdRows,
): Float64Array {
  return build(config, params, inputIds, attentionMask, false).logits.data;
}

/**
 * The forward, and a function giving d(Σ dLogits·logits)/d(parameter) for every parameter of the config (zeros
 * where a parameter does not reach the logits). The backward may be called once.
 */
export function referenceForwardBackward(
  config: RefModelConfig,
  params: RefParams,
  inputIds: IdRows,
  attentionMask?: IdRows,
): { logits: Float64Array; backward: (dLogits: ArrayLike<number>) => Map<string, Float64Array> } {
  const { tape, vars, logits } = build(config, params, inputIds, attentionMask, true);
  let used = false;
  return {
    logits: logits.data,
    backward: (dLogits) => {
      if (used) throw new Error("reference: backward was already run for this forward");
      used = true;
      tape.backward(logits, dLogits);
      const grads = new Map<string, Float64Array>();
      for (const [name, v] of vars) grads.set(name, v.grad ?? new Float64Array(v.data.length));
      return grads;
    },
  };
}

/** d(Σ dLogits·logits)/d(parameter), by name, for logits [B, T, V] = referenceForward(…). */
export function referenceGradients(
  config: RefModelConfig,
  params: RefParams,
  inputIds: IdRows,
  attentionMask: IdRows | undefined,
  dLogits: ArrayLike<number>,
): Map<string, Float64Array> {
  return referenceForwardBackward(config, params, inputIds, attentionMask).backward(dLogits);
}
