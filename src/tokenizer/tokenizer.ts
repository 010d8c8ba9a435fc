/**
 * Tokenizers from Hugging Face files: `tokenizer.json` (+ `tokenizer_config.json`, `special_tokens_map.json`)
 * through the `@huggingface/tokenizers` package; a GPT-2 style folder with only `vocab.json` + `merges.txt` is
 * turned into the equivalent byte-level BPE `tokenizer.json` first. Chat templates render with `@huggingface/jinja`.
 */
import { Template } from "@huggingface/jinja";
import { Tokenizer as HFTokenizer } from "@huggingface/tokenizers";
import { WebDPOError } from "../gpu/errors.ts";
import * as io from "../io/platform.ts";
import { isNotFound } from "../io/types.ts";
import { jsonExcerpt } from "../util/json_excerpt.ts";
import { SANDBOXED_RANGE, sandboxedRange, sandboxRange } from "./template_range.ts";

export class TokenizerError extends WebDPOError {}

/** A chat message. */
export interface Message {
  role: string;
  content: string;
  [key: string]: unknown;
}

export interface ChatTemplateOptions {
  /** Append the assistant turn's opening (default false). */
  addGenerationPrompt?: boolean;
  /** Return token ids instead of text (default false). */
  tokenize?: boolean;
  /** A named template when tokenizer_config.json lists several (default: "default" or the only one). */
  templateName?: string;
  /** Extra variables for the template (e.g. `tools`, `enable_thinking`). */
  extra?: Record<string, unknown>;
}

type Json = Record<string, unknown>;

function tokenContent(v: unknown): string | null {
  if (typeof v === "string") return v;
  if (v && typeof v === "object" && typeof (v as Json).content === "string") {
    return (v as Json).content as string;
  }
  return null;
}

export class Tokenizer {
  readonly hf: HFTokenizer;
  readonly bosToken: string | null;
  readonly eosToken: string | null;
  readonly padToken: string | null;
  readonly bosTokenId: number | null;
  readonly eosTokenId: number | null;
  /** The pad id: the configured pad token, else EOS (as TRL does). */
  readonly padTokenId: number | null;
  readonly chatTemplate: string | null;
  private readonly templates: Map<string, string>;
  private readonly compiled = new Map<string, Template>();
  /** The raw files (written back by `save`). */
  readonly files: { tokenizer: Json; config: Json; specialTokensMap: Json | null };
  /** The folder the files were read from (named in errors), or null. */
  readonly source: string | null;

  constructor(
    tokenizerJson: Json,
    config: Json = {},
    specialTokensMap: Json | null = null,
    source: string | null = null,
  ) {
    this.files = { tokenizer: tokenizerJson, config, specialTokensMap };
    this.source = source;
    const merged: Json = { ...(specialTokensMap ?? {}), ...config };
    const badId = badTokenId(tokenizerJson);
    if (badId !== null) throw new TokenizerError(`${this.inFile("tokenizer.json")}${badId}`);
    try {
      this.hf = new HFTokenizer(tokenizerJson, merged);
    } catch (e) {
      throw new TokenizerError(
        `${this.inFile("tokenizer.json")}cannot build the tokenizer from tokenizer.json: ${
          e instanceof Error ? e.message : e
        }`,
      );
    }
    this.bosToken = tokenContent(merged.bos_token);
    this.eosToken = tokenContent(merged.eos_token);
    this.padToken = tokenContent(merged.pad_token);
    const id = (t: string | null) => (t === null ? null : this.hf.token_to_id(t) ?? null);
    this.bosTokenId = id(this.bosToken);
    this.eosTokenId = id(this.eosToken);
    this.padTokenId = id(this.padToken) ?? this.eosTokenId;
    this.templates = new Map();
    const ct = merged.chat_template;
    if (typeof ct === "string") this.templates.set("default", ct);
    else if (Array.isArray(ct)) {
      for (const t of ct) {
        if (t && typeof t === "object" && typeof t.name === "string" && typeof t.template === "string") {
          this.templates.set(t.name, t.template);
        }
      }
    }
    this.chatTemplate = this.templates.get("default") ??
      (this.templates.size === 1 ? [...this.templates.values()][0] : null);
  }

  /** "<folder>/<file>: " when the tokenizer was read from a folder, else "": the start of an error message. */
  private inFile(file: string): string {
    return this.source === null ? "" : `${this.source}/${file}: `;
  }

  /** Token ids of `text`; special tokens (BOS/EOS per the post-processor) only with `addSpecialTokens`. */
  encode(text: string, { addSpecialTokens = false }: { addSpecialTokens?: boolean } = {}): number[] {
    const ids = this.hf.encode(text, { add_special_tokens: addSpecialTokens }).ids;
    const bad = ids.findIndex((id) => !isTokenId(id));
    if (bad >= 0) {
      throw new TokenizerError(
        `${this.inFile("tokenizer.json")}encoding ${jsonExcerpt(text)} gave the token id ${
          ids[bad]
        } at ${bad}: ` +
          "the vocabulary lacks a token the text needs (no unk_token?) or is malformed",
      );
    }
    return ids;
  }

  /** Text of `ids` ("" for none: @huggingface/tokenizers throws on an empty list). */
  decode(
    ids: ArrayLike<number>,
    { skipSpecialTokens = false }: { skipSpecialTokens?: boolean } = {},
  ): string {
    if (ids.length === 0) return "";
    return this.hf.decode(Array.from(ids), { skip_special_tokens: skipSpecialTokens });
  }

  /** The id of a token string, or null. */
  tokenToId(token: string): number | null {
    return this.hf.token_to_id(token) ?? null;
  }

  /** The token string of an id, or null. */
  idToToken(id: number): string | null {
    return this.hf.id_to_token(id) ?? null;
  }

  /** Size of the vocabulary including added tokens. */
  get vocabSize(): number {
    return this.hf.get_vocab().size ?? Object.keys(this.hf.get_vocab()).length;
  }

  /** Renders `messages` with the tokenizer's chat template. */
  applyChatTemplate(messages: Message[], opts: ChatTemplateOptions & { tokenize: true }): number[];
  applyChatTemplate(messages: Message[], opts?: ChatTemplateOptions): string;
  applyChatTemplate(messages: Message[], opts: ChatTemplateOptions = {}): string | number[] {
    const name = opts.templateName ??
      (this.templates.has("default") ? "default" : [...this.templates.keys()][0]);
    const source = name === undefined ? undefined : this.templates.get(name);
    if (source === undefined) {
      throw new TokenizerError(
        opts.templateName
          ? `no chat template named "${opts.templateName}" (available: ${
            [...this.templates.keys()].join(", ")
          })`
          : "this tokenizer has no chat_template in tokenizer_config.json; conversational data needs one",
      );
    }
    let tpl = this.compiled.get(name!);
    if (!tpl) {
      try {
        tpl = new Template(source);
      } catch (e) {
        throw new TokenizerError(
          `${this.inFile("tokenizer_config.json")}the chat template does not parse: ${
            e instanceof Error ? e.message : e
          }`,
        );
      }
      sandboxRange(tpl);
      this.compiled.set(name!, tpl);
    }
    // `raise_exception` is a builtin of @huggingface/jinja: its error surfaces here.
    let text: string;
    try {
      text = tpl.render({
        [SANDBOXED_RANGE]: sandboxedRange,
        messages,
        bos_token: this.bosToken ?? "",
        eos_token: this.eosToken ?? "",
        pad_token: this.padToken ?? "",
        add_generation_prompt: opts.addGenerationPrompt ?? false,
        ...opts.extra,
      });
    } catch (e) {
      throw new TokenizerError(
        `${this.inFile("tokenizer_config.json")}the chat template raised: ${
          e instanceof Error ? e.message : e
        }`,
      );
    }
    return opts.tokenize ? this.encode(text) : text;
  }

  /** Writes tokenizer.json, tokenizer_config.json (and special_tokens_map.json when it was given) to `dir`. */
  async save(dir: string): Promise<void> {
    const fs = io.files();
    await fs.mkdir(dir);
    await fs.writeText(`${dir}/tokenizer.json`, JSON.stringify(this.files.tokenizer));
    await fs.writeText(
      `${dir}/tokenizer_config.json`,
      JSON.stringify(this.files.config, null, 2) + "\n",
    );
    if (this.files.specialTokensMap) {
      await fs.writeText(
        `${dir}/special_tokens_map.json`,
        JSON.stringify(this.files.specialTokensMap, null, 2) + "\n",
      );
    }
  }
}

const isTokenId = (v: unknown) => Number.isSafeInteger(v) && (v as number) >= 0;

/** What is wrong with the ids of a vocabulary (a map of tokens to ids), or null. */
function badVocabId(vocab: Json, where: string): string | null {
  for (const [token, id] of Object.entries(vocab)) {
    if (!isTokenId(id)) return `${where}["${token}"] is ${jsonExcerpt(id)}, not a token id (an integer ≥ 0)`;
  }
  return null;
}

/**
 * What is wrong with the token ids of a tokenizer.json (its model's vocabulary and its added tokens), or null.
 * The Rust tokenizers refuse such a file; the JS port would hand out the ids as they are (null, negative).
 */
function badTokenId(tokenizerJson: Json): string | null {
  const vocab = (tokenizerJson.model as Json | undefined)?.vocab;
  if (vocab && typeof vocab === "object" && !Array.isArray(vocab)) {
    const bad = badVocabId(vocab as Json, "model.vocab");
    if (bad !== null) return bad;
  }
  const added = tokenizerJson.added_tokens;
  if (!Array.isArray(added)) return null;
  for (const [i, t] of added.entries()) {
    const { id, content } = (t ?? {}) as Json;
    if (!isTokenId(id)) return `added_tokens[${i}].id is ${jsonExcerpt(id)}, not a token id (an integer ≥ 0)`;
    if (typeof content !== "string") {
      return `added_tokens[${i}].content is ${jsonExcerpt(content)}, not a string`;
    }
  }
  return null;
}

async function readJsonIfExists(path: string): Promise<Json | null> {
  let text: string;
  try {
    text = await io.files().readText(path);
  } catch (e) {
    if (isNotFound(e)) return null;
    throw new TokenizerError(`${path}: cannot read (${e instanceof Error ? e.message : e})`);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new TokenizerError(`${path}: not valid JSON (${e instanceof Error ? e.message : e})`);
  }
  if (json === null || typeof json !== "object" || Array.isArray(json)) {
    throw new TokenizerError(`${path}: expected a JSON object`);
  }
  return json as Json;
}

/** A byte-level BPE tokenizer.json (GPT-2's) from the slow tokenizer files vocab.json and merges.txt. */
export function byteLevelBpeJson(vocab: Record<string, number>, mergesTxt: string): Json {
  const merges = mergesTxt.split("\n").filter((l) => l.trim() !== "" && !l.startsWith("#version"));
  return {
    version: "1.0",
    truncation: null,
    padding: null,
    added_tokens: [],
    normalizer: null,
    pre_tokenizer: { type: "ByteLevel", add_prefix_space: false, trim_offsets: true, use_regex: true },
    post_processor: { type: "ByteLevel", add_prefix_space: true, trim_offsets: false, use_regex: true },
    decoder: { type: "ByteLevel", add_prefix_space: true, trim_offsets: true, use_regex: true },
    model: {
      type: "BPE",
      dropout: null,
      unk_token: null,
      continuing_subword_prefix: "",
      end_of_word_suffix: "",
      fuse_unk: false,
      byte_fallback: false,
      vocab,
      merges,
    },
  };
}

/** Loads the tokenizer of a model folder. */
export async function loadTokenizer(dir: string): Promise<Tokenizer> {
  const d = dir.replace(/\/+$/, "");
  let tok = await readJsonIfExists(`${d}/tokenizer.json`);
  if (!tok) {
    const vocab = await readJsonIfExists(`${d}/vocab.json`);
    let merges: string | null = null;
    try {
      merges = await io.files().readText(`${d}/merges.txt`);
    } catch { /* absent */ }
    if (!vocab || merges === null) {
      throw new TokenizerError(
        `${d}: no tokenizer.json (nor vocab.json + merges.txt); copy the model's tokenizer files into the folder`,
      );
    }
    const badId = badVocabId(vocab, "vocab");
    if (badId !== null) throw new TokenizerError(`${d}/vocab.json: ${badId}`);
    tok = byteLevelBpeJson(vocab as Record<string, number>, merges);
  }
  const config = (await readJsonIfExists(`${d}/tokenizer_config.json`)) ?? {};
  const special = await readJsonIfExists(`${d}/special_tokens_map.json`);
  return new Tokenizer(tok, config, special, d);
}
