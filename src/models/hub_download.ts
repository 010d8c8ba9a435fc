/**
 * Downloads a model from the Hugging Face hub into the local cache (`@huggingface/hub`'s snapshotDownload,
 * which writes files with Node's file system API). The browser bundle puts hub_download_web.ts in this file's
 * place: a tab has no hub cache to download into.
 *
 * @module
 */

/** Downloads `repoId` at `revision` into `cacheDir`; returns the snapshot folder. */
export async function downloadSnapshot(
  repoId: string,
  revision: string,
  cacheDir: string,
  accessToken: string | undefined,
): Promise<string> {
  const hub = await import("@huggingface/hub");
  return await hub.snapshotDownload({
    repo: { type: "model", name: repoId },
    revision,
    cacheDir,
    ...(accessToken ? { accessToken } : {}),
  });
}
