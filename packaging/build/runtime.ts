// The Bun runtime embedded in each binary: fetched as a pinned npm package, cached, hashed.
import { existsSync, mkdirSync, mkdtempSync, renameSync, rmSync } from "node:fs";
import { join } from "node:path";
import { run, sha256File } from "./exec.ts";

export interface Runtime {
  /** npm package and version, e.g. `@oven/bun-linux-aarch64@1.4.4`. */
  spec: string;
  /** The `bun` executable inside it. */
  path: string;
  sha256: string;
}

/**
 * Returns the Bun executable of `pkg` at `version`, fetching it once with `npm pack` (which
 * checks the tarball against the registry's integrity hash) into `cacheDir`. Passing it to
 * `bun build --compile-executable-path` makes the embedded runtime an explicit, hashed input
 * instead of whatever `bun build` would pick for the host CPU.
 */
export async function fetchRuntime(pkg: string, version: string, cacheDir: string): Promise<Runtime> {
  const spec = `${pkg}@${version}`;
  const dir = join(cacheDir, `${pkg.replace("@", "").replace("/", "-")}-${version}`);
  const path = join(dir, "bun");
  if (!existsSync(path)) {
    mkdirSync(cacheDir, { recursive: true });
    const tmp = mkdtempSync(join(cacheDir, ".fetch-"));
    try {
      const out = await run(["npm", "pack", spec, "--pack-destination", tmp, "--json"], {
        what: `npm pack ${spec}`,
      });
      const [info] = JSON.parse(out) as { filename: string }[];
      if (!info) throw new Error(`npm pack ${spec} reported no file`);
      await run(["tar", "-xzf", join(tmp, info.filename), "-C", tmp, "package/bin/bun"]);
      mkdirSync(dir, { recursive: true });
      renameSync(join(tmp, "package/bin/bun"), path);
    } finally {
      rmSync(tmp, { recursive: true, force: true });
    }
  }
  return { spec, path, sha256: await sha256File(path) };
}
