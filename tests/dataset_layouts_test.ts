/**
 * Rows in every TRL format (standard and conversational × explicit, implicit and mixed prompt; multi-turn hh-rlhf
 * rows; system messages) through every file layout (tests/dataset_layouts.ts): they come out identical, with the
 * same implicit prompts, and a malformed row's error names the file, the row and the field in each layout.
 */
import assert from "node:assert/strict";
import { loadDataset, type Row } from "../src/data/dataset.ts";
import { maybeExtractPrompt } from "../src/data/extract_prompt.ts";
import { DatasetError, tokenizeRow } from "../src/data/tokenize_row.ts";
import { LAYOUTS, withTemp } from "./dataset_layouts.ts";
import { ToyTokenizer } from "./toy_tokenizer.ts";

const FIXTURES = new URL("./fixtures/datasets/", import.meta.url).pathname;
const HH = await (await loadDataset(`${FIXTURES}hh-rlhf-sample.jsonl.gz`)).toArray();
const ULTRAFEEDBACK = await (await loadDataset(`${FIXTURES}ultrafeedback-shaped.jsonl`)).toArray();

const sys = (content: string) => ({ content, role: "system" });
const user = (content: string) => ({ content, role: "user" });
const bot = (content: string) => ({ content, role: "assistant" });

/** One row set per TRL format; every row of a set has the same columns (as a Parquet or Arrow file needs). */
const FORMATS: Record<string, Row[]> = {
  "standard, explicit prompt": [
    { prompt: "Q: 1+1? ", chosen: "2", rejected: "3" },
    { prompt: "Q: café ☕? ", chosen: "oui 😀", rejected: "non" },
    { prompt: "Say 𝄞", chosen: " 𝄞!", rejected: " no" },
  ],
  "standard, implicit prompt (raw hh-rlhf, multi-turn)": HH,
  "standard answers beside a conversational prompt (mixed)": [
    { prompt: [user("Q?")], chosen: "Q? Yes 😀", rejected: "Q? No" },
    { prompt: [user("R?")], chosen: "R: a", rejected: "R: b" },
  ],
  "conversational, explicit prompt with a system message, multi-turn": [
    { prompt: [sys("Be brief."), user("Hi?")], chosen: [bot("Hello.")], rejected: [bot("Go away.")] },
    {
      prompt: [sys("Be kind."), user("2+2?"), bot("4"), user("and 3+3?")],
      chosen: [bot("6")],
      rejected: [bot("7")],
    },
  ],
  "conversational, implicit prompt with a system message, multi-turn": [
    {
      chosen: [sys("Be brief."), user("Hi?"), bot("Hello."), user("Bye?"), bot("Bye.")],
      rejected: [sys("Be brief."), user("Hi?"), bot("Hello."), user("Bye?"), bot("No.")],
    },
    { chosen: [user("Colour?"), bot("Blue 😀")], rejected: [user("Colour?"), bot("Red")] },
  ],
  "conversational answers beside a string prompt (UltraFeedback, mixed)": ULTRAFEEDBACK,
};

Deno.test("every TRL format through every layout: the same rows, places and prompts", async () => {
  assert.equal(HH.length, 6);
  assert.equal(ULTRAFEEDBACK.length, 2);
  for (const [format, rows] of Object.entries(FORMATS)) {
    const expected = rows.map((r, i) => maybeExtractPrompt(r, `row ${i}`));
    for (const [layout, writeRows] of LAYOUTS) {
      await withTemp(async (dir) => {
        const w = await writeRows(dir, rows);
        const got = [];
        for await (const r of await loadDataset(w.path, w.opts)) got.push(r);
        const what = `${format} / ${layout}`;
        assert.deepEqual(got.map((r) => r.row), rows, what);
        assert.deepEqual(got.map((r) => r.index), rows.map((_, i) => i), what);
        assert.deepEqual(got.map((r) => r.where), rows.map((_, i) => w.where(i)), what);
        assert.deepEqual(got.map((r, i) => maybeExtractPrompt(r.row, `row ${i}`)), expected, what);
      });
    }
  }
});

/** A character-level tokenizer with a chat template (the malformed rows fail before anything is encoded). */
const TOK = new ToyTokenizer({
  vocab: [
    "<pad>",
    "<s>",
    "</s>",
    ..."abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 .,:;?!|<>+-\n",
  ],
  pad_token_id: 0,
  bos_token_id: 1,
  eos_token_id: 2,
  bos_token: "<s>",
  eos_token: "</s>",
  chat_template: "{% for m in messages %}<|{{ m.role }}|>{{ m.content }}\n{% endfor %}" +
    "{% if add_generation_prompt %}<|assistant|>{% endif %}",
});

/** A good row, then the malformed one, and what its error must say about the field. */
const MALFORMED: [string, Row[], RegExp][] = [
  [
    "standard: a null answer",
    [{ prompt: "Q ", chosen: "a", rejected: "b" }, { prompt: "Q ", chosen: "a", rejected: null }],
    /the "rejected" column is missing/,
  ],
  [
    "standard, implicit prompt: an empty answer",
    [{ chosen: "Q a", rejected: "Q b" }, { chosen: "", rejected: "Q b" }],
    /cannot find the prompt: "chosen" is empty/,
  ],
  [
    "conversational, explicit prompt: an answer without messages",
    [
      { prompt: [user("Hi")], chosen: [bot("a")], rejected: [bot("b")] },
      { prompt: [user("Hi")], chosen: [bot("a")], rejected: [] },
    ],
    /the "rejected" answer is empty/,
  ],
  [
    "conversational, implicit prompt: a message without content",
    [
      { chosen: [sys("S"), user("Hi"), bot("a")], rejected: [sys("S"), user("Hi"), bot("b")] },
      {
        chosen: [sys("S"), user("Hi"), bot("a")],
        rejected: [sys("S"), user("Hi"), { content: null, role: "x" }],
      },
    ],
    /"rejected"\[0\] has content null/,
  ],
  [
    "UltraFeedback-shaped: a message without a role",
    [
      { prompt: "Hi", chosen: [user("Hi"), bot("a")], rejected: [user("Hi"), bot("b")] },
      { prompt: "Hi", chosen: [user("Hi"), { content: "a", role: null }], rejected: [user("Hi"), bot("b")] },
    ],
    /"chosen"\[0\] has no string "role"/,
  ],
];

const escape = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");

Deno.test("a malformed row's error names the file, the row and the field, in every layout", async () => {
  for (const [variant, rows, field] of MALFORMED) {
    for (const [layout, writeRows] of LAYOUTS) {
      await withTemp(async (dir) => {
        const w = await writeRows(dir, rows);
        const located = [];
        for await (const r of await loadDataset(w.path, w.opts)) located.push(r);
        assert.deepEqual(located.map((r) => r.row), rows, `${variant} / ${layout}`);
        const bad = located[1];
        assert.throws(
          () => tokenizeRow(bad.row, TOK, { maxLength: 64, maxPromptLength: 32 }, bad.where),
          (e: unknown) => {
            assert.ok(e instanceof DatasetError, `${variant} / ${layout}: ${e}`);
            assert.match(e.message, new RegExp(`^${escape(w.where(1))}: `), `${variant} / ${layout}`);
            assert.match(e.message, field, `${variant} / ${layout}`);
            return true;
          },
        );
      });
    }
  }
});
