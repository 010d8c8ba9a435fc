/**
 * The files of the demo's tiny chat model (examples/tiny-chat): a character-level tokenizer in Hugging Face's
 * `tokenizer.json` format, its `tokenizer_config.json` (ChatML-style chat template) and `special_tokens_map.json`,
 * the Llama `config.json` and `generation_config.json`.
 *
 * The tokenizer uses only standard components so both `@huggingface/tokenizers` and the Rust `tokenizers` library
 * (transformers' `PreTrainedTokenizerFast`) load it: a BPE model with one vocabulary entry per character and no
 * merges (so every character is one token), no normalizer or pre-tokenizer, and the `Fuse` decoder (tokens are
 * concatenated, not joined with spaces). The special tokens are added tokens, matched before the model runs.
 */

/** The special tokens, at ids 0..3. */
export const PAD_TOKEN = "<|pad|>";
export const IM_START = "<|im_start|>";
export const IM_END = "<|im_end|>";
export const UNK_TOKEN = "<|unk|>";
export const SPECIAL_TOKENS = [PAD_TOKEN, IM_START, IM_END, UNK_TOKEN] as const;

/** The characters of the vocabulary after the special tokens: newline, then printable ASCII (space to ~). */
export const CHARACTERS: string[] = [
  "\n",
  ...Array.from({ length: 95 }, (_, i) => String.fromCharCode(32 + i)),
];

/**
 * ChatML with the newline between turns written before each `<|im_start|>` rather than after each `<|im_end|>`:
 * a prompt rendered with the generation prompt ends "…<|im_end|>\n<|im_start|>assistant\n" exactly as ChatML's,
 * and a conversation ends with the assistant's `<|im_end|>` (the EOS), so the completion is a clean extension of
 * the prompt.
 */
export const CHAT_TEMPLATE = "{% for message in messages %}{% if not loop.first %}{{ '\\n' }}{% endif %}" +
  "{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' }}{% endfor %}" +
  "{% if add_generation_prompt %}{% if messages | length > 0 %}{{ '\\n' }}{% endif %}" +
  "{{ '<|im_start|>assistant\\n' }}{% endif %}";

/** The vocabulary: token → id. */
export function tinyVocab(): Record<string, number> {
  const vocab: Record<string, number> = {};
  [...SPECIAL_TOKENS, ...CHARACTERS].forEach((t, i) => (vocab[t] = i));
  return vocab;
}

/** tokenizer.json. */
export function tinyTokenizerJson(): Record<string, unknown> {
  return {
    version: "1.0",
    truncation: null,
    padding: null,
    added_tokens: SPECIAL_TOKENS.map((content, id) => ({
      id,
      content,
      single_word: false,
      lstrip: false,
      rstrip: false,
      normalized: false,
      special: true,
    })),
    normalizer: null,
    pre_tokenizer: null,
    post_processor: null,
    decoder: { type: "Fuse" },
    model: {
      type: "BPE",
      dropout: null,
      unk_token: UNK_TOKEN,
      continuing_subword_prefix: null,
      end_of_word_suffix: null,
      fuse_unk: false,
      byte_fallback: false,
      ignore_merges: false,
      vocab: tinyVocab(),
      merges: [],
    },
  };
}

/** tokenizer_config.json. */
export function tinyTokenizerConfig(maxLength: number): Record<string, unknown> {
  const decoder: Record<string, unknown> = {};
  SPECIAL_TOKENS.forEach((content, id) => {
    decoder[String(id)] = {
      content,
      lstrip: false,
      normalized: false,
      rstrip: false,
      single_word: false,
      special: true,
    };
  });
  return {
    tokenizer_class: "PreTrainedTokenizerFast",
    added_tokens_decoder: decoder,
    additional_special_tokens: [IM_START, IM_END],
    bos_token: null,
    eos_token: IM_END,
    pad_token: PAD_TOKEN,
    unk_token: UNK_TOKEN,
    chat_template: CHAT_TEMPLATE,
    clean_up_tokenization_spaces: false,
    model_max_length: maxLength,
    padding_side: "left",
  };
}

/** special_tokens_map.json. */
export function tinySpecialTokensMap(): Record<string, unknown> {
  return {
    additional_special_tokens: [IM_START, IM_END],
    eos_token: IM_END,
    pad_token: PAD_TOKEN,
    unk_token: UNK_TOKEN,
  };
}

/** The architecture knobs of the tiny model. */
export interface TinyModelShape {
  hiddenSize: number;
  intermediateSize: number;
  numLayers: number;
  numHeads: number;
  numKvHeads: number;
  maxPositions: number;
  ropeTheta: number;
}

/**
 * The demo model: 2 layers, hidden 64, 4 heads of 16. rope_theta 100 (Llama's default is 10000) gives the rotary
 * embedding more high frequencies, so attention can pick a token a fixed distance back sharply — what restating
 * the question in the answer needs — and SFT learns it in a few hundred steps instead of stalling.
 */
export const DEFAULT_SHAPE: TinyModelShape = {
  hiddenSize: 64,
  intermediateSize: 192,
  numLayers: 2,
  numHeads: 4,
  numKvHeads: 4,
  maxPositions: 64,
  ropeTheta: 100,
};

/** config.json of a LlamaForCausalLM. */
export function tinyModelConfig(shape: TinyModelShape = DEFAULT_SHAPE): Record<string, unknown> {
  const vocab = SPECIAL_TOKENS.length + CHARACTERS.length;
  return {
    architectures: ["LlamaForCausalLM"],
    model_type: "llama",
    vocab_size: vocab,
    hidden_size: shape.hiddenSize,
    intermediate_size: shape.intermediateSize,
    num_hidden_layers: shape.numLayers,
    num_attention_heads: shape.numHeads,
    num_key_value_heads: shape.numKvHeads,
    head_dim: shape.hiddenSize / shape.numHeads,
    hidden_act: "silu",
    max_position_embeddings: shape.maxPositions,
    initializer_range: 0.02,
    rms_norm_eps: 1e-5,
    rope_theta: shape.ropeTheta,
    rope_scaling: null,
    attention_bias: false,
    attention_dropout: 0,
    mlp_bias: false,
    pretraining_tp: 1,
    tie_word_embeddings: false,
    use_cache: true,
    bos_token_id: null,
    eos_token_id: SPECIAL_TOKENS.indexOf(IM_END),
    pad_token_id: SPECIAL_TOKENS.indexOf(PAD_TOKEN),
    torch_dtype: "float32",
  };
}

/** generation_config.json: greedy, stop at <|im_end|>. */
export function tinyGenerationConfig(maxNewTokens = 16): Record<string, unknown> {
  return {
    eos_token_id: SPECIAL_TOKENS.indexOf(IM_END),
    pad_token_id: SPECIAL_TOKENS.indexOf(PAD_TOKEN),
    do_sample: false,
    max_new_tokens: maxNewTokens,
  };
}
