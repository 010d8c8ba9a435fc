/** `webdpo env`: what a bug report needs — the WebGPU adapter, its limits and features, Deno and webdpo versions. */
import { init } from "../gpu/init.ts";
import { WebDPOError } from "../gpu/errors.ts";
import { VERSION } from "../version.ts";

export async function envReport(): Promise<string> {
  const lines = [
    `webdpo ${VERSION}`,
    `deno ${Deno.version.deno} (v8 ${Deno.version.v8}, typescript ${Deno.version.typescript})`,
    `os ${Deno.build.os} ${Deno.build.arch}`,
  ];
  try {
    const info = await init();
    lines.push(`adapter ${info.adapterName}${info.isFallbackAdapter ? " (fallback/software adapter)" : ""}`);
    if (info.vendor || info.architecture) lines.push(`vendor ${info.vendor} ${info.architecture}`.trimEnd());
    const f = info.features;
    lines.push(
      `features shader-f16=${f.shaderF16} timestamp-query=${f.timestampQuery} subgroups=${f.subgroups}`,
    );
    for (const [k, v] of Object.entries(info.limits)) lines.push(`limit ${k} ${v}`);
  } catch (e) {
    if (!(e instanceof WebDPOError)) throw e;
    lines.push(`adapter none: ${e.message}`);
  }
  return lines.join("\n");
}
