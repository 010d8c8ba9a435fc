/**
 * `deno run -A bench/pytorch/dump_rows.ts MODEL_DIR DATA OUT.json [max_length] [max_prompt_length]`: the rows of a
 * preference dataset tokenized as webdpo's DPO trainer tokenizes them (TRL's tokenize_row: BOS/EOS, prompt-first
 * truncation, labels with the prompt masked by -100), written as JSON for bench/pytorch/dpo_step.py, so the
 * PyTorch baseline runs exactly the token ids webdpo trains on.
 */
import { loadDataset } from "../../src/data/dataset.ts";
import { resolveLengths, tokenizeRow } from "../../src/data/tokenize_row.ts";
import { loadTokenizer } from "../../src/tokenizer/tokenizer.ts";

const [model, data, out, maxLength = "512", maxPromptLength = "256"] = Deno.args;
if (!model || !data || !out) {
  console.error("usage: dump_rows.ts MODEL_DIR DATA OUT.json [max_length] [max_prompt_length]");
  Deno.exit(2);
}
const tok = await loadTokenizer(model);
const lengths = resolveLengths({ maxLength: Number(maxLength), maxPromptLength: Number(maxPromptLength) });
const rows = [];
for await (const { row, where } of await loadDataset(data)) {
  const r = tokenizeRow(row, tok, lengths, where);
  rows.push({
    chosen_input_ids: r.chosen_input_ids,
    chosen_labels: r.chosen_labels,
    rejected_input_ids: r.rejected_input_ids,
    rejected_labels: r.rejected_labels,
  });
}
await Deno.writeTextFile(out, JSON.stringify({ pad_token_id: tok.padTokenId ?? tok.eosTokenId ?? 0, rows }));
console.log(`${rows.length} rows → ${out}`);
