/**
 * The default platform outside the browser bundle: Deno's under Deno, the browser's elsewhere (a bundler that
 * does not swap this file for default_web.ts, or a runtime with WebGPU but no `Deno` global).
 *
 * @module
 */
import { browserPlatform } from "./browser.ts";
import { denoPlatform } from "./deno.ts";
import type { Platform } from "./types.ts";

/** The platform for this runtime. */
export function defaultPlatform(): Platform {
  return "Deno" in globalThis ? denoPlatform : browserPlatform();
}
