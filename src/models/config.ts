/**
 * Hugging Face `config.json` → one normalised description of the architecture. Accepts the transformers 4 layout
 * (`rope_theta`, `rope_scaling`) and the transformers 5 layout (`rope_parameters`). Supported `model_type`s:
 * llama (SmolLM/SmolLM2 included), mistral, qwen2, gpt2.
 */
import { WebDPOError } from "../gpu/errors.ts";
import { files } from "../io/platform.ts";
import type { Llama3RopeScaling } from "../autograd/ops/rope.ts";
import { jsonExcerpt } from "../util/json_excerpt.ts";

export class ConfigError extends WebDPOError {}

export const SUPPORTED_MODEL_TYPES = ["llama", "mistral", "qwen2", "gpt2"] as const;
export type Architecture = "llama" | "gpt2";

/** The `llama3` rope_scaling, as the RoPE op takes it. */
export type { Llama3RopeScaling };

export interface ModelConfig {
  /** The config's model_type. */
  modelType: (typeof SUPPORTED_MODEL_TYPES)[number];
  /** Which implementation runs it: llama (llama/mistral/qwen2) or gpt2. */
  architecture: Architecture;
  vocabSize: number;
  hiddenSize: number;
  intermediateSize: number;
  numLayers: number;
  numHeads: number;
  numKvHeads: number;
  headDim: number;
  maxPositionEmbeddings: number;
  /** RMSNorm eps (llama family) or LayerNorm eps (gpt2). */
  normEps: number;
  ropeTheta: number;
  ropeScaling: Llama3RopeScaling | null;
  tieWordEmbeddings: boolean;
  /** Biases on q/k/v projections (qwen2: true; llama: attention_bias). */
  qkvBias: boolean;
  /** Bias on the attention output projection (llama attention_bias). */
  oBias: boolean;
  mlpBias: boolean;
  hiddenAct: "silu" | "gelu_new" | "gelu_pytorch_tanh";
  /** Per layer: the sliding window (keys a query sees, itself included), or null for full attention. */
  layerSlidingWindow: (number | null)[];
  bosTokenId: number | null;
  eosTokenId: number | number[] | null;
  padTokenId: number | null;
  /** The JSON as read (written back on save). */
  raw: Record<string, unknown>;
}

function num(raw: Record<string, unknown>, key: string, fallback?: number): number {
  const v = raw[key];
  if (v === undefined || v === null) {
    if (fallback !== undefined) return fallback;
    throw new ConfigError(`config.json: "${key}" is missing`);
  }
  if (typeof v !== "number" || !Number.isFinite(v)) {
    throw new ConfigError(`config.json: "${key}" is not a number`);
  }
  return v;
}

function intOf(raw: Record<string, unknown>, key: string, fallback?: number): number {
  const v = num(raw, key, fallback);
  if (!Number.isSafeInteger(v) || v <= 0) {
    throw new ConfigError(`config.json: "${key}" must be a positive integer, got ${v}`);
  }
  return v;
}

/**
 * More decoder layers than any model has: a count above it is a corrupt file, refused before anything per layer
 * is allocated.
 */
export const MAX_LAYERS = 65_536;

function layerCount(raw: Record<string, unknown>, key: string): number {
  const layers = intOf(raw, key);
  if (layers > MAX_LAYERS) {
    throw new ConfigError(
      `config.json: "${key}" is ${layers}, more than the ${MAX_LAYERS} layers webdpo accepts`,
    );
  }
  return layers;
}

/** A name-valued key (an activation, a rope type): the string, or `fallback` when unset. */
function nameOf(v: unknown, key: string, fallback: string): string {
  if (v === undefined || v === null) return fallback;
  if (typeof v !== "string") {
    throw new ConfigError(`config.json: "${key}" must be a string, got ${jsonExcerpt(v)}`);
  }
  return v;
}

/** A norm epsilon: a non-negative number. */
function epsOf(raw: Record<string, unknown>, key: string, fallback: number): number {
  const v = num(raw, key, fallback);
  if (v < 0) throw new ConfigError(`config.json: "${key}" must be a non-negative number, got ${v}`);
  return v;
}

function tokenId(v: unknown): number | null {
  return Number.isSafeInteger(v) ? v as number : null;
}

/** The sliding window of the attention layers that have one (`sliding_window`), or null. */
function slidingWindow(raw: Record<string, unknown>): number | null {
  if (raw.sliding_window === undefined || raw.sliding_window === null) return null;
  return intOf(raw, "sliding_window");
}

function ropeOf(raw: Record<string, unknown>): { theta: number; scaling: Llama3RopeScaling | null } {
  const params = (raw.rope_parameters ?? null) as Record<string, unknown> | null;
  const scalingRaw = (params ?? raw.rope_scaling ?? null) as Record<string, unknown> | null;
  const theta = params && typeof params.rope_theta === "number"
    ? params.rope_theta
    : num(raw, "rope_theta", 10000);
  if (!(theta > 0)) {
    throw new ConfigError(`config.json: "rope_theta" must be a positive number, got ${theta}`);
  }
  if (!scalingRaw) return { theta, scaling: null };
  const type = nameOf(scalingRaw.rope_type ?? scalingRaw.type, "rope_type", "default");
  if (type === "default") return { theta, scaling: null };
  if (type !== "llama3") {
    throw new ConfigError(
      `config.json: rope scaling type "${type}" is not supported; webdpo supports the default rotary embedding and "llama3"`,
    );
  }
  return {
    theta,
    scaling: {
      ropeType: "llama3",
      factor: num(scalingRaw, "factor"),
      lowFreqFactor: num(scalingRaw, "low_freq_factor"),
      highFreqFactor: num(scalingRaw, "high_freq_factor"),
      originalMaxPositionEmbeddings: num(scalingRaw, "original_max_position_embeddings"),
    },
  };
}

/** Parses a config.json object. Unsupported architectures raise an error listing the supported types. */
export function parseConfig(raw: Record<string, unknown>): ModelConfig {
  const archs = Array.isArray(raw.architectures)
    ? raw.architectures.filter((a): a is string => typeof a === "string")
    : [];
  let type = typeof raw.model_type === "string" ? raw.model_type : "";
  if (!type && archs.length) {
    const a = archs[0].toLowerCase();
    type = a.startsWith("gpt2")
      ? "gpt2"
      : a.startsWith("qwen2")
      ? "qwen2"
      : a.startsWith("mistral")
      ? "mistral"
      : a.startsWith("llama")
      ? "llama"
      : "";
  }
  if (!(SUPPORTED_MODEL_TYPES as readonly string[]).includes(type)) {
    throw new ConfigError(
      `config.json: model_type "${type || "(none)"}"${
        archs.length ? ` (${archs.join(", ")})` : ""
      } is not supported; ` +
        `supported: ${SUPPORTED_MODEL_TYPES.join(", ")} (SmolLM/SmolLM2 are llama)`,
    );
  }
  const modelType = type as ModelConfig["modelType"];
  const common = {
    bosTokenId: tokenId(raw.bos_token_id),
    eosTokenId: Array.isArray(raw.eos_token_id)
      ? raw.eos_token_id.filter((x): x is number => Number.isSafeInteger(x))
      : tokenId(raw.eos_token_id),
    padTokenId: tokenId(raw.pad_token_id),
    raw,
  };
  if (modelType === "gpt2") {
    const hidden = intOf(raw, "n_embd");
    const heads = intOf(raw, "n_head");
    if (hidden % heads !== 0) {
      throw new ConfigError(`config.json: n_embd ${hidden} is not divisible by n_head ${heads}`);
    }
    const act = nameOf(raw.activation_function, "activation_function", "gelu_new");
    if (act !== "gelu_new" && act !== "gelu_pytorch_tanh") {
      throw new ConfigError(
        `config.json: activation_function "${act}" is not supported for gpt2; supported: gelu_new, gelu_pytorch_tanh`,
      );
    }
    const layers = layerCount(raw, "n_layer");
    return {
      modelType,
      architecture: "gpt2",
      vocabSize: intOf(raw, "vocab_size"),
      hiddenSize: hidden,
      intermediateSize: intOf(raw, "n_inner", 4 * hidden),
      numLayers: layers,
      numHeads: heads,
      numKvHeads: heads,
      headDim: hidden / heads,
      maxPositionEmbeddings: intOf(raw, "n_positions", 1024),
      normEps: epsOf(raw, "layer_norm_epsilon", 1e-5),
      ropeTheta: 0,
      ropeScaling: null,
      tieWordEmbeddings: raw.tie_word_embeddings === undefined ? true : Boolean(raw.tie_word_embeddings),
      qkvBias: true,
      oBias: true,
      mlpBias: true,
      hiddenAct: act,
      layerSlidingWindow: new Array(layers).fill(null),
      ...common,
    };
  }
  const hidden = intOf(raw, "hidden_size");
  const heads = intOf(raw, "num_attention_heads");
  const kvHeads = intOf(raw, "num_key_value_heads", heads);
  if (heads % kvHeads !== 0) {
    throw new ConfigError(
      `config.json: num_attention_heads ${heads} is not a multiple of num_key_value_heads ${kvHeads}`,
    );
  }
  const headDim = intOf(raw, "head_dim", hidden / heads);
  const layers = layerCount(raw, "num_hidden_layers");
  const act = nameOf(raw.hidden_act, "hidden_act", "silu");
  if (act !== "silu") {
    throw new ConfigError(`config.json: hidden_act "${act}" is not supported; supported: silu`);
  }
  const rope = ropeOf(raw);
  const attentionBias = Boolean(raw.attention_bias ?? false);
  // sliding windows: mistral applies one to every layer; qwen2 only with use_sliding_window, from
  // max_window_layers on; an explicit layer_types list (newer configs) decides when present.
  const window = slidingWindow(raw);
  let windows: (number | null)[] = new Array(layers).fill(null);
  if (Array.isArray(raw.layer_types) && window !== null) {
    if (raw.layer_types.length !== layers) {
      throw new ConfigError(
        `config.json: "layer_types" has ${raw.layer_types.length} entries for ${layers} layers (num_hidden_layers)`,
      );
    }
    windows = raw.layer_types.map((t) => (t === "sliding_attention" ? window : null));
  } else if (modelType === "mistral" && window !== null) {
    windows = windows.map(() => window);
  } else if (modelType === "qwen2" && raw.use_sliding_window === true && window !== null) {
    const from = typeof raw.max_window_layers === "number" ? raw.max_window_layers : layers;
    windows = windows.map((_, i) => (i >= from ? window : null));
  }
  return {
    modelType,
    architecture: "llama",
    vocabSize: intOf(raw, "vocab_size"),
    hiddenSize: hidden,
    intermediateSize: intOf(raw, "intermediate_size"),
    numLayers: layers,
    numHeads: heads,
    numKvHeads: kvHeads,
    headDim,
    maxPositionEmbeddings: intOf(raw, "max_position_embeddings", 2048),
    normEps: epsOf(raw, "rms_norm_eps", 1e-6),
    ropeTheta: rope.theta,
    ropeScaling: rope.scaling,
    tieWordEmbeddings: Boolean(raw.tie_word_embeddings ?? false),
    qkvBias: modelType === "qwen2" ? true : attentionBias,
    oBias: modelType === "qwen2" ? false : attentionBias,
    mlpBias: Boolean(raw.mlp_bias ?? false),
    hiddenAct: "silu",
    layerSlidingWindow: windows,
    ...common,
  };
}

/** Reads and parses `<dir>/config.json`. */
export async function readConfig(dir: string): Promise<ModelConfig> {
  const path = `${dir.replace(/\/+$/, "")}/config.json`;
  let text: string;
  try {
    text = await files().readText(path);
  } catch (e) {
    throw new ConfigError(`${path}: cannot read (${e instanceof Error ? e.message : e})`);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new ConfigError(`${path}: not valid JSON (${e instanceof Error ? e.message : e})`);
  }
  if (!json || typeof json !== "object" || Array.isArray(json)) {
    throw new ConfigError(`${path}: not a JSON object`);
  }
  try {
    return parseConfig(json as Record<string, unknown>);
  } catch (e) {
    if (e instanceof ConfigError) throw new ConfigError(e.message.replace(/^config\.json/, path));
    throw e;
  }
}
