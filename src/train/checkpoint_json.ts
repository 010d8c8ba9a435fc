/**
 * The JSON side of a training checkpoint (src/train/checkpoint.ts): the error every checkpoint read or write
 * throws, and reading and writing its JSON files with errors that name the file and the field.
 *
 * @module
 */
import { WebDPOError } from "../gpu/errors.ts";
import * as io from "../io/platform.ts";
import { jsonExcerpt } from "../util/json_excerpt.ts";
import { jsonNumbers } from "./metrics_log.ts";

/** A checkpoint that cannot be written or read (missing files, mismatched shapes, ...). */
export class CheckpointError extends WebDPOError {}

/** Writes pretty JSON (keys in the given order; NaN/Infinity as strings). */
export async function writeJson(path: string, value: unknown): Promise<void> {
  await io.files().writeText(path, JSON.stringify(value, jsonNumbers, 2) + "\n");
}

/** Reads a JSON object, with an error naming the file when it is missing or malformed. */
export async function readJson(path: string): Promise<Record<string, unknown>> {
  let text: string;
  try {
    text = await io.files().readText(path);
  } catch (e) {
    throw new CheckpointError(`${path}: cannot read (${e instanceof Error ? e.message : e})`);
  }
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch (e) {
    throw new CheckpointError(`${path}: not valid JSON (${e instanceof Error ? e.message : e})`);
  }
  if (!v || typeof v !== "object" || Array.isArray(v)) {
    throw new CheckpointError(`${path}: expected a JSON object`);
  }
  return v as Record<string, unknown>;
}

/** A field of a checkpoint JSON file that counts something (a step, an epoch, examples): an integer ≥ 0. */
export function countField(o: Record<string, unknown>, key: string, where: string): number {
  const v = o[key];
  if (!Number.isSafeInteger(v) || (v as number) < 0) {
    throw new CheckpointError(`${where}: "${key}" must be an integer ≥ 0, got ${jsonExcerpt(v)}`);
  }
  return v as number;
}

/** A field of a checkpoint JSON file that must be a number (an integer when `integer`). */
export function numberField(o: Record<string, unknown>, key: string, where: string, integer = false): number {
  const v = o[key];
  if (typeof v !== "number" || !Number.isFinite(v) || (integer && !Number.isInteger(v))) {
    throw new CheckpointError(
      `${where}: "${key}" must be ${integer ? "an integer" : "a number"}, got ${jsonExcerpt(v)}`,
    );
  }
  return v;
}
