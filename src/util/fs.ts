/** Small file-system helpers shared by the loaders, the trainer and the demo. */

/** Whether `path` exists (file or folder); errors other than "not found" (e.g. permissions) are thrown. */
export async function exists(path: string): Promise<boolean> {
  try {
    await Deno.stat(path);
    return true;
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return false;
    throw e;
  }
}
