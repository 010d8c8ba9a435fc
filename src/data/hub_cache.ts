/**
 * A hub dataset id (`Anthropic/hh-rlhf`) found in the local Hugging Face cache, where `huggingface-cli download
 * --repo-type dataset` and `datasets` put it: `<cache>/datasets--Anthropic--hh-rlhf/snapshots/<commit>/`, the
 * commit read from `refs/<revision>` (or the revision itself when it is a commit). `<cache>` is the folder models
 * are resolved in ($HF_HUB_CACHE, else $HF_HOME/hub, else ~/.cache/huggingface/hub). webdpo never downloads a
 * dataset: when it is not cached, the error says where it looked and how to fetch it.
 *
 * @module
 */
import { files } from "../io/platform.ts";
import { hubCacheDir } from "../models/loader.ts";
import { DatasetError } from "./tokenize_row.ts";

/** An `org/name` hub id (a local path that does not exist may be one). */
const HUB_ID = /^[A-Za-z0-9][\w.-]*\/[\w.-]+$/;

/** Whether `name` has the shape of a hub dataset id (`org/name`). */
export function isHubId(name: string): boolean {
  return HUB_ID.test(name) && !name.split("/").some((p) => p === "." || p === "..");
}

/** Where to look: the cache folder (default: the Hugging Face hub cache) and the revision (default "main"). */
export interface HubCacheOptions {
  cacheDir?: string;
  revision?: string;
}

async function isDir(path: string): Promise<boolean> {
  try {
    return (await files().stat(path))?.isDirectory === true;
  } catch {
    return false;
  }
}

/**
 * The snapshot folder of hub dataset `id` in the cache; a DatasetError saying where it looked (and that webdpo
 * does not download) when it is not there.
 */
export async function resolveCachedDataset(id: string, opts: HubCacheOptions = {}): Promise<string> {
  const cache = opts.cacheDir ?? hubCacheDir();
  const revision = opts.revision ?? "main";
  const base = `${cache}/datasets--${id.replace(/\//g, "--")}`;
  let missing: string;
  if (!(await isDir(base))) {
    missing = `no ${base}`;
  } else {
    let commit = revision;
    try {
      commit = (await files().readText(`${base}/refs/${revision}`)).trim();
    } catch {
      // the revision may be a commit hash
    }
    const snapshot = `${base}/snapshots/${commit}`;
    if (commit !== "" && !commit.includes("/") && await isDir(snapshot)) return snapshot;
    missing = commit === revision
      ? `no ${base}/refs/${revision} and no snapshot ${revision}`
      : `refs/${revision} names ${commit}, but ${snapshot} is missing`;
  }
  const cmd = `huggingface-cli download --repo-type dataset ${id}`;
  throw new DatasetError(
    `${id} is neither a local file or folder nor a dataset in the Hugging Face cache ` +
      `(looked in ${cache}: ${missing}); webdpo does not download datasets: fetch it first with \`${cmd}\` ` +
      `(into that cache; HF_HUB_CACHE or HF_HOME pick another), or with ` +
      `\`${cmd} --local-dir ${id.split("/")[1]}\` and use that folder`,
  );
}
