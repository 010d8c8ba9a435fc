/**
 * Fuzzes the JSON configuration files of model folders: config.json (damaged real configs of every layout the
 * fixtures hold, and generated ones) and PEFT's adapter_config.json (damaged and generated).
 */
import fc from "fast-check";
import { fuzzStep, fuzzTests } from "./fuzz_util.ts";
import { damagedJsonFile, EDGE_NUMBERS, EDGE_STRINGS, edgeValue, jsonBytes } from "./fuzz_mutations.ts";

const TARGETS = new URL("./fuzz_targets/json_configs.ts", import.meta.url);
const readJson = async (path: string) => JSON.parse(await Deno.readTextFile(new URL(path, import.meta.url)));

const MODEL_CONFIGS = await Promise.all([
  "./fixtures/hf-reference/llama/config.json",
  "./fixtures/hf-reference/llama/config.transformers_v5.json",
  "./fixtures/hf-reference/gpt2/config.json",
  "./fixtures/tiny-gpt2-transformers/config.json",
  "../examples/tiny-chat/config.json",
].map(readJson));

/** A value for a config key: mostly plausible, sometimes an edge value. */
const sized = fc.oneof({ weight: 3, arbitrary: fc.integer({ min: 1, max: 64 }) }, {
  weight: 1,
  arbitrary: edgeValue(),
});

/** A generated config.json: the keys the parser reads, with plausible or edge values. */
const generatedModelConfig = fc.record({
  model_type: fc.oneof(fc.constantFrom("llama", "mistral", "qwen2", "gpt2"), edgeValue()),
  architectures: fc.oneof(fc.constant(["LlamaForCausalLM"]), edgeValue()),
  vocab_size: sized,
  hidden_size: sized,
  intermediate_size: sized,
  num_hidden_layers: sized,
  num_attention_heads: sized,
  num_key_value_heads: sized,
  head_dim: sized,
  n_embd: sized,
  n_head: sized,
  n_layer: sized,
  n_inner: sized,
  max_position_embeddings: sized,
  sliding_window: sized,
  max_window_layers: sized,
  use_sliding_window: fc.oneof(fc.boolean(), edgeValue()),
  layer_types: fc.oneof(
    fc.array(fc.constantFrom("sliding_attention", "full_attention"), { maxLength: 8 }),
    edgeValue(),
  ),
  rope_theta: fc.oneof(fc.double({ min: 1, max: 1e6 }), edgeValue()),
  rope_scaling: fc.oneof(
    fc.constant(null),
    fc.record({
      rope_type: fc.constantFrom("llama3", "default", "linear"),
      factor: sized,
      low_freq_factor: sized,
      high_freq_factor: sized,
      original_max_position_embeddings: sized,
    }, { requiredKeys: [] }),
    edgeValue(),
  ),
  rope_parameters: fc.oneof(fc.constant(undefined), edgeValue()),
  rms_norm_eps: fc.oneof(fc.constant(1e-5), edgeValue()),
  layer_norm_epsilon: fc.oneof(fc.constant(1e-5), edgeValue()),
  hidden_act: fc.oneof(fc.constant("silu"), edgeValue()),
  activation_function: fc.oneof(fc.constant("gelu_new"), edgeValue()),
  eos_token_id: fc.oneof(fc.nat(10), fc.array(fc.nat(10)), edgeValue()),
  bos_token_id: fc.oneof(fc.nat(10), edgeValue()),
  pad_token_id: fc.oneof(fc.nat(10), edgeValue()),
  tie_word_embeddings: fc.oneof(fc.boolean(), edgeValue()),
}, { requiredKeys: ["model_type"] }).map((c) => jsonBytes(c));

const configCase = (bytes: Uint8Array) => ({ files: { "config.json": bytes } });

const ADAPTER_CONFIG = {
  alpha_pattern: {},
  auto_mapping: null,
  base_model_name_or_path: "tiny-chat",
  bias: "none",
  fan_in_fan_out: false,
  inference_mode: true,
  init_lora_weights: true,
  layers_to_transform: null,
  lora_alpha: 16,
  lora_dropout: 0.05,
  modules_to_save: ["lm_head"],
  peft_type: "LORA",
  r: 8,
  rank_pattern: { "q_proj": 4 },
  target_modules: ["q_proj", "v_proj"],
  exclude_modules: "model\\.layers\\.1\\..*",
  task_type: "CAUSAL_LM",
  use_dora: false,
  use_rslora: false,
};

/** A generated adapter_config.json: its keys with plausible or edge values, and a random extra key. */
const generatedAdapterConfig = fc.record({
  r: sized,
  lora_alpha: sized,
  lora_dropout: fc.oneof(fc.double({ min: 0, max: 1, noNaN: true }), edgeValue()),
  target_modules: fc.oneof(
    fc.array(fc.constantFrom(...EDGE_STRINGS, "q_proj")),
    fc.constantFrom(...EDGE_STRINGS),
    edgeValue(),
  ),
  exclude_modules: fc.oneof(fc.constantFrom(...EDGE_STRINGS), edgeValue()),
  rank_pattern: fc.oneof(
    fc.dictionary(fc.constantFrom(...EDGE_STRINGS), fc.oneof(fc.nat(16), fc.constantFrom(...EDGE_NUMBERS))),
    edgeValue(),
  ),
  alpha_pattern: fc.oneof(
    fc.dictionary(fc.string({ maxLength: 6 }), fc.oneof(fc.nat(16), fc.constantFrom(...EDGE_NUMBERS))),
    edgeValue(),
  ),
  use_rslora: fc.oneof(fc.boolean(), edgeValue()),
  peft_type: fc.oneof(fc.constant("LORA"), edgeValue()),
  task_type: fc.oneof(fc.constant("CAUSAL_LM"), edgeValue()),
  modules_to_save: fc.oneof(fc.constant(null), edgeValue()),
}, { requiredKeys: [] }).chain((c) =>
  fc.oneof(
    fc.constant(c),
    fc.tuple(fc.string({ maxLength: 8 }), edgeValue()).map(([k, v]) => ({ ...c, [k]: v })),
  )
).map((c) => jsonBytes(c));

const adapterCase = (bytes: Uint8Array) => ({ files: { "adapter_config.json": bytes } });

fuzzTests("fuzz JSON configs", [
  fuzzStep("config.json: real configs damaged", {
    module: TARGETS,
    target: "modelConfig",
    cases: fc.oneof(...MODEL_CONFIGS.map((c) => damagedJsonFile(c, 2))),
    request: configCase,
    names: /config\.json: /,
    runs: 80,
  }),
  fuzzStep("config.json: generated configs", {
    module: TARGETS,
    target: "modelConfig",
    cases: generatedModelConfig,
    request: configCase,
    names: /config\.json: /,
    runs: 80,
  }),
  fuzzStep("adapter_config.json: a real config damaged, and generated configs", {
    module: TARGETS,
    target: "adapterConfig",
    cases: fc.oneof(damagedJsonFile(ADAPTER_CONFIG, 2), generatedAdapterConfig),
    request: adapterCase,
    names: /adapter_config\.json: /,
    runs: 120,
  }),
]);
