/**
 * Where the kernel files are: `kernels/` of the checkout or package, two folders above this file. The browser
 * bundle (`deno task build:web`) puts kernels_dir_web.ts in this file's place, with the kernels beside the
 * bundle.
 *
 * @module
 */

/** The folder of the WGSL kernel files. */
export const KERNELS_DIR: URL = new URL("../../kernels/", import.meta.url);
