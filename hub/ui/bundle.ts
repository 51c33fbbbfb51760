// Bundles the dashboard (hub/ui/web) with Bun.build: hashed scripts, code split, and one index.html with the CSS inline.
import { readFileSync } from "node:fs";
import { basename, join } from "node:path";

/** One file the dashboard serves under /ui/. */
export interface UiFile {
  /** Path under /ui/, e.g. `index.html`, `main-1a2b3c.js`. */
  name: string;
  type: string;
  text: string;
}

const WEB = join(import.meta.dir, "web");

/**
 * Bundles the dashboard into memory. The chart library is its own chunk, loaded only when a chart
 * is drawn; the first load is index.html (CSS inline) and the main script.
 */
export async function bundleUi(): Promise<UiFile[]> {
  const result = await Bun.build({
    entrypoints: [join(WEB, "main.ts")],
    target: "browser",
    format: "esm",
    splitting: true,
    minify: true,
    naming: { entry: "[name]-[hash].[ext]", chunk: "[name]-[hash].[ext]", asset: "[name]-[hash].[ext]" },
    define: { "process.env.NODE_ENV": '"production"' },
  });
  if (!result.success) {
    throw new Error(`the dashboard did not bundle: ${result.logs.map((l) => String(l)).join("; ")}`);
  }
  const files: UiFile[] = [];
  let main = "";
  for (const out of result.outputs) {
    const name = basename(out.path);
    if (out.kind === "entry-point") main = name;
    files.push({ name, type: "text/javascript; charset=utf-8", text: await out.text() });
  }
  const css =
    readFileSync(join(WEB, "style.css"), "utf8") +
    readFileSync(join(import.meta.dir, "../../node_modules/uplot/dist/uPlot.min.css"), "utf8");
  const html = readFileSync(join(WEB, "index.html"), "utf8")
    .replace("/*STYLE*/", css.replace(/\n\s*/g, "\n"))
    .replace("MAIN_SCRIPT", `./${main}`);
  files.push({ name: "index.html", type: "text/html; charset=utf-8", text: html });
  return files;
}
