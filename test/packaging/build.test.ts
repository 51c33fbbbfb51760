// The build: every artefact from one command, checksums that hold, and byte-identical rebuilds.
import { beforeAll, describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { freePort } from "../support/ports.ts";
import { tempDir } from "../support/processes.ts";
import { waitFor } from "../support/wait.ts";
import { artefacts, runBuild, sh, VERSION } from "./_artefacts.ts";

const busybox = Bun.which("busybox");
if (!busybox)
  console.warn("SKIPPING the BusyBox unpack check: busybox is not installed (apt-get install busybox)");

describe("build", () => {
  beforeAll(() => artefacts(), 300_000);

  test("build: binaries, archives, .debs, SHA256SUMS and BUILDINFO for each selected target", async () => {
    const dist = await artefacts();
    const expected = [];
    for (const program of ["novacron-agent", "novacron-hub"]) {
      for (const [target, deb] of [
        ["linux-x64", "amd64"],
        ["linux-arm64", "arm64"],
      ]) {
        expected.push(
          `${program}-${target}`,
          `${program}-${VERSION}-${target}.tar.xz`,
          `${program}_${VERSION}_${deb}.deb`,
        );
      }
    }
    // The operator CLI ships as a binary only.
    expected.push("novacron-linux-x64", "novacron-linux-arm64");
    const sums = readFileSync(dist.path("SHA256SUMS"), "utf8");
    const listed = sums
      .trim()
      .split("\n")
      .map((l) => l.slice(66));
    expect(listed.sort()).toEqual(expected.sort());
    const check = await sh(["sha256sum", "--check", "--strict", "SHA256SUMS"], { cwd: dist.dir });
    expect(check.code).toBe(0);
    const info = readFileSync(dist.path("BUILDINFO"), "utf8");
    expect(info).toContain(`bun: ${Bun.version}`);
    expect(info).toMatch(/@oven\/bun-linux-x64-baseline@[\d.]+: sha256 [0-9a-f]{64}/);
    expect(info).toMatch(/@oven\/bun-linux-aarch64@[\d.]+: sha256 [0-9a-f]{64}/);
  });

  test("build: the x64 binaries run and report the package version; BUILDINFO names the agent's baseline runtime", async () => {
    const dist = await artefacts();
    for (const program of ["novacron-agent", "novacron-hub", "novacron"]) {
      const r = await sh([dist.path(`${program}-linux-x64`), "--version"]);
      expect(r.out.trim()).toBe(`${program} ${VERSION}`);
    }
    const info = readFileSync(dist.path("BUILDINFO"), "utf8");
    const baseline = /@oven\/bun-linux-x64-baseline@[\d.]+: sha256 ([0-9a-f]{64})/.exec(info)?.[1];
    expect(baseline).toBeDefined();
  });

  test("build: the compiled hub serves the dashboard from inside itself, run where no source tree or node_modules is", async () => {
    const dist = await artefacts();
    using dir = tempDir();
    const port = freePort();
    const hub = Bun.spawn(
      [dist.path("novacron-hub-linux-x64"), "serve", "--data", dir.path, "--listen", `127.0.0.1:${port}`],
      { cwd: dir.path, stdout: "ignore", stderr: "ignore" },
    );
    try {
      const page = await waitFor(
        async () => {
          const r = await fetch(`http://127.0.0.1:${port}/ui/`);
          return r.status === 200 ? r.text() : undefined;
        },
        { what: "the compiled hub's /ui/", timeoutMs: 30_000 },
      );
      const main = /src="\.\/(main-[a-z0-9]+\.js)"/.exec(page)?.[1];
      expect(main).toBeDefined();
      const js = await fetch(`http://127.0.0.1:${port}/ui/${main}`);
      expect(js.status).toBe(200);
      expect(await js.text()).toContain("/api/v1/stream");
    } finally {
      hub.kill("SIGKILL");
      await hub.exited;
    }
  });

  test("archive: holds the binary (byte-identical), example config, unit, install.sh and its own SHA256SUMS", async () => {
    const dist = await artefacts();
    using dir = tempDir();
    const base = `novacron-agent-${VERSION}-linux-x64`;
    const x = await sh(["tar", "-xJf", dist.path(`${base}.tar.xz`), "-C", dir.path]);
    expect(x.code).toBe(0);
    const listing = await sh(["tar", "-tvJf", dist.path(`${base}.tar.xz`)]);
    const entries = listing.out
      .trim()
      .split("\n")
      .map((l) => l.split(/\s+/));
    expect(entries.map((e) => e.at(-1)).sort()).toEqual(
      [
        `${base}/`,
        `${base}/SHA256SUMS`,
        `${base}/agent.yaml`,
        `${base}/install.sh`,
        `${base}/novacron-agent`,
        `${base}/novacron-agent.service`,
      ].sort(),
    );
    for (const e of entries) expect(e[1]).toBe("0/0");
    const modes = Object.fromEntries(entries.map((e) => [e.at(-1), e[0]]));
    expect(modes[`${base}/novacron-agent`]).toBe("-rwxr-xr-x");
    expect(modes[`${base}/install.sh`]).toBe("-rwxr-xr-x");
    expect(modes[`${base}/agent.yaml`]).toBe("-rw-r--r--");
    const inner = await sh(["sha256sum", "--check", "--strict", "SHA256SUMS"], { cwd: join(dir.path, base) });
    expect(inner.code).toBe(0);
    const same = await sh([
      "cmp",
      join(dir.path, base, "novacron-agent"),
      dist.path("novacron-agent-linux-x64"),
    ]);
    expect(same.code).toBe(0);
    const sh0 = await sh(["sh", "-n", join(dir.path, base, "install.sh")]);
    expect(sh0.code).toBe(0);
    expect(readFileSync(join(dir.path, base, "install.sh"), "utf8")).not.toMatch(/@[A-Z_]+@/);
  });

  test.skipIf(!busybox)(
    "archive: BusyBox alone unpacks it (tar -xJf), checks its sums and parses install.sh",
    async () => {
      const dist = await artefacts();
      using dir = tempDir();
      const base = `novacron-agent-${VERSION}-linux-x64`;
      expect((await sh([busybox!, "tar", "-xJf", dist.path(`${base}.tar.xz`), "-C", dir.path])).code).toBe(0);
      const check = await sh([busybox!, "sha256sum", "-c", "SHA256SUMS"], { cwd: join(dir.path, base) });
      expect(check.out).toContain("novacron-agent: OK");
      expect(check.code).toBe(0);
      expect((await sh([busybox!, "ash", "-n", join(dir.path, base, "install.sh")])).code).toBe(0);
    },
  );

  test("build: two builds from the same sources give byte-identical binaries, archives and packages", async () => {
    const dist = await artefacts();
    // Same inputs: the sources (built back to back, as others may be editing this tree) and one
    // time stamp (by default HEAD's commit time, which a commit in between would move).
    const epoch = /source_date_epoch: (\d+)/.exec(readFileSync(dist.path("BUILDINFO"), "utf8"))?.[1];
    expect(epoch).toBeDefined();
    using first = tempDir();
    using second = tempDir();
    for (const out of [first.path, second.path]) {
      await runBuild(["--out", out, "--target", "linux-x64", "--component", "agent", "--fast"], {
        SOURCE_DATE_EPOCH: epoch!,
      });
    }
    const sums = (dir: string) => readFileSync(join(dir, "SHA256SUMS"), "utf8");
    expect(
      sums(second.path)
        .trim()
        .split("\n")
        .map((l) => l.slice(66)),
    ).toEqual([
      `novacron-agent-${VERSION}-linux-x64.tar.xz`,
      "novacron-agent-linux-x64",
      `novacron-agent_${VERSION}_amd64.deb`,
    ]);
    expect(sums(second.path)).toBe(sums(first.path));
  }, 180_000);

  test("build: a bad option exits 2 with a message naming it", async () => {
    const r = await sh([process.execPath, "scripts/build.ts", "--target", "linux-sparc"]);
    expect(r.code).toBe(2);
    expect(r.err).toContain('unknown target "linux-sparc"');
    const s = await sh([process.execPath, "scripts/build.ts", "--skip", "binary"]);
    expect(s.code).toBe(2);
    expect(s.err).toContain("--skip takes archive and/or deb");
  });
});
