// The compiled hub's entry: the dashboard's bundled files set first, then hub/main.ts (a checkout bundles them itself).
import { mkdirSync, writeFileSync } from "node:fs";
import { join, relative } from "node:path";
import { bundleUi } from "../../hub/ui/index.ts";

const spec = (from: string, to: string) => {
  const r = relative(from, to);
  return JSON.stringify(r.startsWith(".") ? r : `./${r}`);
};

/**
 * Bundles the dashboard and writes, in `dir`, an entry that hands its files to the hub before the
 * hub starts (ES modules run in import order). Returns the entry's path. Same sources, same bytes.
 */
export async function writeHubEntry(root: string, dir: string): Promise<{ entry: string; bytes: number }> {
  const files = await bundleUi();
  mkdirSync(dir, { recursive: true });
  writeFileSync(
    join(dir, "hub-ui-files.ts"),
    `// Written by npm run build: the dashboard's files, embedded in the compiled hub.\nimport { setEmbeddedUi } from ${spec(dir, join(root, "hub/ui/embedded.ts"))};\nsetEmbeddedUi(${JSON.stringify(files)});\n`,
  );
  const entry = join(dir, "hub-entry.ts");
  writeFileSync(entry, `import "./hub-ui-files.ts";\nimport ${spec(dir, join(root, "hub/main.ts"))};\n`);
  return { entry, bytes: files.reduce((n, f) => n + f.text.length, 0) };
}
