/**
 * generate(model, tokenizer, prompts, opts): batched decoding with a KV cache. Prompts are left-padded into one
 * batch; each step runs only the new token of every sequence and picks the next token from the last position's
 * logits: greedy picks on the GPU without waiting for them (`greedyOnDevice`), sampling on the host. A sequence
 * stops at EOS; the batch stops when every sequence has or after `maxNewTokens`.
 */
import { noGrad } from "../autograd/grad_mode.ts";
import { scope } from "../autograd/scope.ts";
import { gatherRows } from "../autograd/ops/gather_rows.ts";
import { reshape } from "../autograd/ops/reshape.ts";
import { linear } from "../nn/layers.ts";
import { Generator } from "../tensor/random.ts";
import { empty, type Tensor, view } from "../tensor/tensor.ts";
import type { Tokenizer } from "../tokenizer/tokenizer.ts";
import type { CausalLM } from "./causal_lm.ts";
import { argmaxRows } from "./decode_argmax.ts";
import { KVCache } from "./kv_cache.ts";
import { copyBuffer, flush } from "../gpu/queue.ts";

export interface GenerateOptions {
  /** New tokens per sequence at most (default 32). */
  maxNewTokens?: number;
  /** Sample (true) or greedy argmax (false, the default). */
  doSample?: boolean;
  /** Softmax temperature for sampling (default 1). */
  temperature?: number;
  /** Keep the k most likely tokens (0 = all; default 0). */
  topK?: number;
  /** Keep the smallest set of tokens whose probability reaches p (default 1). */
  topP?: number;
  /** Seed of the sampler (default 0). */
  seed?: number;
  /** Stop tokens (default: the tokenizer's EOS). */
  eosTokenIds?: number[];
  /** Render string prompts as a user turn with the chat template (default false). */
  chat?: boolean;
}

export interface GenerateResult {
  /** The generated token ids per prompt (EOS included when reached). */
  tokens: number[][];
  /** The decoded generated text per prompt (special tokens skipped). */
  texts: string[];
}

/** Picks the next token from one row of logits. */
export function pickToken(logits: Float32Array, opts: GenerateOptions, rng: Generator): number {
  const V = logits.length;
  if (!opts.doSample) {
    let best = 0;
    for (let v = 1; v < V; v++) if (logits[v] > logits[best]) best = v;
    return best;
  }
  const temp = opts.temperature ?? 1;
  if (!(temp > 0)) throw new RangeError(`temperature must be > 0 when sampling, got ${temp}`);
  let order = Array.from({ length: V }, (_, i) => i).sort((a, b) => logits[b] - logits[a]);
  const k = opts.topK ?? 0;
  if (k > 0) order = order.slice(0, k);
  const m = logits[order[0]];
  let probs = order.map((i) => Math.exp((logits[i] - m) / temp));
  let total = probs.reduce((a, b) => a + b, 0);
  const p = opts.topP ?? 1;
  if (p < 1) {
    let acc = 0;
    let cut = order.length;
    for (let i = 0; i < order.length; i++) {
      acc += probs[i] / total;
      if (acc >= p) {
        cut = i + 1;
        break;
      }
    }
    order = order.slice(0, cut);
    probs = probs.slice(0, cut);
    total = probs.reduce((a, b) => a + b, 0);
  }
  let u = rng.uniform() * total;
  for (let i = 0; i < order.length; i++) {
    u -= probs[i];
    if (u < 0) return order[i];
  }
  return order[order.length - 1];
}

let deviceGreedy = true;

/**
 * Whether greedy decoding picks its tokens on the GPU (true, the default) or reads every step's logits back and
 * picks on the host like sampling does (false); returns the previous setting. Both give the same tokens (tests and
 * benchmarks compare them).
 */
export function setDeviceGreedy(on: boolean): boolean {
  const prev = deviceGreedy;
  deviceGreedy = on;
  return prev;
}

/** The logits [B, V] of the last position of each sequence of hidden states h [B, T, C]. */
function lastLogits(model: CausalLM, h: Tensor, B: number): Tensor {
  const [, T, C] = h.shape;
  // one position per sequence (every step after the prompt's): the rows are h itself, no gather
  const rows = T === 1
    ? reshape(h, [B, C])
    : gatherRows(reshape(h, [B * T, C]), new Int32Array(B).map((_, b) => b * T + T - 1));
  return linear(rows, model.lmHeadWeight(), null);
}

/** Steps between the reads of greedy picks: the first block, and the most a block grows to (it doubles). */
export const GREEDY_FIRST_BLOCK = 2;
export const GREEDY_MAX_BLOCK = 8;

/**
 * Greedy decoding with the picks made on the GPU (src/models/decode_argmax.ts): each step's argmax is the next
 * step's embedding lookup on the device and is copied into a history of every step's picks. The steps are
 * submitted one by one without waiting, so the GPU runs one step while the host records the next, and the host
 * reads the history only every few steps (GREEDY_FIRST_BLOCK, doubling up to GREEDY_MAX_BLOCK). A read waits
 * for every submitted step (Deno's mapAsync polls the device until it is idle, then sleeps 10 ms before it
 * resolves): reading after every step, as a host pick must, costs each token that wait and leaves the GPU
 * idle while the host records. On lavapipe, whose kernels take ~140 ms a token, the reads cost ~5% (149 →
 * 141 ms a token with per-step reads of GPU picks, the same with blocks); on a GPU, where a token's kernels take
 * a few ms, the wait per read would bound decoding (unmeasured).
 * The host learns of stop tokens only at a read: steps after the last sequence stopped, up to a block less one,
 * have run in vain (their picks are dropped). A finished sequence keeps decoding its own picks rather than pad
 * tokens: sequences do not mix, so the others' tokens are the same. `emit(b, token)` takes each sequence's
 * tokens in order until `done[b]`.
 */
async function greedyOnDevice(
  model: CausalLM,
  prompt: number[][],
  mask0: number[][],
  cache: KVCache,
  maxNew: number,
  emit: (b: number, token: number) => void,
  done: boolean[],
): Promise<void> {
  if (maxNew === 0) return;
  const B = prompt.length;
  const shape = prompt.map(() => [0]); // inputIds of a step on device ids: only their shape [B, 1] counts
  let mask = mask0;
  const history = empty([maxNew, B], "i32"); // step n's picks at row n
  let prev: Tensor | null = null; // the last step's picks [B, 1]: the next step's input
  let taken = 0; // steps whose picks the host has
  let block = GREEDY_FIRST_BLOCK;
  try {
    for (let n = 0; n < maxNew; n++) {
      const ids = prev;
      const picks = scope(() =>
        noGrad(() => {
          const h = model.hiddenStates(ids ? shape : prompt, {
            attentionMask: mask,
            cache,
            deviceIds: ids ?? undefined,
          });
          return view(argmaxRows(lastLogits(model, h, B)), [B, 1]);
        })
      );
      copyBuffer(picks.storage.buffer, 0, history.storage.buffer, n * B * 4, B * 4);
      prev?.dispose();
      prev = picks;
      mask = mask.map((row) => [...row, 1]);
      if (n + 1 - taken < block && n + 1 < maxNew) {
        flush(); // the GPU starts on this step while the host records the next
        continue;
      }
      const all = await history.toInt32Array();
      for (; taken <= n; taken++) {
        for (let b = 0; b < B; b++) if (!done[b]) emit(b, all[taken * B + b]);
        if (done.every(Boolean)) return;
      }
      block = Math.min(GREEDY_MAX_BLOCK, block * 2);
    }
  } finally {
    prev?.dispose();
    history.dispose();
  }
}

/** Generates continuations of `prompts` (strings, or token id arrays). */
export async function generate(
  model: CausalLM,
  tokenizer: Tokenizer,
  prompts: (string | number[])[],
  opts: GenerateOptions = {},
): Promise<GenerateResult> {
  const maxNew = opts.maxNewTokens ?? 32;
  const stop = new Set(opts.eosTokenIds ?? (tokenizer.eosTokenId === null ? [] : [tokenizer.eosTokenId]));
  const pad = tokenizer.padTokenId ?? 0;
  const encoded = prompts.map((p) => {
    if (typeof p !== "string") return p;
    if (opts.chat) {
      return tokenizer.applyChatTemplate([{ role: "user", content: p }], {
        addGenerationPrompt: true,
        tokenize: true,
      });
    }
    const ids = tokenizer.encode(p);
    return tokenizer.bosTokenId !== null && ids[0] !== tokenizer.bosTokenId
      ? [tokenizer.bosTokenId, ...ids]
      : ids;
  });
  if (encoded.some((e) => e.length === 0)) throw new RangeError("generate: a prompt encodes to no tokens");
  const B = encoded.length;
  const T = Math.max(...encoded.map((e) => e.length));
  const ids = encoded.map((e) => [...new Array(T - e.length).fill(pad), ...e]);
  let mask = encoded.map((e) => [...new Array(T - e.length).fill(0), ...new Array(e.length).fill(1)]);
  const rng = new Generator(opts.seed ?? 0);
  const out: number[][] = encoded.map(() => []);
  const done = new Array(B).fill(false);
  // room for the prompt and every new token: the cache never moves
  const cache = new KVCache(model.config.numLayers, T + maxNew);
  const V = model.config.vocabSize;
  try {
    if (!opts.doSample && deviceGreedy) {
      await greedyOnDevice(model, ids, mask, cache, maxNew, (b, tok) => {
        out[b].push(tok);
        if (stop.has(tok)) done[b] = true;
      }, done);
    } else {
      let step: number[][] = ids;
      for (let n = 0; n < maxNew; n++) {
        const logits = await scope(() =>
          noGrad(() =>
            lastLogits(model, model.hiddenStates(step, { attentionMask: mask, cache }), B).toArray()
          )
        );
        const next: number[] = [];
        for (let b = 0; b < B; b++) {
          if (done[b]) {
            next.push(pad);
            continue;
          }
          const tok = pickToken(logits.subarray(b * V, (b + 1) * V), opts, rng);
          out[b].push(tok);
          if (stop.has(tok)) done[b] = true;
          next.push(tok);
        }
        if (done.every(Boolean)) break;
        step = next.map((t) => [t]);
        // finished sequences keep decoding pad tokens (ignored) so the batch stays rectangular
        mask = mask.map((row) => [...row, 1]);
      }
    }
  } finally {
    cache.dispose();
  }
  return { tokens: out, texts: out.map((t) => tokenizer.decode(t, { skipSpecialTokens: true })) };
}
