// The release build: compiled binaries, offline archives, .deb packages, checksums, build record.
import { availableParallelism } from "node:os";
import { mkdirSync, rmSync, statSync, writeFileSync } from "node:fs";
import { basename, join, relative, resolve } from "node:path";
import { buildArchive } from "./archive.ts";
import { type CompiledBinary, compile } from "./compile.ts";
import { buildDeb } from "./deb.ts";
import { run, sha256File } from "./exec.ts";
import { writeHubEntry } from "./hub-entry.ts";
import { fetchRuntime } from "./runtime.ts";
import { type Component, type Target, selectComponents, selectTargets } from "./targets.ts";

export { COMPONENTS, selectComponents, selectTargets, TARGETS } from "./targets.ts";

/** The shipped agent archive must stay below this (docs/targets.md). */
export const AGENT_ARCHIVE_LIMIT = 50 * 1000 * 1000;
/** xz preset of shipped archives and packages: 9 MiB to decompress, ~39 MB for the agent. */
export const RELEASE_XZ_LEVEL = 6;

export interface BuildOptions {
  root: string;
  outDir: string;
  targets?: readonly string[];
  components?: readonly string[];
  /** xz -0 instead of -6: for tests, which check contents, not size. */
  fast?: boolean;
  skip?: ReadonlySet<"archive" | "deb">;
  log?: (line: string) => void;
}

export interface Artefact {
  kind: "binary" | "archive" | "deb";
  path: string;
  bytes: number;
  sha256: string;
  component: Component["name"];
  target: Target["name"];
}

export interface BuildResult {
  version: string;
  sourceDateEpoch: number;
  artefacts: Artefact[];
  binaries: CompiledBinary[];
}

/** Runs `tasks` with at most `limit` at a time; resolves to their results in order. */
async function pool<T>(limit: number, tasks: (() => Promise<T>)[]): Promise<T[]> {
  const results: T[] = new Array(tasks.length);
  let next = 0;
  const worker = async () => {
    while (next < tasks.length) {
      const i = next++;
      results[i] = await tasks[i]!();
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, tasks.length) }, worker));
  return results;
}

async function sourceDateEpoch(root: string): Promise<number> {
  const fromEnv = process.env.SOURCE_DATE_EPOCH;
  if (fromEnv && /^\d+$/.test(fromEnv)) return Number(fromEnv);
  try {
    return Number((await run(["git", "log", "-1", "--format=%ct"], { cwd: root })).trim());
  } catch {
    // Not a git checkout: a fixed time keeps rebuilds identical.
    return 0;
  }
}

async function gitDescribe(root: string): Promise<string> {
  try {
    const commit = (await run(["git", "rev-parse", "HEAD"], { cwd: root })).trim();
    const dirty = (await run(["git", "status", "--porcelain"], { cwd: root })).trim() !== "";
    return dirty ? `${commit} (with uncommitted changes)` : commit;
  } catch {
    return "not a git checkout";
  }
}

/** Builds every selected artefact into `outDir`, with SHA256SUMS and BUILDINFO beside them. */
export async function build(opts: BuildOptions): Promise<BuildResult> {
  const root = resolve(opts.root);
  const outDir = resolve(opts.outDir);
  const log = opts.log ?? (() => {});
  const pkg = (await Bun.file(join(root, "package.json")).json()) as {
    version: string;
    devDependencies: Record<string, string>;
  };
  const bunVersion = pkg.devDependencies.bun ?? Bun.version;
  if (bunVersion !== Bun.version) {
    throw new Error(`package.json pins bun ${bunVersion} but this is bun ${Bun.version}: run npm install`);
  }
  const targets = selectTargets(opts.targets);
  const components = selectComponents(opts.components);
  const xzLevel = opts.fast ? 0 : RELEASE_XZ_LEVEL;
  const epoch = await sourceDateEpoch(root);
  const workDir = join(outDir, ".work");
  rmSync(workDir, { recursive: true, force: true });
  mkdirSync(workDir, { recursive: true });
  const cacheDir = join(root, "node_modules/.cache/novacron-build");

  // The hub carries the dashboard: bundled once, embedded through a generated entry.
  let hubEntry: string | undefined;
  if (components.some((c) => c.name === "hub")) {
    const ui = await writeHubEntry(root, join(cacheDir, "hub-entry"));
    hubEntry = relative(root, ui.entry);
    log(`bundled the dashboard (${ui.bytes} bytes)`);
  }
  const binaries: CompiledBinary[] = [];
  for (const target of targets) {
    for (const component of components) {
      const runtime = await fetchRuntime(target.runtime[component.name], Bun.version, cacheDir);
      const t0 = performance.now();
      const entry = component.name === "hub" && hubEntry ? { ...component, entry: hubEntry } : component;
      const bin = await compile(root, entry, target, runtime, outDir);
      log(
        `compiled ${basename(bin.path)} (${mb(bin.bytes)}) in ${((performance.now() - t0) / 1000).toFixed(1)} s`,
      );
      binaries.push(bin);
    }
  }

  const packTasks: (() => Promise<Artefact>)[] = [];
  for (const bin of binaries) {
    if (bin.component.binaryOnly) continue;
    const tag = { component: bin.component.name, target: bin.target.name };
    if (!opts.skip?.has("archive")) {
      packTasks.push(async () => {
        const path = await buildArchive(bin, {
          root,
          version: pkg.version,
          sourceDateEpoch: epoch,
          xzLevel,
          workDir,
          outDir,
        });
        log(`packed ${basename(path)} (${mb(statSync(path).size)})`);
        return { kind: "archive", path, bytes: statSync(path).size, sha256: await sha256File(path), ...tag };
      });
    }
    if (!opts.skip?.has("deb") && bin.target.debArch) {
      packTasks.push(async () => {
        const maintainer =
          process.env.NOVACRON_DEB_MAINTAINER ?? "NovaCron Edge maintainers <maintainers@novacron.invalid>";
        const path = await buildDeb(bin, {
          root,
          version: pkg.version,
          sourceDateEpoch: epoch,
          xzLevel,
          maintainer,
          workDir,
          outDir,
        });
        log(`packaged ${basename(path)} (${mb(statSync(path).size)})`);
        return { kind: "deb", path, bytes: statSync(path).size, sha256: await sha256File(path), ...tag };
      });
    }
  }
  const packed = await pool(availableParallelism(), packTasks);
  rmSync(workDir, { recursive: true, force: true });

  const artefacts: Artefact[] = [
    ...binaries.map((b) => ({
      kind: "binary" as const,
      path: b.path,
      bytes: b.bytes,
      sha256: b.sha256,
      component: b.component.name,
      target: b.target.name,
    })),
    ...packed,
  ];
  const sums = artefacts
    .map((a) => `${a.sha256}  ${basename(a.path)}`)
    .sort((a, b) => (a.slice(66) < b.slice(66) ? -1 : 1));
  writeFileSync(join(outDir, "SHA256SUMS"), `${sums.join("\n")}\n`);

  // dist/ is the build context of the container images (packaging/container/): they need the binaries only.
  writeFileSync(join(outDir, ".dockerignore"), "*\n!novacron-agent-linux-*\n!novacron-hub-linux-*\n");

  const runtimes = [...new Map(binaries.map((b) => [b.runtime.spec, b.runtime.sha256])).entries()];
  writeFileSync(
    join(outDir, "BUILDINFO"),
    [
      `version: ${pkg.version}`,
      `source: ${await gitDescribe(root)}`,
      `source_date_epoch: ${epoch}`,
      `bun: ${Bun.version}`,
      `xz_level: ${xzLevel}`,
      "runtimes:",
      ...runtimes.map(([spec, sha]) => `  ${spec}: sha256 ${sha}`),
      "",
    ].join("\n"),
  );

  if (!opts.fast) {
    for (const a of artefacts) {
      if (a.kind === "archive" && a.component === "agent" && a.bytes >= AGENT_ARCHIVE_LIMIT) {
        throw new Error(`${basename(a.path)} is ${mb(a.bytes)}, over the ${mb(AGENT_ARCHIVE_LIMIT)} limit`);
      }
    }
  }
  return { version: pkg.version, sourceDateEpoch: epoch, artefacts, binaries };
}

/** Bytes as megabytes (10^6), one decimal. */
export function mb(bytes: number): string {
  return `${(bytes / 1e6).toFixed(1)} MB`;
}
