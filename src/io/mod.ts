/**
 * The platform seam: file access, environment facts and the log sink, with a Deno and a browser
 * implementation (see types.ts).
 *
 * @module
 */
export * from "./types.ts";
export { files, host, platform, setFiles, setPlatform, setSink, sink } from "./platform.ts";
export { consoleSink } from "./sink.ts";
export {
  browserFiles,
  type BrowserFilesOptions,
  browserPlatform,
  type DirectoryHandleLike,
  type FileHandleLike,
  type Mount,
  opfsRoot,
  type WritableFileLike,
} from "./browser.ts";
export { browserHost } from "./browser_host.ts";
