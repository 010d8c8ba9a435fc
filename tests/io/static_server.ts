/**
 * A static file server for tests of the browser's URL mounts: serves the files under a folder on 127.0.0.1,
 * answering `Range: bytes=a-b` with 206 when `ranges` is true and ignoring it otherwise (as python's http.server
 * does), and records each request.
 */

const TYPES: Record<string, string> = {
  html: "text/html; charset=utf-8",
  js: "text/javascript; charset=utf-8",
  json: "application/json",
  wgsl: "text/plain; charset=utf-8",
  jsonl: "text/plain; charset=utf-8",
};

/**
 * A static file server over `dir` (or several: URL path prefix → folder, e.g. `{ "/dist/web/": out, "/": repo }`,
 * the longest prefix first); `ranges` false ignores Range headers (as python's http.server does), `head` false
 * refuses HEAD requests with 405.
 */
export function serve(dir: string | Record<string, string>, ranges: boolean, head = true) {
  const roots = Object.entries(typeof dir === "string" ? { "/": dir } : dir).sort((a, b) =>
    b[0].length - a[0].length
  );
  const requests: string[] = [];
  const server = Deno.serve({ port: 0, hostname: "127.0.0.1", onListen() {} }, async (req) => {
    const asked = decodeURIComponent(new URL(req.url).pathname);
    const path = asked.endsWith("/") ? `${asked}index.html` : asked;
    const range = req.headers.get("range");
    requests.push(`${req.method} ${asked}${range ? ` ${range}` : ""}`);
    if (req.method === "HEAD" && !head) return new Response(null, { status: 405 });
    let data: Uint8Array<ArrayBuffer>;
    try {
      const [prefix, folder] = roots.find(([p]) => path.startsWith(p)) ?? ["", ""];
      if (!folder) throw new Error("no folder");
      data = await Deno.readFile(`${folder}/${path.slice(prefix.length)}`);
    } catch {
      return new Response("missing", { status: 404 });
    }
    const type = TYPES[path.split(".").pop() ?? ""] ?? "application/octet-stream";
    const m = ranges ? /^bytes=(\d+)-(\d+)$/.exec(range ?? "") : null;
    if (m) {
      const [a, b] = [Number(m[1]), Math.min(Number(m[2]), data.length - 1)];
      return new Response(req.method === "HEAD" ? null : data.slice(a, b + 1), {
        status: 206,
        headers: {
          "content-range": `bytes ${a}-${b}/${data.length}`,
          "content-length": String(b - a + 1),
          "content-type": type,
        },
      });
    }
    return new Response(req.method === "HEAD" ? null : data, {
      headers: { "content-length": String(data.length), "content-type": type },
    });
  });
  return { url: `http://127.0.0.1:${server.addr.port}/`, requests, close: () => server.shutdown() };
}
