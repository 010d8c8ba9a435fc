/**
 * The inputs the parser fuzzers (tests/fuzz_*_test.ts) found failing, minimized, as plain tests: each once ended
 * in an unhandled error, a hang or a wrong result, and must now end in a WebDPOError naming the file and place.
 */
import assert from "node:assert/strict";
import { readSafetensorsHeader, readShardIndex, SafetensorsError } from "../src/models/safetensors.ts";
import { ConfigError, readConfig } from "../src/models/config.ts";
import { readAdapterConfig } from "../src/models/adapter_io.ts";
import { LoraError } from "../src/nn/lora_config.ts";
import { loadTokenizer, TokenizerError } from "../src/tokenizer/tokenizer.ts";
import { loadDataset } from "../src/data/dataset.ts";
import { DatasetError } from "../src/data/tokenize_row.ts";
import { parquetWriteBuffer } from "hyparquet-writer";
import { Bool, Field, List, Table, tableToIPC, vectorFromArray } from "apache-arrow";
import { loadTrainConfig } from "../src/cli/config_file.ts";
import { ConfigError as TrainConfigError } from "../src/dpo/config.ts";
import { CheckpointError, readOptimizerFile } from "../src/train/checkpoint.ts";
import { readLoopFiles } from "../src/train/checkpoint_state.ts";
import type { TrainingArgs } from "../src/train/args.ts";
import { readBcoState } from "../src/dpo/checkpoint_parts.ts";
import { writeSafetensors } from "../src/models/safetensors.ts";

const deepArray = (depth: number) => "[".repeat(depth) + "]".repeat(depth);

/** Writes `files` into a temporary folder, runs `fn` on it, removes it. */
async function inFolder<T>(files: Record<string, string | Uint8Array>, fn: (dir: string) => Promise<T>) {
  const dir = await Deno.makeTempDir({ prefix: "webdpo-regression-" });
  try {
    for (const [name, content] of Object.entries(files)) {
      if (typeof content === "string") await Deno.writeTextFile(`${dir}/${name}`, content);
      else await Deno.writeFile(`${dir}/${name}`, content);
    }
    return await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

/** A safetensors file of `header` (JSON text) and `dataBytes` zero bytes. */
function safetensors(header: string, dataBytes = 0): Uint8Array {
  const json = new TextEncoder().encode(header);
  const out = new Uint8Array(8 + json.length + dataBytes);
  new DataView(out.buffer).setBigUint64(0, BigInt(json.length), true);
  out.set(json, 8);
  return out;
}

Deno.test("regression: safetensors __metadata__ and dtype nested 100,000 deep (was a RangeError)", async () => {
  for (
    const header of [
      `{"__metadata__":${deepArray(100_000)}}`,
      `{"__metadata__":{"format":${deepArray(100_000)}}}`,
      `{"w":{"dtype":${deepArray(100_000)},"shape":[1],"data_offsets":[0,4]}}`,
    ]
  ) {
    await inFolder({ "model.safetensors": safetensors(header, 4) }, async (dir) => {
      await assert.rejects(
        readSafetensorsHeader(`${dir}/model.safetensors`),
        (e) =>
          e instanceof SafetensorsError &&
          /model\.safetensors: corrupt header: .*("__metadata__"|"w")/.test(e.message),
      );
    });
  }
});

Deno.test("regression: a safetensors dtype named like an Object.prototype member is an unknown dtype", async () => {
  const header = `{"w":{"dtype":"toString","shape":[1],"data_offsets":[0,4]}}`;
  await inFolder({ "model.safetensors": safetensors(header, 4) }, async (dir) => {
    await assert.rejects(
      readSafetensorsHeader(`${dir}/model.safetensors`),
      /tensor "w" has unknown dtype toString/,
    );
  });
});

Deno.test("regression: a shard index that is null, or maps a tensor to a non-file, is refused", async () => {
  for (
    const [index, message] of [
      ["null", /has no "weight_map" object/],
      [`{"weight_map":{"w":[]}}`, /weight_map\["w"\] is \[\], not the name of a file/],
      [`{"weight_map":{"w":"../other/model.safetensors"}}`, /weight_map\["w"\] is "\.\.\/other/],
    ] as const
  ) {
    await inFolder({ "model.safetensors.index.json": index }, async (dir) => {
      await assert.rejects(
        readShardIndex(`${dir}/model.safetensors.index.json`),
        (e) =>
          e instanceof SafetensorsError && /model\.safetensors\.index\.json: /.test(e.message) &&
          message.test(e.message),
      );
    });
  }
});

const LLAMA = {
  model_type: "llama",
  hidden_size: 64,
  intermediate_size: 128,
  num_attention_heads: 4,
  num_hidden_layers: 2,
  vocab_size: 10,
};

Deno.test("regression: config.json sizes past 2^53, huge layer counts, deep names, bad windows", async () => {
  for (
    const [change, message] of [
      // accepted before, as an integer that arithmetic cannot represent
      [{ vocab_size: 2 ** 53 }, /"vocab_size" must be a positive integer, got 9007199254740992/],
      // a RangeError (invalid array length) for 2^32; 10 s and 1.3 GB of heap for 1e8
      [{ num_hidden_layers: 2 ** 32 }, /"num_hidden_layers" is 4294967296, more than the 65536 layers/],
      [{ num_hidden_layers: 1e8 }, /"num_hidden_layers" is 100000000/],
      // RangeErrors: String() of an array nested 100,000 deep
      [{ architectures: JSON.parse(deepArray(100_000)), model_type: undefined }, /model_type "\(none\)"/],
      [{ hidden_act: JSON.parse(deepArray(100_000)) }, /"hidden_act" must be a string, got \[\[\[/],
      // accepted before: windows for 1 of 2 layers, a negative window
      [
        { model_type: "mistral", sliding_window: 4, layer_types: ["sliding_attention"] },
        /"layer_types" has 1 entries for 2 layers/,
      ],
      [{ model_type: "mistral", sliding_window: -3 }, /"sliding_window" must be a positive integer, got -3/],
    ] as const
  ) {
    const config = JSON.stringify({ ...LLAMA, ...change });
    await inFolder({ "config.json": config }, async (dir) => {
      await assert.rejects(
        readConfig(dir),
        (e) =>
          e instanceof ConfigError && e.message.startsWith(`${dir}/config.json: `) && message.test(e.message),
      );
    });
  }
});

Deno.test("regression: adapter_config.json ranks past 2^53 and regexes too large to compile", async () => {
  for (
    const [change, message] of [
      // accepted before (a later allocation of 2^53 rows)
      [
        { rank_pattern: { q_proj: 2 ** 53 } },
        /rank_pattern\["q_proj"\] must be an integer ≥ 1, got 9007199254740992/,
      ],
      // a SyntaxError when a module was first matched: V8 compiles a regex on first use
      [{ target_modules: "x".repeat(100_000) }, /target_modules "x+\.\.\. is not a valid regex/],
      // a LoraError saying only "Maximum call stack size exceeded": the message printed the value with String()
      [{ use_rslora: JSON.parse(deepArray(100_000)) }, /use_rslora must be true or false, got \[\[\[/],
    ] as const
  ) {
    const config = JSON.stringify({ peft_type: "LORA", r: 8, ...change });
    await inFolder({ "adapter_config.json": config }, async (dir) => {
      await assert.rejects(
        readAdapterConfig(`${dir}/adapter_config.json`),
        (e) =>
          e instanceof LoraError && e.message.startsWith(`${dir}/adapter_config.json: `) &&
          message.test(e.message),
      );
    });
  }
});

const CHAT = new URL("../examples/tiny-chat/", import.meta.url);
const chatFile = (name: string) => Deno.readTextFile(new URL(name, CHAT));

/** The files of the tiny-chat tokenizer, each changed by the function given for it. */
async function tinyChatTokenizer(changes: Record<string, (json: Record<string, unknown>) => unknown>) {
  const files: Record<string, string> = {};
  for (const name of ["tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"]) {
    const json = JSON.parse(await chatFile(name));
    files[name] = JSON.stringify(changes[name] ? changes[name](json) : json);
  }
  return files;
}

Deno.test("regression: token ids that are null, negative or of a non-string token are refused when loading", async () => {
  const addedToken = (change: Record<string, unknown>) => (t: Record<string, unknown>) => ({
    ...t,
    added_tokens: (t.added_tokens as Record<string, unknown>[]).map((
      a,
      i,
    ) => (i === 0 ? { ...a, ...change } : a)),
  });
  for (
    const [change, message] of [
      // encode() returned null ids for "<|pad|>"
      [addedToken({ id: null }), /tokenizer\.json: added_tokens\[0\]\.id is null, not a token id/],
      // encode() returned undefined ids
      [addedToken({ content: [-1] }), /tokenizer\.json: added_tokens\[0\]\.content is \[-1\], not a string/],
    ] as const
  ) {
    await inFolder(await tinyChatTokenizer({ "tokenizer.json": change }), async (dir) => {
      await assert.rejects(loadTokenizer(dir), (e) => e instanceof TokenizerError && message.test(e.message));
    });
  }
  // a GPT-2 folder whose vocab.json maps "d" to -2^31: encode() returned the negative id
  const gpt2 = new URL("./fixtures/tiny-gpt2-transformers/", import.meta.url);
  const vocab = JSON.parse(await Deno.readTextFile(new URL("vocab.json", gpt2)));
  await inFolder({
    "vocab.json": JSON.stringify({ ...vocab, d: -(2 ** 31) }),
    "merges.txt": await Deno.readTextFile(new URL("merges.txt", gpt2)),
  }, async (dir) => {
    await assert.rejects(loadTokenizer(dir), /vocab\.json: vocab\["d"\] is -2147483648, not a token id/);
  });
});

Deno.test("regression: an empty vocabulary decodes nothing to '' (decode threw a plain Error)", async () => {
  const gpt2 = new URL("./fixtures/tiny-gpt2-transformers/", import.meta.url);
  await inFolder(
    { "vocab.json": "{}", "merges.txt": await Deno.readTextFile(new URL("merges.txt", gpt2)) },
    async (dir) => {
      const t = await loadTokenizer(dir);
      assert.deepEqual(t.encode("hello"), []);
      assert.equal(t.decode([]), "");
    },
  );
});

Deno.test("regression: chat templates: range() bounded as in jinja2's sandbox, errors name the file", async () => {
  const template = (chat_template: string) => ({
    "tokenizer_config.json": (c: Record<string, unknown>) => ({ ...c, chat_template }),
  });
  const messages = [{ role: "user", content: "hi" }];
  // ran the process out of memory (a fatal error no catch can handle)
  await inFolder(
    await tinyChatTokenizer(template("{% for i in range(100000000) %}{% endfor %}")),
    async (dir) => {
      const t = await loadTokenizer(dir);
      assert.throws(
        () => t.applyChatTemplate(messages),
        (e) =>
          e instanceof TokenizerError &&
          e.message.startsWith(`${dir}/tokenizer_config.json: the chat template raised`) &&
          /range too big/.test(e.message),
      );
    },
  );
  await inFolder(
    await tinyChatTokenizer(template("{{ range(2, 9, 3) | join(',') }}|{{ range(3) | length }}")),
    async (dir) => {
      assert.equal((await loadTokenizer(dir)).applyChatTemplate(messages), "2,5,8|3");
    },
  );
  // the message did not say which file the template came from
  await inFolder(await tinyChatTokenizer(template("{% for %}")), async (dir) => {
    const t = await loadTokenizer(dir);
    assert.throws(
      () => t.applyChatTemplate(messages),
      (e) =>
        e instanceof TokenizerError &&
        e.message.startsWith(`${dir}/tokenizer_config.json: the chat template does not parse`),
    );
  });
});

/** A Parquet file of 8 rows in two row groups (snappy, data pages v2), as hyparquet-writer writes it. */
function parquetFile(): Uint8Array {
  const rows = Array.from({ length: 8 }, (_, i) => ({ prompt: `p${i}`, chosen: `c${i}`, rejected: `r${i}` }));
  return new Uint8Array(parquetWriteBuffer({
    columnData: (["prompt", "chosen", "rejected"] as const).map((name) => ({
      name,
      data: rows.map((r) => r[name]),
      type: "STRING" as const,
    })),
    rowGroupSize: 4,
  }));
}

/** Where `name`'s bytes first occur in `bytes` at or after `from`. */
function indexOfText(bytes: Uint8Array, name: string, from = 0): number {
  return new TextDecoder("latin1").decode(bytes).indexOf(name, from);
}

Deno.test("regression: Parquet page headers without their counts or their v2 header (hyparquet looped forever)", async () => {
  // The first page header (at byte 4): type, uncompressed and compressed sizes, then field 8 (0x5c: delta 5, a
  // struct), the DataPageHeaderV2, whose fields 1-4 (num_values, num_nulls, num_rows, encoding) take two bytes each.
  const damages: [string, (bytes: Uint8Array, v2: number) => void, RegExp][] = [
    // field 5 (0x15: delta 1, an i32), definition_levels_byte_length, becomes a STOP: the struct ends before it
    [
      "no levels length",
      (b, v2) => b[v2 + 9] = 0,
      /data page header v2 has definition_levels_byte_length undefined/,
    ],
    // field 8 becomes a boolean true (0x51): the struct's fields are read as the page header's own
    ["a boolean v2 header", (b, v2) => b[v2] = 0x51, /it has no data page header v2/],
  ];
  for (const [what, damage, message] of damages) {
    const bytes = parquetFile();
    const v2 = bytes.indexOf(0x5c, 4);
    assert.equal(bytes[v2 + 9], 0x15);
    damage(bytes, v2);
    await inFolder({ "data.parquet": bytes }, async (dir) => {
      await assert.rejects(
        async () => await (await loadDataset(`${dir}/data.parquet`)).count(),
        (e) =>
          e instanceof DatasetError && message.test(e.message) &&
          /data\.parquet: corrupt Parquet file \(row group 0, column prompt\)/.test(e.message),
        what,
      );
    });
  }
});

Deno.test("regression: a Parquet column missing from the schema (a plain Error and an unhandled rejection)", async () => {
  const bytes = parquetFile();
  const footer = bytes.length - 8 - new DataView(bytes.buffer).getUint32(bytes.length - 8, true);
  bytes[indexOfText(bytes, "chosen", footer) + 5] = "x".charCodeAt(0); // the schema names "chosex"
  await inFolder({ "data.parquet": bytes }, async (dir) => {
    await assert.rejects(
      async () => await (await loadDataset(`${dir}/data.parquet`)).count(),
      (e) =>
        e instanceof DatasetError && /data\.parquet: .*column chosen is not in the schema/.test(e.message),
    );
  });
});

Deno.test("regression: save_to_disk folders listing a missing file or deep splits (NotFound, RangeError)", async () => {
  const state = (filename: string) => JSON.stringify({ _data_files: [{ filename }] });
  await inFolder({ "state.json": state("missing.arrow") }, async (dir) => {
    await assert.rejects(
      async () => await (await loadDataset(dir)).count(),
      (e) => e instanceof DatasetError && e.message.startsWith(`${dir}/missing.arrow: cannot open`),
    );
  });
  await inFolder({ "dataset_dict.json": `{"splits":${deepArray(100_000)}}` }, async (dir) => {
    await assert.rejects(
      loadDataset(dir),
      (e) =>
        e instanceof DatasetError && e.message.startsWith(`${dir}: no split "train" in dataset_dict.json`),
    );
  });
});

Deno.test("regression: a YAML config's invalid value or missing key names the file; --config '' is refused", async () => {
  for (
    const [yaml, message] of [
      ["null\n", /^(.*)dpo\.yaml: model_name_or_path is required/],
      [
        "model_name_or_path: m\ndataset_name: d\noutput_dir: o\nbeta: -1\n",
        /^(.*)dpo\.yaml: beta must be > 0; got -1/,
      ],
    ] as const
  ) {
    await inFolder({ "dpo.yaml": yaml }, async (dir) => {
      await assert.rejects(
        loadTrainConfig(`${dir}/dpo.yaml`, [], { printWarnings: false }),
        (e) => e instanceof TrainConfigError && message.test(e.message) && e.message.startsWith(dir),
      );
    });
  }
  await assert.rejects(
    loadTrainConfig(undefined, ["--config", ""]),
    /--config needs the path of a YAML file/,
  );
});

/** A checkpoint's loop files (12 training examples, 1 metric slot) with `changes` merged into some of them. */
function loopFiles(changes: Record<string, Record<string, unknown>>): Record<string, string> {
  const files: Record<string, Record<string, unknown>> = {
    "trainer_state.json": { global_step: 6, log_history: [], best_metric: null },
    "rng_state.json": { shuffle_seed: 42, epoch: 1, examples_seen_in_epoch: 4, num_train_examples: 12 },
    "scheduler.json": { step_count: 6 },
    "webdpo_state.json": { log_window: [[0.5]], train_loss_sum: 2, train_loss_count: 3, best_step: null },
    "training_args.json": {},
  };
  return Object.fromEntries(
    Object.entries(files).map(([name, json]) => [name, JSON.stringify({ ...json, ...changes[name] })]),
  );
}

Deno.test("regression: checkpoint counts that are negative or past the data are refused when read", async () => {
  for (
    const [changes, message] of [
      // accepted before: a negative epoch or step count (the scheduler then threw a RangeError on resume)
      [{ "rng_state.json": { epoch: -1 } }, /rng_state\.json: "epoch" must be an integer ≥ 0, got -1/],
      [
        { "scheduler.json": { step_count: -1 } },
        /scheduler\.json: "step_count" must be an integer ≥ 0, got -1/,
      ],
      [
        { "trainer_state.json": { global_step: -6 } },
        /trainer_state\.json: "global_step" must be an integer ≥ 0/,
      ],
      // accepted before: more examples seen in the epoch than there are
      [
        { "rng_state.json": { examples_seen_in_epoch: 13 } },
        /rng_state\.json: "examples_seen_in_epoch" is 13/,
      ],
      // named the folder, not the file
      [
        { "rng_state.json": { num_train_examples: 0 } },
        /rng_state\.json: the checkpoint was trained on 0 examples/,
      ],
    ] as const
  ) {
    await inFolder(loopFiles(changes), async (dir) => {
      await assert.rejects(
        readLoopFiles(dir, {
          args: { seed: 42, dataSeed: null } as TrainingArgs,
          argsJson: {},
          warnKeys: [],
          metricSlots: 1,
          trainExamples: 12,
          print: () => {},
          fail: (m) => new CheckpointError(m),
        }),
        (e) => e instanceof CheckpointError && e.message.startsWith(dir) && message.test(e.message),
      );
    });
  }
});

Deno.test("regression: optimizer metadata entries that are not parameters, and bco counts past 2^24", async () => {
  for (
    const [params, message] of [
      // loadOptimizer read p.key of null (a TypeError)
      [[null], /params\[0\] is null, not an object/],
      // accepted until the GPU load (index a list)
      [[{ index: [1], name: "w", step: 6, key: "w" }], /params\[0\] has index 1 and step 6/],
    ] as const
  ) {
    await inFolder({}, async (dir) => {
      const path = `${dir}/optimizer.safetensors`;
      const meta = { version: 1, params, groups: [] };
      await writeSafetensors(path, [
        { name: "w.exp_avg", shape: [2], data: new Float32Array(2) },
        { name: "w.exp_avg_sq", shape: [2], data: new Float32Array(2) },
      ], { metadata: { webdpo_optimizer: JSON.stringify(meta) } });
      await assert.rejects(
        readOptimizerFile(path),
        (e) =>
          e instanceof CheckpointError && e.message.startsWith(`${path}: __metadata__`) &&
          message.test(e.message),
      );
    });
  }
  // bco_pair's running mean: a count past 2^24 was a RangeError when loaded into the loss
  await inFolder({ "bco_state.json": JSON.stringify({ mean: 0.5, count: 2 ** 25 }) }, async (dir) => {
    await assert.rejects(readBcoState(`${dir}/bco_state.json`), /bco_state\.json: "count" is 33554432/);
  });
});

/** Where field `slot` of the FlatBuffers table referenced at `at` is (null when absent): a test's own reader. */
function fbField(dv: DataView, at: number, slot: number): number | null {
  const t = at + dv.getInt32(at, true);
  const vt = t - dv.getInt32(t, true);
  const o = 4 + 2 * slot;
  const off = o < dv.getInt16(vt, true) ? dv.getInt16(vt + o, true) : 0;
  return off ? t + off : null;
}

/** Where the metadata of the Arrow stream message at `at` starts (after the continuation and the length). */
const arrowMetadata = (dv: DataView, at: number) => at + (dv.getInt32(at, true) === -1 ? 8 : 4);

Deno.test("regression: Arrow streams claiming 2^31 schema fields, or a list offset past its child", async () => {
  const bytes = tableToIPC(
    new Table({
      tags: vectorFromArray([[true], [false, true]], new List(new Field("item", new Bool(), true))),
    }),
    "stream",
  );
  const dv = new DataView(bytes.buffer);
  const state = JSON.stringify({ _data_files: [{ filename: "data.arrow" }] });
  const rows = (arrow: Uint8Array) =>
    inFolder({ "state.json": state, "data.arrow": arrow }, async (dir) => {
      await (await loadDataset(dir)).count();
    });
  // the schema's fields vector claiming 2^31 − 1 fields: apache-arrow decoded fields past the metadata's end (here
  // a misleading "row 0: Unrecognized type"; the fuzzer's damaged lengths looped without end)
  const meta = arrowMetadata(dv, 0);
  const fieldsAt = fbField(dv, fbField(dv, meta, 2)!, 1)!;
  const manyFields = bytes.slice();
  new DataView(manyFields.buffer).setInt32(fieldsAt + dv.getInt32(fieldsAt, true), 2 ** 31 - 1, true);
  await assert.rejects(
    rows(manyFields),
    (e) =>
      e instanceof DatasetError &&
      /data\.arrow: not a readable Arrow stream: message 1 \(at byte 0\): the schema's fields claims 2147483647 elements/
        .test(e.message),
  );
  // the list's last value offset past its child's values: one row became a list of a billion (no answer in two
  // minutes, then out of memory)
  const batch = arrowMetadata(dv, meta + dv.getInt32(meta - 4, true));
  const header = fbField(dv, batch, 2)!;
  const buffersAt = fbField(dv, header, 2)!;
  const buffers = buffersAt + dv.getInt32(buffersAt, true) + 4;
  const body = batch + dv.getInt32(batch - 4, true);
  const offsets = body + Number(dv.getBigInt64(buffers + 16, true)); // buffer 1: the list's offsets
  const farOffset = bytes.slice();
  new DataView(farOffset.buffer).setInt32(offsets + 8, 1e9, true);
  await assert.rejects(
    rows(farOffset),
    (e) =>
      e instanceof DatasetError &&
      /data\.arrow rows 0–1: unreadable Arrow data: column "tags": value offset 2 \(1000000000\) falls below/
        .test(e.message),
  );
});
