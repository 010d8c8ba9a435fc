/**
 * Headless Chromium for the browser tests: Debian's `chromium` (or the executable named by `WEBDPO_CHROMIUM`),
 * driven by playwright-core over the DevTools protocol. Never a browser that a client downloads itself.
 *
 * Each launch gets a fresh profile folder, and the flags keep Chromium off the network: no background
 * networking, no component updates, no first-run work. WebGPU is switched on with `--enable-unsafe-webgpu`; on a
 * machine without a GPU Chromium then offers SwiftShader, its CPU Vulkan implementation. A page served from
 * 127.0.0.1 is a secure context, which WebGPU requires (about:blank is not).
 */
import { chromium } from "playwright-core";
import type { BrowserContext, Page } from "playwright-core";

/** Where Debian's package puts the browser. */
export const DEFAULT_CHROMIUM = "/usr/bin/chromium";

/** The flags every browser test launches Chromium with (the profile folder is added per launch). */
export const CHROMIUM_FLAGS: readonly string[] = [
  "--headless=new",
  "--no-sandbox",
  "--enable-unsafe-webgpu",
  "--disable-background-networking",
  "--disable-component-update",
  "--no-first-run",
];

/** The Chromium executable: `WEBDPO_CHROMIUM` if set, else Debian's. */
export function chromiumPath(): string {
  return Deno.env.get("WEBDPO_CHROMIUM") || DEFAULT_CHROMIUM;
}

/** A running browser with one page open on a local static server. */
export interface BrowserSession {
  page: Page;
  /** The server's base URL (ends with "/"). */
  baseUrl: string;
  /** What the browser printed to its console (errors and warnings included), for failure messages. */
  console: string[];
  close(): Promise<void>;
}

/**
 * Launches Chromium on a fresh profile and opens `pages["index.html"]` (or a blank page) from a static server on
 * 127.0.0.1. `pages` maps paths to file contents; anything else is a 404.
 */
export async function openBrowser(pages: Record<string, string> = {}): Promise<BrowserSession> {
  const files: Record<string, string> = {
    "index.html": "<!doctype html><meta charset=utf-8><title>webdpo browser test</title>",
    ...pages,
  };
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, (req) => {
    const path = decodeURIComponent(new URL(req.url).pathname.slice(1)) || "index.html";
    const body = Object.hasOwn(files, path) ? files[path] : undefined;
    if (body === undefined) return new Response("not found", { status: 404 });
    const type = path.endsWith(".html") ? "text/html; charset=utf-8" : "text/plain; charset=utf-8";
    return new Response(body, { headers: { "content-type": type } });
  });
  const baseUrl = `http://127.0.0.1:${server.addr.port}/`;
  try {
    const session = await openPage(baseUrl);
    return { ...session, close: () => session.close().finally(() => server.shutdown()) };
  } catch (e) {
    await server.shutdown();
    throw e;
  }
}

/** Launches Chromium on a fresh profile and opens `url` (a page of a server the caller runs). */
export async function openPage(url: string): Promise<BrowserSession> {
  const exe = chromiumPath();
  try {
    await Deno.stat(exe);
  } catch {
    throw new Error(
      `no Chromium at ${exe}: install Debian's package (apt-get install -y chromium) or set WEBDPO_CHROMIUM`,
    );
  }
  const profile = await Deno.makeTempDir({ prefix: "webdpo-chromium-" });
  let context: BrowserContext | null = null;
  const close = async () => {
    try {
      await context?.close();
    } finally {
      await Deno.remove(profile, { recursive: true }).catch(() => {});
    }
  };
  try {
    context = await chromium.launchPersistentContext(profile, {
      executablePath: exe,
      headless: true,
      args: [...CHROMIUM_FLAGS],
      timeout: 60_000,
    });
    const page = context.pages()[0] ?? await context.newPage();
    const console: string[] = [];
    page.on("console", (m) => console.push(`${m.type()}: ${m.text()}`));
    page.on("pageerror", (e) => console.push(`pageerror: ${e.message}`));
    await page.goto(url);
    return { page, baseUrl: url, console, close };
  } catch (e) {
    await close();
    throw e;
  }
}
