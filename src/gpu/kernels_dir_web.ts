/**
 * Where the kernel files are in the browser bundle: `kernels/` beside the bundle's modules, where
 * `deno task build:web` copies them (in the bundle, `import.meta.url` is the bundle file's address).
 *
 * @module
 */

/** The folder of the WGSL kernel files. */
export const KERNELS_DIR: URL = new URL("./kernels/", import.meta.url);
