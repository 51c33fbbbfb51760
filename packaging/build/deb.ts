// A Debian package per component and architecture, assembled by hand and built with dpkg-deb.
import { chmodSync, copyFileSync, mkdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { CompiledBinary } from "./compile.ts";
import { run } from "./exec.ts";
import { manPage } from "./man-page.ts";
import type { Component } from "./targets.ts";

export interface DebOptions {
  root: string;
  version: string;
  /** Seconds since the epoch: every mtime in the package, for byte-identical rebuilds. */
  sourceDateEpoch: number;
  /** xz preset for the data member; 6 is dpkg's default. */
  xzLevel: number;
  maintainer: string;
  workDir: string;
  outDir: string;
}

/** The values the maintainer-script templates are filled with. */
export function packageVars(component: Component): Record<string, string> {
  const user = component.name === "agent" ? "novacron" : "novacron-hub";
  return {
    PACKAGE: component.program,
    COMPONENT: component.name,
    UNIT: `${component.program}.service`,
    USER: user,
    STATE_DIR: `/var/lib/${user}`,
    CONFIG_FILE: `/etc/novacron/${component.configName}`,
    ENV_FILE: `/etc/novacron/${component.name}.env`,
  };
}

/** Replaces every `@NAME@` in `text`; throws on a name without a value. */
export function fillTemplate(text: string, vars: Record<string, string>): string {
  return text.replace(/@([A-Z_]+)@/g, (_, name: string) => {
    const v = vars[name];
    if (v === undefined) throw new Error(`template variable @${name}@ has no value`);
    return v;
  });
}

/** The newest GLIBC_x.y symbol version the binary needs, e.g. "2.17". */
async function glibcFloor(binary: string): Promise<string> {
  const out = await run(["readelf", "-V", "--wide", binary]);
  const versions = [...out.matchAll(/GLIBC_(\d+)\.(\d+)/g)].map((m) => [Number(m[1]), Number(m[2])] as const);
  versions.sort((a, b) => a[0] - b[0] || a[1] - b[1]);
  const top = versions.at(-1);
  if (!top) throw new Error(`${binary} names no GLIBC version`);
  return `${top[0]}.${top[1]}`;
}

function write(path: string, text: string, mode: number): void {
  writeFileSync(path, text);
  chmodSync(path, mode);
}

/** Builds `<program>_<version>_<arch>.deb` for a compiled glibc binary; returns its path. */
export async function buildDeb(bin: CompiledBinary, opts: DebOptions): Promise<string> {
  const { component, target } = bin;
  const debArch = target.debArch;
  if (!debArch) throw new Error(`no Debian architecture for ${target.name}`);
  const vars = packageVars(component);
  const program = component.program;
  const tree = join(opts.workDir, `${program}_${debArch}`);
  rmSync(tree, { recursive: true, force: true });
  const dirs = [
    "DEBIAN",
    "usr/bin",
    "lib/systemd/system",
    "etc/novacron",
    `usr/share/doc/${program}`,
    "usr/share/man/man8",
    "usr/share/lintian/overrides",
  ];
  for (const d of dirs) mkdirSync(join(tree, d), { recursive: true, mode: 0o755 });

  copyFileSync(bin.path, join(tree, "usr/bin", program));
  chmodSync(join(tree, "usr/bin", program), 0o755);
  const unit = readFileSync(join(opts.root, "systemd", `${program}.service`), "utf8");
  write(join(tree, "lib/systemd/system", `${program}.service`), unit, 0o644);
  const config = readFileSync(join(opts.root, "packaging/config", component.configName), "utf8");
  write(join(tree, "etc/novacron", component.configName), config, 0o644);

  const docDir = join(tree, "usr/share/doc", program);
  write(join(docDir, "copyright"), copyright(program), 0o644);
  const changelog = `${program} (${opts.version}) unstable; urgency=medium\n\n  * Release ${opts.version}.\n\n -- ${opts.maintainer}  ${new Date(opts.sourceDateEpoch * 1000).toUTCString().replace("GMT", "+0000")}\n`;
  await gzipTo(changelog, join(docDir, "changelog.gz"));
  const help = await run([process.execPath, component.entry, "--help"], { cwd: opts.root });
  await gzipTo(
    manPage(program, opts.version, component.summary, help, opts.sourceDateEpoch),
    join(tree, "usr/share/man/man8", `${program}.8.gz`),
  );
  const overrides = readFileSync(join(opts.root, "packaging/deb/lintian-overrides"), "utf8");
  write(join(tree, "usr/share/lintian/overrides", program), fillTemplate(overrides, vars), 0o644);

  for (const script of ["postinst", "prerm", "postrm"]) {
    const text = readFileSync(join(opts.root, "packaging/deb", script), "utf8");
    write(join(tree, "DEBIAN", script), fillTemplate(text, vars), 0o755);
  }
  write(join(tree, "DEBIAN/conffiles"), `/etc/novacron/${component.configName}\n`, 0o644);

  const md5 = await run(
    ["sh", "-c", "find . -path ./DEBIAN -prune -o -type f -printf '%P\\0' | sort -z | xargs -0 md5sum"],
    {
      cwd: tree,
    },
  );
  write(join(tree, "DEBIAN/md5sums"), md5, 0o644);

  const installedKiB = Math.ceil(
    md5
      .trim()
      .split("\n")
      .reduce((sum, line) => sum + statSync(join(tree, line.slice(34))).size, 0) / 1024,
  );
  const description = component.description
    .split("\n")
    .map((l) => ` ${l}`)
    .join("\n");
  const control = [
    `Package: ${program}`,
    `Version: ${opts.version}`,
    `Architecture: ${debArch}`,
    `Maintainer: ${opts.maintainer}`,
    `Installed-Size: ${installedKiB}`,
    `Depends: libc6 (>= ${await glibcFloor(bin.path)}), adduser`,
    "Section: admin",
    "Priority: optional",
    `Description: ${component.summary}`,
    description,
    "",
  ].join("\n");
  write(join(tree, "DEBIAN/control"), control, 0o644);

  const out = join(opts.outDir, `${program}_${opts.version}_${debArch}.deb`);
  await run([
    "find",
    tree,
    "-exec",
    "touch",
    "--no-dereference",
    `--date=@${opts.sourceDateEpoch}`,
    "{}",
    "+",
  ]);
  await run(
    [
      "dpkg-deb",
      "--root-owner-group",
      "-Zxz",
      `-z${opts.xzLevel}`,
      // One thread: multi-threaded xz writes a different (block-split) stream, and the thread
      // count depends on the machine, which would break byte-identical rebuilds.
      "--threads-max=1",
      "--build",
      tree,
      out,
    ],
    {
      env: { SOURCE_DATE_EPOCH: String(opts.sourceDateEpoch) },
      what: `dpkg-deb --build ${program} ${debArch}`,
    },
  );
  return out;
}

async function gzipTo(text: string, path: string): Promise<void> {
  // gzip -n: no name and no timestamp in the header, so the output depends on the text alone.
  const proc = Bun.spawn(["gzip", "-9n"], { stdin: new Blob([text]), stdout: "pipe" });
  const bytes = await new Response(proc.stdout).arrayBuffer();
  if ((await proc.exited) !== 0) throw new Error(`gzip failed for ${path}`);
  writeFileSync(path, new Uint8Array(bytes));
  chmodSync(path, 0o644);
}

function copyright(program: string): string {
  return [
    "Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/",
    `Upstream-Name: ${program}`,
    "",
    "Files: *",
    "Copyright: NovaCron Edge contributors",
    "License: Apache-2.0",
    "",
    "Files: usr/bin/*",
    "Copyright: NovaCron Edge contributors; Oven (the Bun runtime) and the authors of its bundled components",
    "License: Apache-2.0 and MIT and others",
    " The binary embeds the Bun runtime (MIT; see https://bun.sh/docs/project/licensing), which",
    " bundles JavaScriptCore (LGPL-2.0), SQLite (public domain), BoringSSL and other components,",
    " and the npm packages hono, mqtt, cbor-x, valibot and systeminformation (MIT).",
    "",
    "License: Apache-2.0",
    " On Debian systems, the full text of the Apache License 2.0 is in",
    " /usr/share/common-licenses/Apache-2.0.",
    "",
  ].join("\n");
}
