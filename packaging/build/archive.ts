// The offline archive: binary, example config, systemd unit, install script and checksums, as a
// byte-reproducible tar.xz.
import { chmodSync, copyFileSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { CompiledBinary } from "./compile.ts";
import { packageVars, fillTemplate } from "./deb.ts";
import { run, sha256File } from "./exec.ts";

export interface ArchiveOptions {
  root: string;
  version: string;
  sourceDateEpoch: number;
  /** xz preset: 6 needs 9 MiB to decompress, 9 needs 65 MiB (too much for small devices). */
  xzLevel: number;
  workDir: string;
  outDir: string;
}

/** The archive's base name, also the directory it unpacks into. */
export function archiveBase(bin: CompiledBinary, version: string): string {
  return `${bin.component.program}-${version}-${bin.target.name}`;
}

/** Builds `<program>-<version>-<target>.tar.xz`; returns its path. */
export async function buildArchive(bin: CompiledBinary, opts: ArchiveOptions): Promise<string> {
  const { component, target } = bin;
  const program = component.program;
  const base = archiveBase(bin, opts.version);
  const dir = join(opts.workDir, base);
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true, mode: 0o755 });
  chmodSync(dir, 0o755);

  const files: [string, number][] = [];
  const put = (name: string, text: string | undefined, mode: number, from?: string) => {
    const path = join(dir, name);
    if (from) copyFileSync(from, path);
    else writeFileSync(path, text ?? "");
    chmodSync(path, mode);
    files.push([name, mode]);
  };
  put(program, undefined, 0o755, bin.path);
  put(
    component.configName,
    readFileSync(join(opts.root, "packaging/config", component.configName), "utf8"),
    0o644,
  );
  put(`${program}.service`, readFileSync(join(opts.root, "systemd", `${program}.service`), "utf8"), 0o644);
  const vars = {
    ...packageVars(component),
    PROGRAM: program,
    VERSION: opts.version,
    TARGET: target.name,
    MACHINE: target.unameMachine,
    LIBC: target.libc,
    CONFIG_NAME: component.configName,
    SUBCOMMAND: component.name === "agent" ? "run" : "serve",
  };
  const installer = readFileSync(join(opts.root, "packaging/install/install.sh"), "utf8");
  put("install.sh", fillTemplate(installer, vars), 0o755);

  const sums: string[] = [];
  for (const [name] of files.sort(([a], [b]) => (a < b ? -1 : 1))) {
    sums.push(`${await sha256File(join(dir, name))}  ${name}`);
  }
  put("SHA256SUMS", `${sums.join("\n")}\n`, 0o644);

  const out = join(opts.outDir, `${base}.tar.xz`);
  const tarball = join(opts.workDir, `${base}.tar`);
  await run([
    "tar",
    "--create",
    "--file",
    tarball,
    "--directory",
    opts.workDir,
    "--sort=name",
    "--format=gnu",
    `--mtime=@${opts.sourceDateEpoch}`,
    "--owner=0",
    "--group=0",
    "--numeric-owner",
    base,
  ]);
  // -T1: the single-threaded encoder; its stream does not depend on the machine's core count.
  await run(["xz", "--force", "--keep", `-${opts.xzLevel}`, "-T1", "--check=crc64", tarball]);
  await run(["mv", "-f", `${tarball}.xz`, out]);
  rmSync(tarball, { force: true });
  return out;
}
