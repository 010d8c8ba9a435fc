/**
 * The interface every model implementation (llama.ts, gpt2.ts) provides, and the input handling they share:
 * token ids, attention masks and position ids given as nested arrays or typed arrays with a shape.
 */
import { checkpoint } from "../autograd/checkpoint.ts";
import { gatherRows } from "../autograd/ops/gather_rows.ts";
import { isGradEnabled } from "../autograd/grad_mode.ts";
import { scope } from "../autograd/scope.ts";
import { WebDPOError } from "../gpu/errors.ts";
import { LinearHooks } from "../nn/linear_hook.ts";
import { Module } from "../nn/module.ts";
import { tensor } from "../tensor/create.ts";
import type { Tensor } from "../tensor/tensor.ts";
import type { ModelConfig } from "./config.ts";
import type { KVCache } from "./kv_cache.ts";
import { packPairs } from "./pack_pairs.ts";

/** Token ids (or a mask, or positions): `number[][]` [B][T], or a flat Int32Array with its [B, T] shape. */
export type { LinearHook } from "../nn/linear_hook.ts";

export type IdBatch = number[][] | { data: Int32Array; shape: [number, number] };

export interface ForwardOptions {
  /** 1 for real tokens, 0 for padding; [B, T]. Default: all ones. */
  attentionMask?: IdBatch;
  /** Positions [B, T]. Default: cumsum(attentionMask) − 1 (so left padding keeps real tokens at 0, 1, …). */
  positionIds?: IdBatch;
  /**
   * A KV cache (generation): the new tokens attend to every cached position too. `attentionMask` then covers the
   * cached and the new positions, [B, cache.length + T].
   */
  cache?: KVCache;
  /**
   * Padding-free: the real tokens (attentionMask ≠ 0) of all rows run as one packed row of N tokens, each row's
   * tokens attending only to each other, at their own positions; no work is spent on padding. The result is then
   * [1, N, C] (hiddenStates) or [1, N, V] (forward), its rows the real tokens in row-major order: `packedRows`
   * maps [b, t] to them. Same values as the padded batch at every real token (up to float rounding of the
   * attention's key order). Not with a KV cache.
   *
   * "pairs": the same, for a batch of preference pairs (rows i and B/2 + i): each pair's common prefix runs once
   * (src/models/pack_pairs.ts, whose `rows` maps [b, t] to the packed rows then).
   */
  packed?: boolean | "pairs";
  /**
   * The token ids as an i32 GPU tensor of inputIds' shape, used in their place by the embedding lookup (greedy
   * decoding feeds the previous step's argmax back without reading it; `generate`). inputIds then only gives the
   * batch's shape. No gradient flows to the embedding then, so only under no-grad.
   */
  deviceIds?: Tensor;
}

/** A batch of token ids on the host, validated. */
export interface HostBatch {
  B: number;
  T: number;
  ids: Int32Array;
  /** [B, past + T] (past = cached positions), or null for all ones. */
  mask: Int32Array | null;
  positions: Int32Array;
}

function toFlat(x: IdBatch, what: string): { data: Int32Array; B: number; T: number } {
  if (Array.isArray(x)) {
    const B = x.length;
    const T = B ? x[0].length : 0;
    const data = new Int32Array(B * T);
    x.forEach((row, b) => {
      if (row.length !== T) {
        throw new RangeError(`${what}: row ${b} has ${row.length} entries, row 0 has ${T}`);
      }
      for (let t = 0; t < T; t++) {
        const v = row[t];
        if (!Number.isInteger(v)) throw new RangeError(`${what}: [${b}][${t}] = ${v} is not an integer`);
        data[b * T + t] = v;
      }
    });
    return { data, B, T };
  }
  const [B, T] = x.shape;
  if (x.data.length !== B * T) {
    throw new RangeError(`${what}: ${x.data.length} values do not fill shape [${B}, ${T}]`);
  }
  return { data: x.data, B, T };
}

/** Validates ids against the vocabulary and computes default position ids. */
export function hostBatch(inputIds: IdBatch, vocabSize: number, opts: ForwardOptions = {}): HostBatch {
  const past = opts.cache?.length ?? 0;
  const { data: ids, B, T } = toFlat(inputIds, "inputIds");
  if (B === 0 || T === 0) throw new RangeError(`inputIds: an empty batch [${B}, ${T}]`);
  for (let i = 0; i < ids.length; i++) {
    if (ids[i] < 0 || ids[i] >= vocabSize) {
      throw new RangeError(
        `inputIds: token id ${ids[i]} at [${Math.floor(i / T)}][${
          i % T
        }] is outside the vocabulary (size ${vocabSize})`,
      );
    }
  }
  let mask: Int32Array | null = null;
  if (opts.attentionMask) {
    const m = toFlat(opts.attentionMask, "attentionMask");
    if (m.B !== B || m.T !== past + T) {
      throw new RangeError(
        `attentionMask is [${m.B}, ${m.T}], expected [${B}, ${past + T}] (inputIds [${B}, ${T}]` +
          (past ? ` after ${past} cached positions)` : ")"),
      );
    }
    mask = m.data;
  }
  let positions: Int32Array;
  if (opts.positionIds) {
    const p = toFlat(opts.positionIds, "positionIds");
    if (p.B !== B || p.T !== T) {
      throw new RangeError(`positionIds is [${p.B}, ${p.T}], inputIds [${B}, ${T}]`);
    }
    positions = p.data;
  } else {
    positions = new Int32Array(B * T);
    const TK = past + T;
    for (let b = 0; b < B; b++) {
      let c = 0;
      for (let t = 0; t < TK; t++) {
        if (!mask || mask[b * TK + t] !== 0) c++;
        if (t >= past) positions[b * T + t - past] = Math.max(0, c - 1);
      }
    }
  }
  return { B, T, ids, mask, positions };
}

/** For each of the B·T positions of a batch, its row in the packed batch, or −1 for padding (mask 0). */
export function packedRows(mask: Int32Array | null, B: number, T: number): Int32Array {
  const rows = new Int32Array(B * T);
  let n = 0;
  for (let i = 0; i < B * T; i++) rows[i] = !mask || mask[i] !== 0 ? n++ : -1;
  return rows;
}

/**
 * For padding-free training: the packed row of each label position (`packedRows`, or the `rows` of another
 * packing), or undefined when a scored label (≠ `ignore`) sits on padding — which no tokenizer makes — so the
 * batch must run padded.
 */
export function labelRows(
  mask: Int32Array,
  B: number,
  T: number,
  labels: Int32Array,
  ignore: number,
  rows: Int32Array = packedRows(mask, B, T),
): Int32Array | undefined {
  return labels.some((l, n) => l !== ignore && rows[n] < 0) ? undefined : rows;
}

/**
 * A host batch with its padding removed (ForwardOptions.packed): one row of the N real tokens, their positions,
 * and each token's segment [start, end) (the packed span of its original row) for the attention.
 */
export function packBatch(h: HostBatch): HostBatch & { segments: Int32Array } {
  if (h.mask && h.mask.length !== h.B * h.T) {
    throw new RangeError("packed: a batch with cached positions cannot be packed (no KV cache with packed)");
  }
  const rows = packedRows(h.mask, h.B, h.T);
  let N = 0;
  for (const r of rows) if (r >= 0) N++;
  if (N === 0) throw new RangeError("packed: the attention mask leaves no real token to run");
  const ids = new Int32Array(N), positions = new Int32Array(N), segments = new Int32Array(2 * N);
  for (let b = 0; b < h.B; b++) {
    let start = -1, end = -1;
    for (let t = 0; t < h.T; t++) {
      const r = rows[b * h.T + t];
      if (r < 0) continue;
      if (start < 0) start = r;
      end = r + 1;
      ids[r] = h.ids[b * h.T + t];
      positions[r] = h.positions[b * h.T + t];
    }
    for (let r = start; r >= 0 && r < end; r++) segments.set([start, end], 2 * r);
  }
  return { B: 1, T: N, ids, mask: null, positions, segments };
}

/** The longest run of a packed batch's [start, end) segments. */
function longestSegment(segments: Int32Array): number {
  let n = 1;
  for (let i = 0; i < segments.length; i += 2) n = Math.max(n, segments[i + 1] - segments[i]);
  return n;
}

/** What a model's layers take from a host batch: ids and positions (packed or not) and the attention's masking. */
export interface LayerInputs {
  B: number;
  T: number;
  ids: Int32Array;
  /** Host positions [B·T] (Llama uploads them for RoPE, GPT-2 gathers its position embeddings with them). */
  positionIds: Int32Array;
  /** The attention options that mask padding or separate packed sequences. */
  attn: { attentionMask?: Tensor; segments?: Tensor; segmentSpan?: number };
}

/**
 * The embedding rows [B, T, C] of a batch's tokens: `table` gathered at the host ids, or at `opts.deviceIds` when
 * given (which must then have the batch's shape and is not packed).
 */
export function embedTokens(
  table: Tensor,
  inputs: { B: number; T: number; ids: Int32Array },
  opts: ForwardOptions,
): Tensor {
  const { B, T } = inputs;
  const d = opts.deviceIds;
  if (!d) return gatherRows(table, inputs.ids, { shape: [B, T] });
  if (opts.packed) throw new RangeError("deviceIds: not with packed batches");
  if (d.dtype !== "i32" || d.ndim !== 2 || d.shape[0] !== B || d.shape[1] !== T) {
    throw new RangeError(
      `deviceIds: expected an i32 tensor [${B}, ${T}] (inputIds' shape), got ${d.dtype} [${d.shape}]`,
    );
  }
  return gatherRows(table, d);
}

/** Validates the ids and options, packs the batch when `opts.packed`, and uploads the attention's masking. */
export function layerInputs(inputIds: IdBatch, vocabSize: number, opts: ForwardOptions = {}): LayerInputs {
  if (opts.packed && opts.cache) throw new RangeError("packed: not with a KV cache");
  const h = hostBatch(inputIds, vocabSize, opts);
  const pairs = opts.packed === "pairs" ? packPairs(h) : null;
  const p = pairs ?? (opts.packed ? packBatch(h) : null);
  const { B, T, ids, positions: positionIds } = p ?? h;
  const attn = pairs
    ? { segments: tensor(pairs.segments, [1, T, 4], { dtype: "i32" }), segmentSpan: pairs.span }
    : p
    ? { segments: tensor(p.segments, [1, T, 2], { dtype: "i32" }), segmentSpan: longestSegment(p.segments) }
    : h.mask
    ? { attentionMask: tensor(h.mask, [B, h.mask.length / B], { dtype: "i32" }) }
    : {};
  return { B, T, ids, positionIds, attn };
}

export class ModelError extends WebDPOError {}

/** A causal language model. */
export abstract class CausalLM extends Module {
  /** The projection seam (src/nn/linear_hook.ts): int8 bases and LoRA adapters plug in here by module name. */
  readonly linearHooks: LinearHooks = new LinearHooks();
  /** Recompute each layer's activations during backward instead of keeping them (TRL's gradient_checkpointing). */
  gradientCheckpointing = false;
  /** The folder the weights came from (tokenizer and generation_config live there). */
  sourceDir?: string;

  constructor(readonly config: ModelConfig) {
    super();
  }

  /**
   * Writes a folder `transformers` loads: config.json, model.safetensors (and the tokenizer files when a tokenizer
   * is given). See `saveModel`.
   */
  async save(dir: string, opts: import("./loader.ts").SaveModelOptions = {}): Promise<void> {
    const { saveModel } = await import("./loader.ts");
    await saveModel(this, dir, opts);
  }

  /** The parameters of decoder layer `l` (for checkpointing). */
  layerParameters(l: number): Tensor[] {
    const prefix = this.config.architecture === "gpt2" ? `transformer.h.${l}.` : `model.layers.${l}.`;
    return this.namedParameters().filter(([n]) => n.startsWith(prefix)).map(([, t]) => t);
  }

  /**
   * Runs the decoder layers `layer(0, x)`, `layer(1, …)`, … over `x`. Recording a graph, each layer's activations
   * stay for backward (or, with `gradientCheckpointing` and no KV cache, only its input, the layer being recomputed
   * in backward). With no graph to record (the reference, evaluation, generation), each layer runs in a scope of
   * its own and its input is released once it is done: the forward holds one layer's activations, not all of them.
   * `x` is the model's own (made by the caller's forward), as each layer's output is. `consumed` tells a layer that
   * its input is released after it and nothing else reads it, so it may write into it (Llama adds o_proj and
   * down_proj into the residual stream in place then); never while recording, where backward or a checkpoint's
   * recompute reads the input again.
   */
  protected runLayers(
    x: Tensor,
    layer: (l: number, x: Tensor, consumed: boolean) => Tensor,
    cached: boolean,
  ): Tensor {
    const recording = isGradEnabled();
    for (let l = 0; l < this.config.numLayers; l++) {
      if (!recording) {
        const y = scope(() => layer(l, x, true)); // x is disposed after: the layer may write into it
        x.dispose();
        x = y;
      } else if (this.gradientCheckpointing && !cached) {
        x = checkpoint((xi) => layer(l, xi, false), x, this.layerParameters(l));
      } else {
        x = layer(l, x, false);
      }
    }
    return x;
  }

  /** The names of the model's projection modules (the targets LoRA can adapt). */
  abstract projectionModules(): string[];

  /** Final hidden states [B, T, C] (after the last norm): the input of the LM head / fused log-probs. */
  abstract hiddenStates(inputIds: IdBatch, opts?: ForwardOptions): Tensor;

  /** The LM head weight [V, C] (the embedding when tied). */
  abstract lmHeadWeight(): Tensor;

  /** Logits [B, T, V]. */
  abstract forward(inputIds: IdBatch, opts?: ForwardOptions): Tensor;

  /** The state-dict names a checkpoint for this config must contain (tied weights excluded). */
  abstract expectedShapes(): Map<string, number[]>;
}
