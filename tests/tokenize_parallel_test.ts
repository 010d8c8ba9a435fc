import assert from "node:assert/strict";
import { Dataset } from "../src/data/dataset.ts";
import { tokenizeDataset } from "../src/data/tokenize_parallel.ts";
import { DatasetError } from "../src/data/tokenize_row.ts";
import { loadTokenizer } from "../src/tokenizer/tokenizer.ts";

const tokDir = new URL("./fixtures/tiny-gpt2-transformers", import.meta.url).pathname;
const opts = { maxLength: 64, maxPromptLength: 32 };

function rows(n: number) {
  const words = ["lower", "newer", "wider", "lowest", "low", "new"];
  return Array.from({ length: n }, (_, i) => ({
    prompt: ` ${words[i % 6]} ${words[(i * 5) % 6]}`,
    chosen: ` ${words[(i + 1) % 6]}`,
    rejected: ` ${words[(i + 2) % 6]} ${words[(i + 3) % 6]}`,
  }));
}

Deno.test("dataset_num_proc: worker tokenization equals row-by-row tokenization, in order", async () => {
  const tok = await loadTokenizer(tokDir);
  const data = Dataset.fromRows(rows(700), "prefs");
  const one = await tokenizeDataset(data, tok, opts, 1);
  const three = await tokenizeDataset(data, tok, opts, 3);
  assert.equal(three.length, 700);
  assert.deepEqual(three, one);
  assert.equal(three[699].where, "prefs row 699");
});

Deno.test("dataset_num_proc: a bad row in a worker is reported with its position", async () => {
  const tok = await loadTokenizer(tokDir);
  const bad = rows(300) as Record<string, unknown>[];
  delete bad[290].rejected;
  await assert.rejects(
    () => tokenizeDataset(Dataset.fromRows(bad, "prefs"), tok, opts, 2),
    (e: unknown) =>
      e instanceof DatasetError && /prefs row 290: the "rejected" column is missing/.test(e.message),
  );
});
