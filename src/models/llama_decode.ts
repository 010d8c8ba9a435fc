/**
 * Llama's decoder layer for no-grad decoding with a KV cache (`generate`): the same values as `LlamaModel.layer`
 * in fewer dispatches, since at one new token per sequence lavapipe's per-dispatch cost (~45 µs) is a large
 * share of a token. Per layer 8 dispatches instead of 17:
 *
 * - q, k and v projections in one row-kernel dispatch (decode_gemv.ts `gemvMulti`);
 * - RoPE of q and k and the cache writes of k and v in one (`KVCache.appendRotated`);
 * - o_proj and down_proj added into the residual stream by matmul's accumulate (no `add`): the layer's
 *   input is updated in place, which is safe here only because no-grad `runLayers` disposes each layer's input
 *   as soon as the layer returns; the layer returns a view of it;
 * - gate and up projections and SwiGLU in one (`gemvSwiglu`);
 * - the two RMSNorms with a workgroup per row on CPU adapters (decode_norm.ts; the same values).
 *
 * The fused products apply only to plain projections (no `linearHooks`: LoRA and int8 bases keep their own
 * path) without biases; the q/k/v and gate/up fusions only where the row kernel would run (decode_gemv.ts); the
 * RoPE/cache fusion applies to every cached no-grad step. `setFusedDecoding(false)` turns all of it off (tests and benchmarks compare).
 */
import { attention } from "../autograd/ops/attention.ts";
import { add } from "../autograd/ops/binary.ts";
import { matmulInto } from "../autograd/ops/matmul.ts";
import { permute } from "../autograd/ops/permute.ts";
import { reshape } from "../autograd/ops/reshape.ts";
import type { RopeConfig } from "../autograd/ops/rope.ts";
import { swiglu } from "../autograd/ops/swiglu.ts";
import type { LinearHooks } from "../nn/linear_hook.ts";
import { free, type Tensor, view } from "../tensor/tensor.ts";
import type { LayerInputs } from "./causal_lm.ts";
import type { ModelConfig } from "./config.ts";
import { gemvMulti, gemvSwiglu } from "./decode_gemv.ts";
import { decodeRmsNorm } from "./decode_norm.ts";
import type { KVCache } from "./kv_cache.ts";

let fused = true;

/** Turns the fused decoding layer on or off (default on); returns the previous setting. */
export function setFusedDecoding(on: boolean): boolean {
  const prev = fused;
  fused = on;
  return prev;
}

/** Whether `LlamaModel.layer` takes the fused decoding path for a cached no-grad step. */
export function fusedDecoding(): boolean {
  return fused;
}

/** What the decoding layer needs of the model. */
export interface DecodeModel {
  readonly config: ModelConfig;
  readonly linearHooks: LinearHooks;
  param(name: string): Tensor;
  proj(x: Tensor, module: string): Tensor;
}

/**
 * Decoder layer `l` of a cached no-grad step: x [B, T, C] in, the layer's output out (a view of x's storage,
 * which this layer overwrites).
 */
export function llamaDecodeLayer(
  model: DecodeModel,
  l: number,
  x: Tensor,
  ctx: { inputs: LayerInputs; positions: Tensor; cache: KVCache; rope: RopeConfig },
): Tensor {
  const c = model.config;
  const { B, T, attn } = ctx.inputs;
  const H = c.numHeads, D = c.headDim;
  const p = `model.layers.${l}`;
  const hooks = model.linearHooks;
  const plain = hooks.base === null && hooks.adapter === null;
  const weight = (m: string) => model.param(`${p}.${m}.weight`);

  const a = decodeRmsNorm(x, model.param(`${p}.input_layernorm.weight`), c.normEps);
  const names = ["self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj"];
  const qkv = (plain && !c.qkvBias && gemvMulti(a, names.map(weight))) ||
    names.map((m) => model.proj(a, `${p}.${m}`));
  free(a);
  const r = ctx.cache.appendRotated(l, qkv[0], qkv[1], qkv[2], ctx.positions, ctx.rope);
  free(...qkv);
  const window = c.layerSlidingWindow[l];
  const o = attention(r.q, r.k, r.v, { ...attn, slidingWindow: window ?? undefined, keyLength: r.length });
  free(r.q);
  const merged = reshape(permute(o, [0, 2, 1, 3]), [B, T, H * D]);
  free(o);
  x = residual(model, x, merged, `${p}.self_attn.o_proj`, plain && !c.oBias);
  free(merged);

  const m = decodeRmsNorm(x, model.param(`${p}.post_attention_layernorm.weight`), c.normEps);
  let h = plain && !c.mlpBias ? gemvSwiglu(m, weight("mlp.gate_proj"), weight("mlp.up_proj")) : null;
  if (!h) {
    const gate = model.proj(m, `${p}.mlp.gate_proj`);
    const up = model.proj(m, `${p}.mlp.up_proj`);
    h = swiglu(gate, up);
    free(gate, up);
  }
  free(m);
  const y = residual(model, x, h, `${p}.mlp.down_proj`, plain && !c.mlpBias);
  free(h);
  return y;
}

/**
 * x + proj(h): for a plain projection, the product added into x in place (matmul's accumulate: x + h·wᵀ, the
 * same sum `add` computes) and a view of x returned; else `add`.
 */
export function residual(model: DecodeModel, x: Tensor, h: Tensor, module: string, plain: boolean): Tensor {
  if (plain) {
    const K = h.shape[h.ndim - 1];
    const rows = view(h, [h.size / K, K]);
    matmulInto(x, rows, model.param(`${module}.weight`), { transB: true, accumulate: true });
    rows.dispose();
    return view(x, x.shape);
  }
  const out = model.proj(h, module);
  const y = add(x, out);
  free(out);
  return y;
}
