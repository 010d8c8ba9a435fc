/** Datasets, tokenize_row and collation. */
export { Dataset, loadDataset, type LoadDatasetOptions, type LocatedRow, type Row } from "./dataset.ts";
export {
  collate,
  DatasetError,
  type PairBatch,
  type RowTokenizer,
  type TokenizedRow,
  type TokenizeOptions,
  tokenizeRow,
} from "./tokenize_row.ts";
