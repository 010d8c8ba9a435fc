/**
 * GPT-2 as transformers' GPT2LMHeadModel computes it: token + learned position embeddings → per layer [LayerNorm →
 * fused c_attn (Conv1D, weights [in, out]) → causal attention → c_proj → residual; LayerNorm → c_fc → gelu_new →
 * c_proj → residual] → LayerNorm → LM head tied to wte. State-dict names carry the `transformer.` prefix (a
 * GPT2Model checkpoint without it loads too; see loader.ts).
 */
import { add } from "../autograd/ops/binary.ts";
import { attention } from "../autograd/ops/attention.ts";
import { gatherRows } from "../autograd/ops/gather_rows.ts";
import { layerNorm } from "../autograd/ops/layernorm.ts";
import { permute } from "../autograd/ops/permute.ts";
import { reshape } from "../autograd/ops/reshape.ts";
import { slice } from "../autograd/ops/slice.ts";
import { unary } from "../autograd/ops/unary.ts";
import { linear } from "../nn/layers.ts";
import type { KVCache } from "./kv_cache.ts";
import { recomputeOnUse } from "../autograd/recompute.ts";
import { free, type Tensor } from "../tensor/tensor.ts";
import {
  CausalLM,
  embedTokens,
  type ForwardOptions,
  type IdBatch,
  type LayerInputs,
  layerInputs,
} from "./causal_lm.ts";

const P = "transformer";

export class GPT2Model extends CausalLM {
  expectedShapes(): Map<string, number[]> {
    const c = this.config;
    const C = c.hiddenSize, I = c.intermediateSize;
    const m = new Map<string, number[]>();
    m.set(`${P}.wte.weight`, [c.vocabSize, C]);
    m.set(`${P}.wpe.weight`, [c.maxPositionEmbeddings, C]);
    for (let l = 0; l < c.numLayers; l++) {
      const p = `${P}.h.${l}`;
      m.set(`${p}.ln_1.weight`, [C]);
      m.set(`${p}.ln_1.bias`, [C]);
      m.set(`${p}.attn.c_attn.weight`, [C, 3 * C]);
      m.set(`${p}.attn.c_attn.bias`, [3 * C]);
      m.set(`${p}.attn.c_proj.weight`, [C, C]);
      m.set(`${p}.attn.c_proj.bias`, [C]);
      m.set(`${p}.ln_2.weight`, [C]);
      m.set(`${p}.ln_2.bias`, [C]);
      m.set(`${p}.mlp.c_fc.weight`, [C, I]);
      m.set(`${p}.mlp.c_fc.bias`, [I]);
      m.set(`${p}.mlp.c_proj.weight`, [I, C]);
      m.set(`${p}.mlp.c_proj.bias`, [C]);
    }
    m.set(`${P}.ln_f.weight`, [C]);
    m.set(`${P}.ln_f.bias`, [C]);
    if (!c.tieWordEmbeddings) m.set("lm_head.weight", [c.vocabSize, C]);
    return m;
  }

  /** A Conv1D projection by module name (the seam where int8 bases and LoRA adapters hook in: `linearHooks`). */
  proj(x: Tensor, module: string): Tensor {
    const base = () => linear(x, this.param(`${module}.weight`), this.maybeParam(`${module}.bias`), "in_out");
    return this.linearHooks.project(x, module, base);
  }

  projectionModules(): string[] {
    const out: string[] = [];
    for (let l = 0; l < this.config.numLayers; l++) {
      out.push(
        `${P}.h.${l}.attn.c_attn`,
        `${P}.h.${l}.attn.c_proj`,
        `${P}.h.${l}.mlp.c_fc`,
        `${P}.h.${l}.mlp.c_proj`,
      );
    }
    return out;
  }

  lmHeadWeight(): Tensor {
    return this.config.tieWordEmbeddings ? this.param(`${P}.wte.weight`) : this.param("lm_head.weight");
  }

  /** Decoder block `l`: attention and MLP with their residuals. */
  layer(
    l: number,
    x: Tensor,
    ctx: { inputs: LayerInputs; cache?: KVCache },
  ): Tensor {
    const c = this.config;
    const { B, T, attn } = ctx.inputs;
    const H = c.numHeads, D = c.headDim, C = c.hiddenSize;
    const p = `${P}.h.${l}`;
    const ln1 = [this.param(`${p}.ln_1.weight`), this.param(`${p}.ln_1.bias`)];
    const a = layerNorm(x, ln1[0], ln1[1], c.normEps);
    const qkv = this.proj(a, `${p}.attn.c_attn`); // [B, T, 3C]
    // the projections' backward reads the norm and GELU outputs again: recomputed then (autograd/recompute.ts)
    const xIn = x;
    recomputeOnUse(a, () => layerNorm(xIn, ln1[0], ln1[1], c.normEps));
    // temporaries no backward reads (reshape, permute, slice and add save nothing) are freed once used
    const grouped = reshape(qkv, [B, T, 3, H, D]);
    const split = permute(grouped, [2, 0, 3, 1, 4]); // [3, B, H, T, D]
    free(qkv, grouped);
    const part = (i: number) => reshape(slice(split, i, i + 1), [B, H, T, D]);
    let scale = c.raw.scale_attn_weights !== false ? 1 / Math.sqrt(D) : 1;
    if (c.raw.scale_attn_by_inverse_layer_idx === true) scale /= l + 1;
    const q = part(0);
    let k = part(1);
    let v = part(2);
    free(split);
    let keyLength: number | undefined;
    if (ctx.cache) ({ k, v, length: keyLength } = ctx.cache.update(l, k, v));
    const o = attention(q, k, v, { ...attn, scale, keyLength });
    const merge = () => reshape(permute(o, [0, 2, 1, 3]), [B, T, C]);
    const merged = merge();
    const attnOut = this.proj(merged, `${p}.attn.c_proj`);
    if (merged.storage !== o.storage) recomputeOnUse(merged, merge); // a permute of o, which attention keeps
    x = add(x, attnOut);
    free(attnOut);
    const ln2 = [this.param(`${p}.ln_2.weight`), this.param(`${p}.ln_2.bias`)];
    const m = layerNorm(x, ln2[0], ln2[1], c.normEps);
    const fc = this.proj(m, `${p}.mlp.c_fc`);
    const xMid = x;
    recomputeOnUse(m, () => layerNorm(xMid, ln2[0], ln2[1], c.normEps));
    const f = unary("gelu", fc);
    const mlpOut = this.proj(f, `${p}.mlp.c_proj`);
    recomputeOnUse(f, () => unary("gelu", fc));
    const y = add(x, mlpOut);
    free(mlpOut);
    return y;
  }

  hiddenStates(inputIds: IdBatch, opts: ForwardOptions = {}): Tensor {
    const c = this.config;
    const inputs = layerInputs(inputIds, c.vocabSize, opts);
    const { B, T, positionIds } = inputs;
    for (let i = 0; i < positionIds.length; i++) {
      if (positionIds[i] >= c.maxPositionEmbeddings) {
        throw new RangeError(
          `position ${positionIds[i]} exceeds GPT-2's n_positions ${c.maxPositionEmbeddings}`,
        );
      }
    }
    const x = add(
      embedTokens(this.param(`${P}.wte.weight`), inputs, opts),
      gatherRows(this.param(`${P}.wpe.weight`), positionIds, { shape: [B, T] }),
    );
    const y = this.runLayers(
      x,
      (l, xi) => this.layer(l, xi, { inputs, cache: opts.cache }),
      opts.cache !== undefined,
    );
    return layerNorm(y, this.param(`${P}.ln_f.weight`), this.param(`${P}.ln_f.bias`), c.normEps);
  }

  forward(inputIds: IdBatch, opts: ForwardOptions = {}): Tensor {
    return linear(this.hiddenStates(inputIds, opts), this.lmHeadWeight(), null);
  }
}
