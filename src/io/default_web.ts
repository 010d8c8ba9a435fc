/**
 * The default platform of the browser bundle (`deno task build:web` puts this file in place of default.ts):
 * the browser's, with nothing mounted, so reads are fetches relative to the page.
 *
 * @module
 */
import { browserPlatform } from "./browser.ts";
import type { Platform } from "./types.ts";

/** The platform for a browser. */
export function defaultPlatform(): Platform {
  return browserPlatform();
}
