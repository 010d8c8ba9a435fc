/**
 * `webdpo_manifest.json`: the size and SHA-256 of every other file of a checkpoint folder.
 *
 * The trainer writes it last into the folder being made (checkpoint.ts renames the folder into place after it),
 * and a resume checks it before reading anything else. A file cut short (a copy that stopped, a full disk) or
 * whose bytes changed (a failing disk, an edit) is refused with a CheckpointError naming it. Without the
 * manifest a flipped bit in a tensor file loads without a word, and a damaged file the resume does not read
 * (config.json, the tokenizer's) would only fail later, when the checkpoint is used as a model folder.
 *
 * A checkpoint without a manifest (written before webdpo had one) is read without this check; the readers of
 * the single files still refuse what they cannot parse.
 */
import * as io from "../io/platform.ts";
import { isNotFound } from "../io/types.ts";
import { isPlainFileName } from "../util/fs.ts";
import { jsonExcerpt } from "../util/json_excerpt.ts";
import { CheckpointError } from "./checkpoint.ts";

export const MANIFEST_FILE = "webdpo_manifest.json";

/** What the manifest records of one file. */
interface FileEntry {
  bytes: number;
  sha256: string;
}

/** The size and SHA-256 of a file, streamed. */
async function fileEntry(path: string): Promise<FileEntry> {
  const hash = io.host().sha256();
  let bytes = 0;
  const reader = (await io.files().stream(path)).getReader();
  try {
    for (let r = await reader.read(); !r.done; r = await reader.read()) {
      hash.update(r.value);
      bytes += r.value.length;
    }
  } finally {
    await reader.cancel().catch(() => {});
  }
  return { bytes, sha256: hash.hex() };
}

/** Writes the manifest of the files now in `dir`, a checkpoint folder being made (after every other file). */
export async function writeManifest(dir: string): Promise<void> {
  const names: string[] = [];
  for (const e of await io.files().list(dir)) if (e.isFile && e.name !== MANIFEST_FILE) names.push(e.name);
  const files: Record<string, FileEntry> = {};
  for (const name of names.sort()) files[name] = await fileEntry(`${dir}/${name}`);
  await io.files().writeText(`${dir}/${MANIFEST_FILE}`, JSON.stringify({ format: 1, files }, null, 2) + "\n");
}

/** The entries of a manifest's text, checked (`path` names it in errors). */
function parseManifest(text: string, path: string): [string, FileEntry][] {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch (e) {
    throw new CheckpointError(`${path}: not valid JSON (${e instanceof Error ? e.message : e})`);
  }
  const o = v as { format?: unknown; files?: unknown } | null;
  if (
    !o || typeof o !== "object" || o.format !== 1 || !o.files || typeof o.files !== "object" ||
    Array.isArray(o.files)
  ) {
    throw new CheckpointError(`${path}: expected {"format": 1, "files": {...}}`);
  }
  return Object.entries(o.files).map(([name, e]) => {
    const entry = e as Partial<FileEntry> | null;
    if (!isPlainFileName(name)) {
      throw new CheckpointError(`${path}: ${jsonExcerpt(name)} is not the name of a file in the folder`);
    }
    if (
      !entry || typeof entry !== "object" || !Number.isSafeInteger(entry.bytes) || entry.bytes! < 0 ||
      typeof entry.sha256 !== "string" || !/^[0-9a-f]{64}$/.test(entry.sha256)
    ) {
      throw new CheckpointError(
        `${path}: the entry of ${name} must be {"bytes": <size>, "sha256": <64 hex digits>}`,
      );
    }
    return [name, entry as FileEntry];
  });
}

/**
 * Checks every file the manifest of checkpoint `dir` lists (its size, then its SHA-256); throws a CheckpointError
 * naming the first one that differs. Returns false when the checkpoint has no manifest.
 */
export async function verifyCheckpoint(dir: string): Promise<boolean> {
  const path = `${dir}/${MANIFEST_FILE}`;
  let text: string;
  try {
    text = await io.files().readText(path);
  } catch (e) {
    if (isNotFound(e)) return false;
    throw new CheckpointError(`${path}: cannot read (${e instanceof Error ? e.message : e})`);
  }
  for (const [name, want] of parseManifest(text, path)) {
    const file = `${dir}/${name}`;
    let got: FileEntry;
    try {
      got = await fileEntry(file);
    } catch (e) {
      throw new CheckpointError(
        `${file}: cannot read this file, which ${MANIFEST_FILE} lists as written by the checkpoint ` +
          `(${e instanceof Error ? e.message : e})`,
      );
    }
    if (got.bytes !== want.bytes) {
      throw new CheckpointError(
        `${file}: ${got.bytes} bytes, but the checkpoint wrote ${want.bytes}: the file is ` +
          `${got.bytes < want.bytes ? "truncated" : "damaged"}`,
      );
    }
    if (got.sha256 !== want.sha256) {
      throw new CheckpointError(
        `${file}: damaged: its SHA-256 is not the one ${MANIFEST_FILE} records for it (the file, or the ` +
          `manifest, changed since the checkpoint was written)`,
      );
    }
  }
  return true;
}
