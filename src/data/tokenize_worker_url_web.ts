/**
 * The address of the tokenizing worker in the browser bundle: tokenize_worker.js beside the bundle's modules
 * (an entry point of its own in `deno task build:web`).
 *
 * @module
 */

/** The module the tokenizing Web Workers run. */
export const TOKENIZE_WORKER_URL: URL = new URL("./tokenize_worker.js", import.meta.url);
