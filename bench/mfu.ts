/**
 * Model-FLOP utilisation for the real-scale DPO row (issue 13): the FLOPs the model's math needs for a step, divided
 * by the step's time and the adapter's f32 peak. "Model FLOPs" count what a plain implementation computes, whatever
 * this one skips or repeats: every position's logits, no prefix sharing, no recomputation
 * (gradient_checkpointing), so that two implementations' MFU compare.
 *
 * Per sequence of T tokens, one forward is 2·T·P (P: the weights of every product, the LM head included) plus
 * attention's 2·2·L·H·D per causal (query, key) pair, T(T+1)/2 of them. A DPO step runs the policy forward and
 * backward (3 forwards' worth) and the frozen reference forward (1) over each chosen and rejected sequence.
 *
 * WebGPU does not report an adapter's peak, so it comes from `WEBDPO_PEAK_TFLOPS` or from a table of f32
 * (non-tensor-core) peaks of known GPUs, from the vendors' data sheets; elsewhere (CPU adapters, unknown GPUs) MFU is
 * not reported.
 */

export interface LlamaShape {
  hidden_size: number;
  intermediate_size: number;
  num_attention_heads: number;
  num_key_value_heads: number;
  num_hidden_layers: number;
  vocab_size: number;
}

/** The weights one forward multiplies by, per token: every projection of every layer and the LM head. */
export function productWeights(c: LlamaShape): number {
  const C = c.hidden_size, D = C / c.num_attention_heads;
  const attn = C * c.num_attention_heads * D + 2 * C * c.num_key_value_heads * D +
    c.num_attention_heads * D * C;
  const mlp = 3 * C * c.intermediate_size;
  return c.num_hidden_layers * (attn + mlp) + c.vocab_size * C;
}

/** One forward's FLOPs over a sequence of T tokens (causal attention). */
export function forwardFlops(c: LlamaShape, T: number): number {
  const D = c.hidden_size / c.num_attention_heads;
  return 2 * T * productWeights(c) + 4 * c.num_hidden_layers * c.num_attention_heads * D * (T * (T + 1)) / 2;
}

/** A DPO step's model FLOPs: policy forward + backward (3 forwards) and the reference forward, per sequence. */
export function dpoStepFlops(c: LlamaShape, sequenceLengths: readonly number[]): number {
  return sequenceLengths.reduce((s, T) => s + 4 * forwardFlops(c, T), 0);
}

/** f32 peaks (TFLOP/s, dense, without tensor cores) of GPUs by adapter name; the first match wins. */
const PEAKS: [RegExp, number][] = [
  [/H100.*PCIe/i, 51.2],
  [/\bH100\b|\bH200\b/i, 66.9],
  [/\bA100\b/i, 19.5],
  [/\bL40S\b/i, 91.6],
  [/\bL4\b/i, 30.3],
  [/RTX 4090/i, 82.6],
  [/RTX 3090/i, 35.6],
  [/\bA10\b/i, 31.2],
  [/\bT4\b/i, 8.1],
];

/** The adapter's f32 peak in TFLOP/s and where it came from, or null where it is not known. */
export function peakTflops(adapterName: string): { tflops: number; source: string } | null {
  const env = Deno.env.get("WEBDPO_PEAK_TFLOPS");
  if (env !== undefined) {
    const v = Number(env);
    if (!(v > 0)) throw new Error(`WEBDPO_PEAK_TFLOPS must be a positive number, got ${JSON.stringify(env)}`);
    return { tflops: v, source: "WEBDPO_PEAK_TFLOPS" };
  }
  for (const [re, tflops] of PEAKS) if (re.test(adapterName)) return { tflops, source: "data sheet" };
  return null;
}
