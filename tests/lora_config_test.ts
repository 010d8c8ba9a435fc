/**
 * LoraConfig on the config builder (pure TypeScript, no GPU): every spelling of every option, PEFT's defaults,
 * and the messages it gained from the shared checks (ranges in words, "cannot be null", no far-fetched
 * suggestion for a key nothing is close to). lora_test.ts keeps the checks LoRA had before.
 */
import assert from "node:assert/strict";
import { LORA_DEFAULTS, loraConfig, loraConfigFromPeft, LoraError } from "../src/nn/lora_config.ts";

/** Asserts that `fn` throws a LoraError whose message is `message`. */
function rejects(fn: () => unknown, message: string): void {
  assert.throws(fn, (e) => {
    assert.ok(e instanceof LoraError, `expected a LoraError, got ${e}`);
    assert.equal(e.message, message);
    return true;
  });
}

Deno.test("loraConfig: PEFT's defaults; camelCase, snake_case and TRL's lora_ names for each option", () => {
  assert.deepEqual(loraConfig(), {
    r: 8,
    loraAlpha: 8,
    loraDropout: 0,
    targetModules: null,
    excludeModules: null,
    modulesToSave: null,
    useRslora: false,
    bias: "none",
    rankPattern: {},
    alphaPattern: {},
    initLoraWeights: true,
    baseModelNameOrPath: null,
  });
  assert.deepEqual(loraConfig(), LORA_DEFAULTS);
  const spellings: [string[], unknown, keyof typeof LORA_DEFAULTS, unknown][] = [
    [["r", "lora_r", "loraR"], 4, "r", 4],
    [["lora_alpha", "loraAlpha"], 2.5, "loraAlpha", 2.5],
    [["lora_dropout", "loraDropout"], 0.1, "loraDropout", 0.1],
    [
      ["target_modules", "targetModules", "lora_target_modules", "loraTargetModules"],
      "q_proj|k_proj",
      "targetModules",
      "q_proj|k_proj",
    ],
    [["exclude_modules", "excludeModules"], ["o_proj"], "excludeModules", ["o_proj"]],
    [
      ["modules_to_save", "modulesToSave", "lora_modules_to_save", "loraModulesToSave"],
      "lm_head",
      "modulesToSave",
      ["lm_head"],
    ],
    [["use_rslora", "useRslora"], true, "useRslora", true],
    [["rank_pattern", "rankPattern"], { o_proj: 2 }, "rankPattern", { o_proj: 2 }],
    [["alpha_pattern", "alphaPattern"], { o_proj: 3 }, "alphaPattern", { o_proj: 3 }],
    [["base_model_name_or_path", "baseModelNameOrPath"], "", "baseModelNameOrPath", ""],
  ];
  for (const [keys, value, field, kept] of spellings) {
    for (const k of keys) assert.deepEqual(loraConfig({ [k]: value })[field], kept, k);
  }
  // null unsets what may be unset; patterns given as null are empty
  assert.deepEqual(loraConfig({ target_modules: null, rank_pattern: null as never }).rankPattern, {});
  // undefined counts as not given
  assert.equal(loraConfig({ r: undefined, lora_r: 4 }).r, 4);
});

Deno.test("loraConfig gains the shared checks' messages", () => {
  rejects(() => loraConfig({ r: null as never }), "LoRA config: r cannot be null (default 8)");
  rejects(
    () => loraConfig({ lora_dropout: "x" }),
    'LoRA config: lora_dropout must be a finite number in [0, 1), got "x"',
  );
  rejects(() => loraConfig({ loraDropout: -0.1 }), "LoRA config: loraDropout must be in [0, 1), got -0.1");
  rejects(
    () => loraConfig({ lora_alpha: Infinity }),
    "LoRA config: lora_alpha must be a finite number, got null",
  );
  // a key nothing is close to lists the options instead of suggesting a far one (it suggested "r")
  rejects(
    () => loraConfig({ zzzzzzzz: 1 }),
    'LoRA config: unknown key "zzzzzzzz" (no key is close; the keys are r, lora_alpha, lora_dropout, ' +
      "target_modules, exclude_modules, modules_to_save, use_rslora, bias, rank_pattern, alpha_pattern, " +
      "init_lora_weights, base_model_name_or_path)",
  );
  rejects(
    () => loraConfig({ loraAlpa: 1 }),
    'LoRA config: unknown key "loraAlpa" (did you mean "loraAlpha"?)',
  );
  rejects(
    () => loraConfig({ target_modules: ["q_proj"], loraTargetModules: ["v_proj"] }),
    'LoRA config: "loraTargetModules" and "target_modules" set the same option',
  );
  rejects(
    () => loraConfigFromPeft({ r: 4, lora_dropout: null }, "a/adapter_config.json"),
    "a/adapter_config.json: LoRA config: lora_dropout cannot be null (default 0)",
  );
});
