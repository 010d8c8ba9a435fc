/**
 * The Llama family (llama, SmolLM/SmolLM2, mistral, qwen2), as transformers' LlamaForCausalLM computes it:
 * embeddings → per layer [RMSNorm → q/k/v projections → RoPE → causal GQA attention (sliding window where the
 * config says) → o_proj → residual; RMSNorm → SwiGLU MLP (one fused op for silu(gate)·up) → residual] → RMSNorm →
 * LM head (tied or not).
 */
import { add } from "../autograd/ops/binary.ts";
import { attention } from "../autograd/ops/attention.ts";
import { permute } from "../autograd/ops/permute.ts";
import { reshape } from "../autograd/ops/reshape.ts";
import { rmsNorm } from "../autograd/ops/rmsnorm.ts";
import { rope, type RopeConfig } from "../autograd/ops/rope.ts";
import { swiglu } from "../autograd/ops/swiglu.ts";
import { swigluCat } from "../autograd/ops/swiglu_cat.ts";
import { linearCat, linearCatFits } from "../autograd/ops/linear_cat.ts";
import { qkvRope } from "../autograd/ops/qkv_rope.ts";
import { recomputeOnUse } from "../autograd/recompute.ts";
import { isGradEnabled } from "../autograd/grad_mode.ts";
import { linear } from "../nn/layers.ts";
import { fusedDecoding, llamaDecodeLayer, residual } from "./llama_decode.ts";
import type { KVCache } from "./kv_cache.ts";
import { tensor } from "../tensor/create.ts";
import { free, type Tensor } from "../tensor/tensor.ts";
import {
  CausalLM,
  embedTokens,
  type ForwardOptions,
  type IdBatch,
  type LayerInputs,
  layerInputs,
} from "./causal_lm.ts";
import type { ModelConfig } from "./config.ts";

let fused = true;

/**
 * Turns the joined projections of the layer (q/k/v as one product with RoPE in one dispatch, gate/up as one
 * product: `linearCat`, `qkvRope`, `swigluCat`) on (the default) or off; returns the previous setting. Tests and
 * benchmarks compare.
 */
export function setFusedProjections(on: boolean): boolean {
  const prev = fused;
  fused = on;
  return prev;
}

export class LlamaModel extends CausalLM {
  private readonly rope: RopeConfig;

  constructor(config: ModelConfig) {
    super(config);
    this.rope = { headDim: config.headDim, theta: config.ropeTheta, scaling: config.ropeScaling };
  }

  expectedShapes(): Map<string, number[]> {
    const c = this.config;
    const C = c.hiddenSize, D = c.headDim, I = c.intermediateSize;
    const m = new Map<string, number[]>();
    m.set("model.embed_tokens.weight", [c.vocabSize, C]);
    for (let l = 0; l < c.numLayers; l++) {
      const p = `model.layers.${l}`;
      m.set(`${p}.input_layernorm.weight`, [C]);
      m.set(`${p}.post_attention_layernorm.weight`, [C]);
      m.set(`${p}.self_attn.q_proj.weight`, [c.numHeads * D, C]);
      m.set(`${p}.self_attn.k_proj.weight`, [c.numKvHeads * D, C]);
      m.set(`${p}.self_attn.v_proj.weight`, [c.numKvHeads * D, C]);
      m.set(`${p}.self_attn.o_proj.weight`, [C, c.numHeads * D]);
      if (c.qkvBias) {
        m.set(`${p}.self_attn.q_proj.bias`, [c.numHeads * D]);
        m.set(`${p}.self_attn.k_proj.bias`, [c.numKvHeads * D]);
        m.set(`${p}.self_attn.v_proj.bias`, [c.numKvHeads * D]);
      }
      if (c.oBias) m.set(`${p}.self_attn.o_proj.bias`, [C]);
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
    if (!c.tieWordEmbeddings) m.set("lm_head.weight", [c.vocabSize, C]);
    return m;
  }

  /** A projection by module name (the seam where int8 bases and LoRA adapters hook in: `linearHooks`). */
  proj(x: Tensor, module: string): Tensor {
    const base = () => linear(x, this.param(`${module}.weight`), this.maybeParam(`${module}.bias`));
    return this.linearHooks.project(x, module, base);
  }

  projectionModules(): string[] {
    const out: string[] = [];
    for (let l = 0; l < this.config.numLayers; l++) {
      for (const m of ["q_proj", "k_proj", "v_proj", "o_proj"]) out.push(`model.layers.${l}.self_attn.${m}`);
      for (const m of ["gate_proj", "up_proj", "down_proj"]) out.push(`model.layers.${l}.mlp.${m}`);
    }
    return out;
  }

  /**
   * The weights of `modules` (of layer prefix `p`) when they can run as one joined product: joined projections on,
   * no projection hook installed (LoRA adapters, int8 bases take the per-module path), no biases, and what the
   * product binds within the device's binding size; else null.
   */
  private joinable(p: string, modules: string[], rows: number): Tensor[] | null {
    if (!fused || this.linearHooks.base || this.linearHooks.adapter) return null;
    if (modules.some((m) => this.maybeParam(`${p}.${m}.bias`))) return null;
    const ws = modules.map((m) => this.param(`${p}.${m}.weight`));
    return linearCatFits(rows, ws) ? ws : null;
  }

  lmHeadWeight(): Tensor {
    return this.config.tieWordEmbeddings
      ? this.param("model.embed_tokens.weight")
      : this.param("lm_head.weight");
  }

  /** Decoder layer `l`: attention and MLP blocks with their residuals. */
  layer(
    l: number,
    x: Tensor,
    ctx: { inputs: LayerInputs; positions: Tensor; cache?: KVCache; consumed?: boolean },
  ): Tensor {
    if (ctx.cache && !isGradEnabled() && fusedDecoding()) {
      // decoding: the same values in fewer dispatches (llama_decode.ts)
      return llamaDecodeLayer(this, l, x, { ...ctx, cache: ctx.cache, rope: this.rope });
    }
    const c = this.config;
    const { B, T, attn } = ctx.inputs;
    const positions = ctx.positions;
    const H = c.numHeads, HKV = c.numKvHeads, D = c.headDim;
    const p = `model.layers.${l}`;
    const normIn = this.param(`${p}.input_layernorm.weight`);
    const a = rmsNorm(x, normIn, c.normEps);
    // the temporaries no backward reads (permute, RoPE and add save nothing) are freed as soon as they are used
    const heads = (t: Tensor, n: number) => {
      const r = reshape(t, [B, T, n, D]);
      const out = permute(r, [0, 2, 1, 3]);
      free(t, r);
      return out;
    };
    const rotated = (t: Tensor) => {
      const out = rope(t, positions, this.rope);
      free(t);
      return out;
    };
    let q: Tensor, k: Tensor, v: Tensor;
    // (with a KV cache only without grad: the cache must not hide q/k/v from a backward, see qkv_rope.ts)
    const qkvW = ctx.cache && isGradEnabled()
      ? null
      : this.joinable(`${p}.self_attn`, ["q_proj", "k_proj", "v_proj"], B * T);
    if (qkvW) {
      // one product for the three projections, one dispatch for heads and RoPE (linear_cat.ts, qkv_rope.ts)
      const y = linearCat(a, qkvW);
      [q, k, v] = qkvRope(y, positions, this.rope, { H, HKV });
      free(y); // neither backward reads it
    } else {
      q = rotated(heads(this.proj(a, `${p}.self_attn.q_proj`), H));
      k = rotated(heads(this.proj(a, `${p}.self_attn.k_proj`), HKV));
      v = heads(this.proj(a, `${p}.self_attn.v_proj`), HKV);
    }
    // the projections' backward reads `a` again: recomputed from x then instead of kept (autograd/recompute.ts)
    const xIn = x;
    recomputeOnUse(a, () => rmsNorm(xIn, normIn, c.normEps));
    let keyLength: number | undefined;
    if (ctx.cache) ({ k, v, length: keyLength } = ctx.cache.update(l, k, v));
    const window = c.layerSlidingWindow[l];
    const o = attention(q, k, v, { ...attn, slidingWindow: window ?? undefined, keyLength });
    const merge = () => reshape(permute(o, [0, 2, 1, 3]), [B, T, H * D]);
    const merged = merge();
    // no graph and an input nothing reads after this layer (runLayers' `consumed`): o_proj and down_proj add into
    // the residual stream in place (matmul's accumulate: the sum `add` computes, one dispatch fewer each)
    const hooks = this.linearHooks;
    const inPlace = fused && ctx.consumed === true && !isGradEnabled() && !hooks.base && !hooks.adapter;
    if (inPlace && !c.oBias) {
      x = residual(this, x, merged, `${p}.self_attn.o_proj`, true);
      free(merged);
    } else {
      const attnOut = this.proj(merged, `${p}.self_attn.o_proj`);
      // o_proj's backward reads the merged heads again: a permute of o, which attention keeps anyway (T = 1 makes
      // the permute a view of o itself, which must stay)
      if (merged.storage !== o.storage) recomputeOnUse(merged, merge);
      x = add(x, attnOut);
      free(attnOut);
    }
    const normPost = this.param(`${p}.post_attention_layernorm.weight`);
    const m = rmsNorm(x, normPost, c.normEps);
    const xMid = x;
    let h: Tensor;
    let remakeH: () => Tensor;
    const guW = this.joinable(`${p}.mlp`, ["gate_proj", "up_proj"], B * T);
    if (guW) {
      // gate and up as one product; SwiGLU reads its two halves (linear_cat.ts, swiglu_cat.ts)
      const gu = linearCat(m, guW);
      recomputeOnUse(m, () => rmsNorm(xMid, normPost, c.normEps));
      h = swigluCat(gu);
      remakeH = () => swigluCat(gu);
    } else {
      const gate = this.proj(m, `${p}.mlp.gate_proj`);
      const up = this.proj(m, `${p}.mlp.up_proj`);
      recomputeOnUse(m, () => rmsNorm(xMid, normPost, c.normEps));
      h = swiglu(gate, up);
      remakeH = () => swiglu(gate, up);
    }
    if (inPlace && !c.mlpBias) {
      const y = residual(this, x, h, `${p}.mlp.down_proj`, true);
      free(h);
      return y;
    }
    const mlpOut = this.proj(h, `${p}.mlp.down_proj`);
    recomputeOnUse(h, remakeH);
    const y = add(x, mlpOut);
    free(mlpOut);
    return y;
  }

  hiddenStates(inputIds: IdBatch, opts: ForwardOptions = {}): Tensor {
    const c = this.config;
    const inputs = layerInputs(inputIds, c.vocabSize, opts);
    const { B, T } = inputs;
    const positions = tensor(inputs.positionIds, [B, T], { dtype: "i32" });
    const x = embedTokens(this.param("model.embed_tokens.weight"), inputs, opts);
    const y = this.runLayers(
      x,
      (l, xi, consumed) => this.layer(l, xi, { inputs, positions, cache: opts.cache, consumed }),
      opts.cache !== undefined,
    );
    return rmsNorm(y, this.param("model.norm.weight"), c.normEps);
  }

  forward(inputIds: IdBatch, opts: ForwardOptions = {}): Tensor {
    return linear(this.hiddenStates(inputIds, opts), this.lmHeadWeight(), null);
  }
}
