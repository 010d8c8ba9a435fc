/**
 * The files under a dataset folder, as `/`-separated paths relative to it, sorted. Symbolic links are followed
 * (a Hugging Face cache snapshot is a tree of links into `blobs/`); a link that leads nowhere is left out, as
 * `datasets` leaves it out. Folders are visited once each, so a link back up the tree ends.
 *
 * @module
 */
import { files } from "../io/platform.ts";
import type { DirEntry } from "../io/types.ts";
import { DatasetError } from "./tokenize_row.ts";

/** How deep the walk goes: a hub dataset is a few folders deep; anything deeper is a mistake or a loop. */
const MAX_DEPTH = 32;

/** Every file under `root` (relative paths, sorted). A missing or unreadable root is a DatasetError. */
export async function listFilesUnder(root: string): Promise<string[]> {
  const out: string[] = [];
  const seen = new Set<string>();
  const walk = async (dir: string, rel: string, depth: number): Promise<void> => {
    let real: string;
    try {
      real = await files().realPath(dir);
    } catch (e) {
      if (depth === 0) throw new DatasetError(`${root}: cannot read the folder (${errText(e)})`);
      return;
    }
    if (seen.has(real) || depth > MAX_DEPTH) return;
    seen.add(real);
    let entries: DirEntry[];
    try {
      entries = await files().list(dir);
    } catch (e) {
      throw new DatasetError(`${dir}: cannot read the folder (${errText(e)})`);
    }
    for (const e of entries) {
      const path = `${dir}/${e.name}`;
      const relPath = rel ? `${rel}/${e.name}` : e.name;
      let isDir = e.isDirectory, isFile = e.isFile;
      if (e.isSymlink) {
        let info;
        try {
          info = await files().stat(path);
        } catch {
          continue;
        }
        if (!info) continue; // a dangling link
        [isDir, isFile] = [info.isDirectory, info.isFile];
      }
      if (isFile) out.push(relPath);
      else if (isDir) await walk(path, relPath, depth + 1);
    }
  };
  await walk(root, "", 0);
  return out.sort();
}

function errText(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}
