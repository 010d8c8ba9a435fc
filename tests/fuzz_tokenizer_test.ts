/**
 * Fuzzes tokenizer folders: tokenizer.json, tokenizer_config.json (chat templates included) and
 * special_tokens_map.json of the tiny-chat model, the vocab.json + merges.txt of a GPT-2 folder, generated chat
 * templates and generated pre-tokenizer regexes.
 */
import fc from "fast-check";
import { type FuzzStep, fuzzStep, fuzzTests } from "./fuzz_util.ts";
import { damagedJsonFile, EDGE_STRINGS, jsonBytes, mutatedBytes } from "./fuzz_mutations.ts";

const TARGETS = new URL("./fuzz_targets/tokenizer.ts", import.meta.url);
const read = (path: string) => Deno.readFile(new URL(path, import.meta.url));
const readJson = async (path: string) => JSON.parse(new TextDecoder().decode(await read(path)));

const CHAT = "../examples/tiny-chat/";
const CHAT_FILES = {
  "tokenizer.json": await read(`${CHAT}tokenizer.json`),
  "tokenizer_config.json": await read(`${CHAT}tokenizer_config.json`),
  "special_tokens_map.json": await read(`${CHAT}special_tokens_map.json`),
};
const CHAT_TOKENIZER = await readJson(`${CHAT}tokenizer.json`);
const CHAT_CONFIG = await readJson(`${CHAT}tokenizer_config.json`);
const CHAT_SPECIAL = await readJson(`${CHAT}special_tokens_map.json`);

const GPT2 = "./fixtures/tiny-gpt2-transformers/";
const GPT2_FILES = {
  "vocab.json": await read(`${GPT2}vocab.json`),
  "merges.txt": await read(`${GPT2}merges.txt`),
  "tokenizer_config.json": await read(`${GPT2}tokenizer_config.json`),
  "special_tokens_map.json": await read(`${GPT2}special_tokens_map.json`),
};
const GPT2_VOCAB = await readJson(`${GPT2}vocab.json`);

const NAMES = /(tokenizer\.json|tokenizer_config\.json|special_tokens_map\.json|vocab\.json|merges\.txt)/;

/** Template pieces: loops, conditions, filters, raises, unbalanced tags, large ranges, recursion. */
const TEMPLATE_PIECES = [
  "{% for message in messages %}",
  "{% endfor %}",
  "{% if message['role'] == 'user' %}",
  "{% elif loop.last %}",
  "{% else %}",
  "{% endif %}",
  "{{ message['content'] }}",
  "{{ message.content | trim | upper }}",
  "{{ messages[0]['content'] }}",
  "{{ messages[99] }}",
  "{{ bos_token + eos_token }}",
  "{{ raise_exception('roles must alternate') }}",
  "{% for i in range(100000000) %}{% endfor %}",
  "{% for i in range(1000) %}{{ i }}{% endfor %}",
  "{{ range(5) | length }}",
  "{% macro f() %}{{ f() }}{% endmacro %}{{ f() }}",
  "{% set ns = namespace(x=1) %}{{ ns.x }}",
  "{{ 'a' * 3 }}",
  "{{ 1 / 0 }}",
  "{{ messages | tojson }}",
  "{{",
  "{%",
  "}}",
  "%}",
  "{# comment",
  "\u0000",
];

const template = fc.array(
  fc.oneof({ weight: 4, arbitrary: fc.constantFrom(...TEMPLATE_PIECES) }, {
    weight: 1,
    arbitrary: fc.string(),
  }),
  { minLength: 1, maxLength: 8 },
).map((pieces) => pieces.join(""));

const withTemplate = fc.oneof(template, fc.constant(null)).map((chat_template) =>
  jsonBytes({ ...CHAT_CONFIG, chat_template }, 2)
);

/** A pre-tokenizer that splits on a regex, which the tokenizer compiles. */
const splitPreTokenizer = fc.record({
  type: fc.constant("Split"),
  pattern: fc.oneof(
    fc.record({
      Regex: fc.oneof(fc.constantFrom(...EDGE_STRINGS, "\\s+", "(?i)x", "[", "\\p{L}+"), fc.string()),
    }),
    fc.record({ String: fc.string({ maxLength: 3 }) }),
  ),
  behavior: fc.constantFrom("Isolated", "Removed", "MergedWithPrevious", "Contiguous", "x"),
  invert: fc.boolean(),
}).map((pre_tokenizer) => jsonBytes({ ...CHAT_TOKENIZER, pre_tokenizer }));

const STEPS: FuzzStep[] = [];

const chatFolder = (changed: Record<string, Uint8Array>) => ({ files: { ...CHAT_FILES, ...changed } });

for (
  const [what, cases, runs] of [
    [
      "tokenizer.json damaged",
      damagedJsonFile(CHAT_TOKENIZER).map((b) => chatFolder({ "tokenizer.json": b })),
      40,
    ],
    [
      "tokenizer_config.json damaged",
      damagedJsonFile(CHAT_CONFIG, 2).map((b) => chatFolder({ "tokenizer_config.json": b })),
      30,
    ],
    [
      "special_tokens_map.json damaged",
      damagedJsonFile(CHAT_SPECIAL, 2).map((b) => chatFolder({ "special_tokens_map.json": b })),
      20,
    ],
    ["generated chat templates", withTemplate.map((b) => chatFolder({ "tokenizer_config.json": b })), 50],
    ["generated Split pre-tokenizers", splitPreTokenizer.map((b) => chatFolder({ "tokenizer.json": b })), 30],
    [
      "GPT-2 vocab.json and merges.txt damaged",
      fc.oneof(
        damagedJsonFile(GPT2_VOCAB).map((b) => ({ files: { ...GPT2_FILES, "vocab.json": b } })),
        mutatedBytes(GPT2_FILES["merges.txt"]).map((b) => ({ files: { ...GPT2_FILES, "merges.txt": b } })),
      ),
      30,
    ],
  ] as const
) {
  STEPS.push(fuzzStep(what, {
    module: TARGETS,
    target: "tokenizerFolder",
    cases: cases as fc.Arbitrary<{ files: Record<string, Uint8Array> }>,
    request: (c) => c,
    names: NAMES,
    runs,
  }));
}

fuzzTests("fuzz tokenizer", STEPS);
