/**
 * The address of the tokenizing worker's module (tokenize_worker.ts beside this file). The browser bundle
 * (`deno task build:web`) puts tokenize_worker_url_web.ts in this file's place, naming the worker's bundle.
 *
 * @module
 */

/** The module the tokenizing Web Workers run. */
export const TOKENIZE_WORKER_URL: URL = new URL("./tokenize_worker.ts", import.meta.url);
