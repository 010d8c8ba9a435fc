/**
 * `webdpo train` end to end through a subprocess, on a tiny Llama folder and JSONL preference data that the test
 * writes; its help and error paths; the examples/ folder; docs/TRL_INTEROP.md's generated key table.
 */
import assert from "node:assert/strict";
import { loadTrainConfig, trainHelp } from "../src/cli/config_file.ts";
import { trlKeyTable } from "../src/cli/trl_keys.ts";
import { FIELDS } from "../src/dpo/config_table.ts";
import { initModel } from "../src/models/init.ts";
import { loadModel, saveModel } from "../src/models/loader.ts";
import { readSafetensorsHeader } from "../src/models/safetensors.ts";
import { loadTokenizer } from "../src/tokenizer/tokenizer.ts";
import { charTokenizerFiles, containsATask, TINY_LLAMA } from "./trainer_helpers.ts";
import { gpuTest, setup } from "./util.ts";

const root = new URL("..", import.meta.url).pathname;
const mainTs = `${root}src/cli/main.ts`;
const dir = await Deno.makeTempDir({ prefix: "webdpo-cli-train-" });
const decoder = new TextDecoder();

interface Run {
  code: number;
  out: string;
  err: string;
}

/** `webdpo ARGS` in a subprocess, with a Hugging Face cache of the test's own (`${dir}/hf`). */
async function webdpo(...args: string[]): Promise<Run> {
  const r = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", mainTs, ...args],
    env: { XDG_RUNTIME_DIR: Deno.env.get("XDG_RUNTIME_DIR") ?? "/tmp", HF_HUB_CACHE: `${dir}/hf` },
  }).output();
  return { code: r.code, out: decoder.decode(r.stdout), err: decoder.decode(r.stderr) };
}

/** A user-facing error: one paragraph starting "webdpo train:", no stack trace. */
function assertCleanError(r: Run, code: number, pattern: RegExp): void {
  assert.equal(r.code, code, `exit code; stderr: ${r.err}`);
  assert.match(r.err, /webdpo train: /);
  assert.match(r.err, pattern);
  assert.doesNotMatch(r.err, /^\s+at /m, "no stack trace");
  assert.doesNotMatch(r.err, /internal error/);
}

const jsonl = (rows: unknown[]) => rows.map((r) => JSON.stringify(r)).join("\n") + "\n";

/** The YAML of a short run (keys a test overrides come after it). */
function yaml(extra: Record<string, string | number | boolean>): string {
  const base: Record<string, string | number | boolean> = {
    model_name_or_path: `${dir}/model`,
    dataset_name: `${dir}/prefs`,
    output_dir: `${dir}/out`,
    max_length: 32,
    max_prompt_length: 16,
    per_device_train_batch_size: 4,
    per_device_eval_batch_size: 8,
    learning_rate: 0.003,
    lr_scheduler_type: "constant",
    max_steps: 20,
    logging_steps: 1,
    disable_tqdm: true,
    ...extra,
  };
  return Object.entries(base).map(([k, v]) => `${k}: ${v}`).join("\n") + "\n";
}

async function writeYaml(
  name: string,
  extra: Record<string, string | number | boolean> = {},
): Promise<string> {
  const path = `${dir}/${name}.yaml`;
  await Deno.writeTextFile(path, yaml(extra));
  return path;
}

let prepared: Promise<void> | null = null;
/** The tiny model folder (seeded TINY_LLAMA + character tokenizer) and the datasets, written once. */
function prepare(): Promise<void> {
  prepared ??= (async () => {
    await setup();
    const model = await initModel(TINY_LLAMA, { seed: 1 });
    await saveModel(model, `${dir}/model`, { tokenizer: charTokenizerFiles() });
    model.dispose();
    await Deno.mkdir(`${dir}/prefs`);
    await Deno.writeTextFile(`${dir}/prefs/train.jsonl`, jsonl(containsATask(24, 5)));
    await Deno.writeTextFile(`${dir}/prefs/test.jsonl`, jsonl(containsATask(8, 9)));
    await Deno.mkdir(`${dir}/train_only`);
    await Deno.writeTextFile(`${dir}/train_only/train.jsonl`, jsonl(containsATask(8, 5)));
    // a hub dataset as the Hugging Face cache holds it: datasets--org--name/{refs/main, snapshots/<commit>/}
    const snap = `${dir}/hf/datasets--org--prefs/snapshots/0123abc/data`;
    await Deno.mkdir(snap, { recursive: true });
    await Deno.mkdir(`${dir}/hf/datasets--org--prefs/refs`);
    await Deno.writeTextFile(`${dir}/hf/datasets--org--prefs/refs/main`, "0123abc");
    await Deno.writeTextFile(`${snap}/train-00000-of-00001.jsonl`, jsonl(containsATask(8, 7)));
    const bad = containsATask(4, 5) as Record<string, unknown>[];
    delete bad[2].rejected;
    await Deno.writeTextFile(`${dir}/bad.jsonl`, jsonl(bad));
  })();
  return prepared;
}

Deno.test(
  "webdpo train: YAML + a flag override train a tiny model folder with evaluation; the output loads",
  gpuTest,
  async () => {
    await prepare();
    const config = await writeYaml("run", { eval_strategy: "steps", eval_steps: 2 });
    const r = await webdpo("train", "--config", config, "--max_steps", "3", "--beta=0.2");
    assert.equal(r.code, 0, r.err);
    assert.match(
      r.out,
      /^webdpo train: policy .*\/model \(llama, [\d.]+k parameters\); reference: a frozen copy/m,
    );
    assert.match(r.out, /data: .*\/prefs \[train\], eval: .*\/prefs \[test\]; loss_type sigmoid, beta 0\.2,/);
    // --max_steps 3 overrides the YAML's 20
    assert.match(
      r.out,
      new RegExp(`saved the trained model to ${dir}/out \\(.*\\) after 3 steps, mean training loss 0\\.\\d+`),
    );

    for (const f of ["config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json"]) {
      assert.ok((await Deno.stat(`${dir}/out/${f}`)).isFile, f);
    }
    const before = await loadModel(`${dir}/model`, { requiresGrad: false });
    const after = await loadModel(`${dir}/out`, { requiresGrad: false });
    try {
      assert.equal(after.config.modelType, "llama");
      assert.deepEqual(after.config.raw.hidden_size, TINY_LLAMA.hidden_size);
      const a = before.namedParameters();
      const b = after.namedParameters();
      assert.deepEqual(b.map(([n]) => n), a.map(([n]) => n));
      let changed = 0;
      for (let i = 0; i < a.length; i++) {
        const [x, y] = [await a[i][1].toArray(), await b[i][1].toArray()];
        assert.equal(y.length, x.length);
        assert.ok(y.every(Number.isFinite), a[i][0]);
        if (x.some((v, j) => v !== y[j])) changed++;
      }
      assert.ok(changed > a.length / 2, `${changed} of ${a.length} tensors changed by 3 steps at lr 3e-3`);
    } finally {
      before.dispose();
      after.dispose();
    }
    const tok = await loadTokenizer(`${dir}/out`);
    assert.deepEqual(tok.encode("ab a?y"), [3, 4, 15, 3, 13, 11]);
    assert.equal(tok.eosTokenId, 2);
  },
);

Deno.test("webdpo train: a separate reference model; a hub dataset id from the cache", gpuTest, async () => {
  await prepare();
  const config = await writeYaml("ref", {
    ref_model_name_or_path: `${dir}/model`,
    dataset_name: "org/prefs",
    output_dir: `${dir}/out_ref`,
    max_steps: 1,
  });
  const r = await webdpo("train", "--config", config);
  assert.equal(r.code, 0, r.err);
  assert.match(r.out, new RegExp(`reference: ${dir}/model\\n`));
  assert.match(r.out, new RegExp(`data: ${dir}/hf/datasets--org--prefs/snapshots/0123abc \\[train\\];`));
  assert.match(r.out, /after 1 steps/);
  assert.ok((await Deno.stat(`${dir}/out_ref/model.safetensors`)).isFile);
});

Deno.test(
  "webdpo train: ref_model_init_kwargs torch_dtype stores the named or copied reference in 16 bits",
  gpuTest,
  async () => {
    await prepare();
    for (
      const [name, extra] of [["ref16", { ref_model_name_or_path: `${dir}/model` }], ["copy16", {}]] as const
    ) {
      const config = await writeYaml(name, {
        ...extra,
        ref_model_init_kwargs: "{torch_dtype: bfloat16}",
        output_dir: `${dir}/out_${name}`,
        max_steps: 1,
      });
      const r = await webdpo("train", "--config", config);
      assert.equal(r.code, 0, r.err);
      assert.match(r.out, /reference: .* \(stored in bfloat16\)\n/);
      assert.match(r.out, /after 1 steps/);
    }
    const bad = await writeYaml("ref16bad", {
      ref_model_name_or_path: `${dir}/model`,
      ref_model_init_kwargs: "{torch_dtype: float8}",
      output_dir: `${dir}/out_ref16bad`,
      max_steps: 1,
    });
    const r = await webdpo("train", "--config", bad);
    assert.notEqual(r.code, 0);
    assert.match(
      r.err,
      /ref_model_init_kwargs: torch_dtype "float8" is not a dtype webdpo stores weights in/,
    );
  },
);

Deno.test(
  "webdpo train with use_peft writes a PEFT adapter folder; training continues from it",
  gpuTest,
  async () => {
    await prepare();
    const config = await writeYaml("lora", {
      use_peft: true,
      lora_r: 4,
      lora_alpha: 8,
      lora_target_modules: "all-linear",
      output_dir: `${dir}/out_lora`,
      max_steps: 2,
    });
    const r = await webdpo("train", "--config", config);
    assert.equal(r.code, 0, r.err);
    assert.match(r.out, /reference: the base model \(adapters disabled\)/);
    assert.match(r.out, /saved the trained LoRA adapter/);
    const cfg = JSON.parse(await Deno.readTextFile(`${dir}/out_lora/adapter_config.json`));
    assert.equal(cfg.peft_type, "LORA");
    assert.equal(cfg.r, 4);
    assert.equal(cfg.lora_alpha, 8);
    const names = [
      ...(await readSafetensorsHeader(`${dir}/out_lora/adapter_model.safetensors`)).byName.keys(),
    ];
    assert.ok(
      names.includes("base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight"),
      names.join(", "),
    );
    assert.ok(names.includes("base_model.model.model.layers.1.mlp.down_proj.lora_B.weight"));
    // the adapter folder is itself a model_name_or_path: its base plus the adapter, trained further
    const again = await writeYaml("lora2", {
      model_name_or_path: `${dir}/out_lora`,
      output_dir: `${dir}/out_lora2`,
      max_steps: 1,
    });
    const r2 = await webdpo("train", "--config", again);
    assert.equal(r2.code, 0, r2.err);
    assert.ok((await Deno.stat(`${dir}/out_lora2/adapter_model.safetensors`)).isFile);
  },
);

Deno.test("webdpo train: Ctrl-C saves a checkpoint, exits 0 and writes no final model", gpuTest, async () => {
  await prepare();
  const out = `${dir}/out_int`;
  const config = await writeYaml("int", { output_dir: out, max_steps: 100000, save_strategy: "no" });
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", mainTs, "train", "--config", config],
    env: { XDG_RUNTIME_DIR: Deno.env.get("XDG_RUNTIME_DIR") ?? "/tmp" },
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const stderr = new Response(child.stderr).text();
  // wait for the first logged step, then interrupt
  let text = "";
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  while (!/step=\d+/.test(text)) {
    const { value, done } = await reader.read();
    if (done) break;
    text += value;
  }
  child.kill("SIGINT");
  for (let r = await reader.read(); !r.done; r = await reader.read()) text += r.value;
  const status = await child.status;
  const all = text + (await stderr);
  assert.equal(status.code, 0, all);
  const m = /training interrupted at step (\d+)\/100000; checkpoint saved to (\S+)\. Resume with/.exec(all);
  assert.ok(m, all);
  assert.equal(m[2], `${out}/checkpoint-${m[1]}`);
  assert.ok((await Deno.stat(`${m[2]}/model.safetensors`)).isFile);
  await assert.rejects(Deno.stat(`${out}/model.safetensors`), Deno.errors.NotFound);
  assert.doesNotMatch(all, /saved the trained model/);
});

Deno.test("webdpo train --help prints every key; so does `deno task train --help`", async () => {
  const r = await webdpo("train", "--help");
  assert.equal(r.code, 0, r.err);
  assert.equal(r.out, trainHelp() + "\n");
  for (const f of FIELDS) assert.ok(r.out.includes(`--${f.name} <`), f.name);
  const task = await new Deno.Command(Deno.execPath(), { args: ["task", "-q", "train", "-h"], cwd: root })
    .output();
  assert.equal(task.code, 0, decoder.decode(task.stderr));
  assert.equal(decoder.decode(task.stdout), trainHelp() + "\n");
});

Deno.test("webdpo train: config and usage errors exit 2 with one paragraph naming the fix", async () => {
  await prepare();
  await Deno.writeTextFile(`${dir}/typo.yaml`, yaml({}) + "betta: 0.2\n");
  await Deno.writeTextFile(`${dir}/broken.yaml`, yaml({}) + "beta: [0.1\n");
  await Deno.writeTextFile(`${dir}/nomodel.yaml`, "dataset_name: x.jsonl\noutput_dir: out\n");
  const [typo, flag, broken, badValue, noModel, none, fileEval, folderEval] = await Promise.all([
    webdpo("train", "--config", `${dir}/typo.yaml`),
    webdpo("train", "--config", await writeYaml("ok"), "--los_type", "ipo"),
    webdpo("train", "--config", `${dir}/broken.yaml`),
    webdpo("train", "--config", await writeYaml("ok2"), "--beta", "-1"),
    webdpo("train", "--config", `${dir}/nomodel.yaml`),
    webdpo("train"),
    webdpo(
      "train",
      "--config",
      await writeYaml("file_eval", { dataset_name: `${dir}/bad.jsonl`, eval_strategy: "steps" }),
    ),
    webdpo(
      "train",
      "--config",
      await writeYaml("folder_eval", { dataset_name: `${dir}/train_only`, eval_strategy: "epoch" }),
    ),
  ]);
  assertCleanError(typo, 2, /typo\.yaml: unknown key 'betta'; did you mean 'beta'\?/);
  assertCleanError(flag, 2, /unknown flag '--los_type'; did you mean '--loss_type'\?/);
  assertCleanError(broken, 2, /broken\.yaml is not valid YAML/);
  assertCleanError(badValue, 2, /beta/);
  assertCleanError(noModel, 2, /model_name_or_path is required/);
  assertCleanError(none, 2, /no configuration: give --config dpo\.yaml/);
  assertCleanError(
    fileEval,
    2,
    /eval_strategy is 'steps'.*bad\.jsonl is a single file.*set eval_strategy: no/,
  );
  assertCleanError(
    folderEval,
    2,
    /eval_strategy is 'epoch', so the run needs the 'test' split.*train_only has no files for it/,
  );
});

Deno.test(
  "webdpo train: runtime errors exit 1: a missing model folder or dataset, a bad dataset row",
  gpuTest,
  async () => {
    await prepare();
    const missing = await webdpo(
      "train",
      "--config",
      await writeYaml("missing", { model_name_or_path: `${dir}/nope` }),
    );
    assertCleanError(missing, 1, new RegExp(`${dir}/nope: no such folder`));
    const noData = await webdpo(
      "train",
      "--config",
      await writeYaml("nodata", { dataset_name: `${dir}/absent.jsonl` }),
    );
    assertCleanError(noData, 1, /absent\.jsonl: no such file or folder/);
    const notCached = await webdpo(
      "train",
      "--config",
      await writeYaml("hub", { dataset_name: "org/absent" }),
    );
    assertCleanError(
      notCached,
      1,
      /org\/absent is neither a local file or folder nor a dataset in the Hugging Face/,
    );
    assert.match(
      notCached.err,
      /huggingface-cli download --repo-type dataset org\/absent --local-dir absent/,
    );
    const badRow = await webdpo(
      "train",
      "--config",
      await writeYaml("badrow", { dataset_name: `${dir}/bad.jsonl`, output_dir: `${dir}/out_bad` }),
    );
    assertCleanError(badRow, 1, /bad\.jsonl line 3: .*rejected/);
  },
);

Deno.test("examples/dpo.yaml is a valid config with no warnings; examples/train_dpo.ts type-checks", async () => {
  const { config, script } = await loadTrainConfig(`${root}examples/dpo.yaml`, []);
  assert.equal(script.modelNameOrPath, "./SmolLM2-135M-Instruct");
  assert.equal(script.refModelNameOrPath, null);
  assert.equal(config.lossType, "sigmoid");
  assert.equal(config.gradientCheckpointing, true);
  assert.deepEqual(config.warnings, []);
  // every key of the example is one TRL ≥ 0.9 accepts (ref_model_name_or_path stays commented out)
  const text = await Deno.readTextFile(`${root}examples/dpo.yaml`);
  const keys = [...text.matchAll(/^([a-z_]+):/gm)].map((m) => m[1]);
  assert.ok(keys.length >= 20, String(keys));
  for (const k of keys) {
    const f = FIELDS.find((x) => x.name === k)!;
    assert.ok(f.trl !== null, `${k} is webdpo-only`);
  }
  // every key line is commented (the line above it is a comment)
  const lines = text.split("\n");
  lines.forEach((l, i) => {
    if (/^[a-z_]+:/.test(l)) assert.match(lines[i - 1], /^(#|[a-z_]+:)/, `no comment above ${l}`);
  });
  const check = await new Deno.Command(Deno.execPath(), {
    args: ["check", `${root}examples/train_dpo.ts`],
    cwd: root,
  }).output();
  assert.equal(check.code, 0, decoder.decode(check.stderr));
});

Deno.test("docs/TRL_INTEROP.md holds the key table generated from config_table.ts", async () => {
  const doc = await Deno.readTextFile(`${root}docs/TRL_INTEROP.md`);
  const m = /<!-- BEGIN GENERATED: deno run src\/cli\/trl_keys\.ts -->\n([\s\S]*?)\n<!-- END GENERATED -->/
    .exec(doc);
  assert.ok(m, "generated block markers");
  // the same cells (deno fmt may re-pad the columns)
  const cells = (t: string) =>
    t.trim().split("\n").map((l) => l.replace(/\s+/g, " ").replace(/-{3,}/g, "---"));
  assert.deepEqual(cells(m[1]), cells(trlKeyTable()));
  assert.match(m[1], /\| `ref_model_name_or_path` +\| script +\| \*\*webdpo-only\*\* +\|/);
  assert.match(m[1], /\| `beta` +\| DPO +\| TRL ≥ 0\.9 +\|/);
  assert.match(m[1], /\| `max_prompt_length` +\| DPO +\| TRL ≥ 0\.9, < 0\.29 +\|/);
});

Deno.test({
  name: "cleanup the temporary folder",
  fn: async () => {
    await Deno.remove(dir, { recursive: true });
  },
});
