/**
 * The browser bundle's hub_download.ts: a tab cannot download into a hub cache, so a model is a folder the page
 * mounts (a picked folder, the Origin Private File System, or a URL).
 *
 * @module
 */

/** Always throws: says how to give a browser a model. */
export function downloadSnapshot(repoId: string): Promise<string> {
  return Promise.reject(
    new Error(
      `${repoId}: downloading from the Hugging Face hub is not available in a browser; mount the model's ` +
        `folder (browserFiles mounts: a picked folder, opfsRoot(), or the URL it is served from) and load that path`,
    ),
  );
}
