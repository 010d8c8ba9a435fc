/**
 * The Llama family (llama, SmolLM/SmolLM2, mistral, qwen2), as transformers' LlamaForCausalLM computes it:
 * embeddings → per layer [RMSNorm → q/k/v projections → RoPE → causal GQA attention (sliding window where the
 * config says) → o_proj → residual; RMSNorm → SwiGLU MLP → residual] → RMSNorm → LM head (tied or not).
 */
import { add, mul } from "../autograd/ops/binary.ts";
import { attention } from "../autograd/ops/attention.ts";
import { gatherRows } from "../autograd/ops/gather_rows.ts";
import { permute } from "../autograd/ops/permute.ts";
import { reshape } from "../autograd/ops/reshape.ts";
import { rmsNorm } from "../autograd/ops/rmsnorm.ts";
import { rope, type RopeConfig } from "../autograd/ops/rope.ts";
import { unary } from "../autograd/ops/unary.ts";
import { checkpoint } from "../autograd/checkpoint.ts";
import { linear } from "../nn/layers.ts";
import type { KVCache } from "./kv_cache.ts";
import type { Tensor } from "../tensor/tensor.ts";
import { batchTensors, CausalLM, type ForwardOptions, hostBatch, type IdBatch } from "./causal_lm.ts";
import type { ModelConfig } from "./config.ts";

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

  /** A projection by module name (the seam where LoRA adapters hook in: see `linearHook`). */
  proj(x: Tensor, module: string): Tensor {
    const base = () => linear(x, this.param(`${module}.weight`), this.maybeParam(`${module}.bias`));
    return this.linearHook ? this.linearHook(x, module, base) : base();
  }

  projectionModules(): string[] {
    const out: string[] = [];
    for (let l = 0; l < this.config.numLayers; l++) {
      for (const m of ["q_proj", "k_proj", "v_proj", "o_proj"]) out.push(`model.layers.${l}.self_attn.${m}`);
      for (const m of ["gate_proj", "up_proj", "down_proj"]) out.push(`model.layers.${l}.mlp.${m}`);
    }
    return out;
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
    ctx: { B: number; T: number; positions: Tensor; mask: Tensor | undefined; cache?: KVCache },
  ): Tensor {
    const c = this.config;
    const { B, T, positions, mask } = ctx;
    const H = c.numHeads, HKV = c.numKvHeads, D = c.headDim;
    const p = `model.layers.${l}`;
    const a = rmsNorm(x, this.param(`${p}.input_layernorm.weight`), c.normEps);
    const heads = (t: Tensor, n: number) => permute(reshape(t, [B, T, n, D]), [0, 2, 1, 3]);
    const q = rope(heads(this.proj(a, `${p}.self_attn.q_proj`), H), positions, this.rope);
    let k = rope(heads(this.proj(a, `${p}.self_attn.k_proj`), HKV), positions, this.rope);
    let v = heads(this.proj(a, `${p}.self_attn.v_proj`), HKV);
    if (ctx.cache) ({ k, v } = ctx.cache.update(l, k, v));
    const window = c.layerSlidingWindow[l];
    const o = attention(q, k, v, { attentionMask: mask, slidingWindow: window ?? undefined });
    const merged = reshape(permute(o, [0, 2, 1, 3]), [B, T, H * D]);
    x = add(x, this.proj(merged, `${p}.self_attn.o_proj`));
    const m = rmsNorm(x, this.param(`${p}.post_attention_layernorm.weight`), c.normEps);
    const gate = unary("silu", this.proj(m, `${p}.mlp.gate_proj`));
    const up = this.proj(m, `${p}.mlp.up_proj`);
    return add(x, this.proj(mul(gate, up), `${p}.mlp.down_proj`));
  }

  hiddenStates(inputIds: IdBatch, opts: ForwardOptions = {}): Tensor {
    const c = this.config;
    const h = hostBatch(inputIds, c.vocabSize, opts);
    const { B, T } = h;
    const { positions, mask } = batchTensors(h);
    let x = gatherRows(this.param("model.embed_tokens.weight"), h.ids, { shape: [B, T] });
    for (let l = 0; l < c.numLayers; l++) {
      const layer = (xi: Tensor) => this.layer(l, xi, { B, T, positions, mask, cache: opts.cache });
      x = this.gradientCheckpointing && !opts.cache
        ? checkpoint(layer, x, this.layerParameters(l))
        : layer(x);
    }
    return rmsNorm(x, this.param("model.norm.weight"), c.normEps);
  }

  forward(inputIds: IdBatch, opts: ForwardOptions = {}): Tensor {
    return linear(this.hiddenStates(inputIds, opts), this.lmHeadWeight(), null);
  }
}
