/** Datasets, tokenize_row and collation. */
export { Dataset, loadDataset, type LoadDatasetOptions, type LocatedRow, type Row } from "./dataset.ts";
export { loadMixture, type MixtureOptions } from "./mixture.ts";
export type { DatasetMixtureEntry } from "./mixture_entries.ts";
export { type DatasetReport, formatDatasetReport, inspectDataset, type LengthStats } from "./inspect.ts";
export {
  type ChatMessage,
  extractPrompt,
  isConversation,
  maybeExtractPrompt,
  type PromptOrAnswer,
} from "./extract_prompt.ts";
export {
  collate,
  DatasetError,
  type PairBatch,
  type RowTokenizer,
  type TokenizedRow,
  type TokenizeOptions,
  tokenizeRow,
} from "./tokenize_row.ts";
