/** Small file-system helpers shared by the loaders, the trainer and the demo. */
import { files } from "../io/platform.ts";

/** Whether `path` exists (file or folder); errors other than "not found" (e.g. permissions) are thrown. */
export async function exists(path: string): Promise<boolean> {
  return (await files().stat(path)) !== null;
}

/** Whether `name` names a file inside a folder: not empty, not "." or "..", without a path separator. */
export function isPlainFileName(name: unknown): name is string {
  return typeof name === "string" && name !== "" && name !== "." && name !== ".." && !/[/\\]/.test(name);
}
