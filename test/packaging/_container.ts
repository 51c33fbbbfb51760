// A throwaway Debian system with real systemd as PID 1, booted with systemd-nspawn from this
// machine's own /usr, /etc and /var through overlays whose writable layers live in memory: a
// test can dpkg -i, systemctl and journalctl in it, and nothing reaches the host.
import { existsSync, mkdirSync, readFileSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { Proc, tempDir } from "../support/processes.ts";
import { waitFor } from "../support/wait.ts";
import { isRoot, sh } from "./_artefacts.ts";

/** Why containers cannot boot here, or undefined when they can. */
export function containerSkipReason(): string | undefined {
  if (!isRoot) return "systemd-nspawn needs root";
  if (!Bun.which("systemd-nspawn"))
    return "systemd-nspawn is not installed (apt-get install systemd-container)";
  if (!Bun.which("nsenter") || !Bun.which("unshare")) return "nsenter/unshare (util-linux) are missing";
  if (!existsSync("/usr/lib/systemd/systemd")) return "systemd is not installed";
  return undefined;
}

export interface Container extends AsyncDisposable {
  name: string;
  /** Runs a shell command inside; returns its exit code and output. */
  exec(script: string, timeoutMs?: number): Promise<{ code: number; out: string; err: string }>;
  /** Like exec, but throws with the output when the command fails. */
  run(script: string, timeoutMs?: number): Promise<string>;
  /** An HTTP GET from inside the container's network namespace. */
  get<T = unknown>(url: string, token?: string): Promise<{ status: number; body: T }>;
  /** The console output of the container (its systemd's boot and shutdown messages). */
  console(): string;
}

/**
 * Boots a container with a private network (loopback only: no route anywhere) and the given
 * host directories bound read-only inside.
 */
export async function bootContainer(opts: { binds: Record<string, string> }): Promise<Container> {
  const dir = tempDir("novacron-nspawn-");
  const root = join(dir.path, "root");
  for (const d of ["usr", "etc", "var", "tmp", "proc", "dev", "sys", "run", "root", "home", "media", "mnt"]) {
    mkdirSync(join(root, d), { recursive: true });
  }
  for (const d of ["bin", "sbin", "lib", "lib64"]) {
    if (existsSync(`/usr/${d}`)) symlinkSync(`usr/${d}`, join(root, d));
  }
  // nspawn checks for os-release before it mounts anything; the /etc overlay then hides this copy.
  writeFileSync(join(root, "etc/os-release"), readFileSync("/etc/os-release"));

  const name = `novacron-${process.pid}-${Math.floor(Math.random() * 1e6)}`;
  const nspawn = [
    "systemd-nspawn",
    `--directory=${root}`,
    `--machine=${name}`,
    "--overlay=/usr::/usr",
    "--overlay=/etc::/etc",
    "--overlay=/var::/var",
    ...Object.entries(opts.binds).map(([host, inside]) => `--bind-ro=${host}:${inside}`),
    "--private-network",
    // No machined or host systemd to register with: the container stays a plain child process.
    "--register=no",
    "--keep-unit",
    "--link-journal=no",
    "--boot",
    "--",
    "systemd.unit=basic.target",
  ];
  // nspawn refuses to clean /run/systemd/nspawn unless it is a tmpfs: give it one in a private
  // mount namespace, which also keeps every mount of the container away from the host.
  const proc = new Proc(`nspawn:${name}`, [
    "unshare",
    "--mount",
    "--propagation",
    "private",
    "sh",
    "-c",
    `mkdir -p /run/systemd && mount -t tmpfs tmpfs /run/systemd && exec ${nspawn.map((a) => `'${a}'`).join(" ")}`,
  ]);
  proc.start();
  let leader: number | undefined;
  // Power off through the container's systemd; kill what is left after 30 s.
  const shutdown = async () => {
    if (proc.running && leader !== undefined) {
      await sh(["nsenter", `--target=${leader}`, "--all", "--", "systemctl", "poweroff"], {
        timeoutMs: 10_000,
      });
    } else if (proc.running) {
      await proc.kill("SIGTERM");
    }
    const stopped = await Promise.race([proc.exited().then(() => true), Bun.sleep(30_000).then(() => false)]);
    if (!stopped) {
      try {
        if (leader !== undefined) process.kill(leader, "SIGKILL");
      } catch {}
      await proc.kill("SIGKILL");
    }
    dir[Symbol.dispose]();
  };
  try {
    leader = await findLeader(proc);
    await waitFor(
      async () =>
        ["running", "degraded"].includes((await inside(leader!, "systemctl is-system-running")).out.trim()),
      {
        timeoutMs: 60_000,
        what: `container ${name} to boot`,
      },
    );
  } catch (err) {
    await shutdown();
    throw new Error(`${(err as Error).message}\nconsole:\n${proc.lines.slice(-30).join("\n")}`);
  }
  const pid1 = leader;
  const exec = (script: string, timeoutMs = 60_000) => inside(pid1, script, timeoutMs);
  const run = async (script: string, timeoutMs?: number) => {
    const r = await exec(script, timeoutMs);
    if (r.code !== 0) throw new Error(`in container: ${script}\nexit ${r.code}\n${r.out}${r.err}`);
    return r.out;
  };

  return {
    name,
    exec,
    run,
    async get<T>(url: string, token?: string) {
      const script = `const r = await fetch(${JSON.stringify(url)}, { headers: ${JSON.stringify(
        token ? { authorization: `Bearer ${token}` } : {},
      )} }); console.log(JSON.stringify({ status: r.status, text: await r.text() }));`;
      const r = await sh(["nsenter", `--target=${pid1}`, "--net", "--", process.execPath, "-e", script]);
      if (r.code !== 0) throw new Error(`GET ${url} in container failed: ${r.err || r.out}`);
      const { status, text } = JSON.parse(r.out) as { status: number; text: string };
      let body: unknown = text;
      try {
        body = JSON.parse(text);
      } catch {}
      return { status, body: body as T };
    },
    console: () => proc.lines.join("\n"),
    [Symbol.asyncDispose]: shutdown,
  };
}

/** Runs a shell command in every namespace of the container whose PID 1 is `leader`. */
function inside(leader: number, script: string, timeoutMs = 60_000) {
  return sh(["nsenter", `--target=${leader}`, "--all", "--", "sh", "-c", script], { timeoutMs });
}

/**
 * The container's PID 1: the child of nspawn that runs systemd. While nspawn sets up, a
 * short-lived helper child comes first, so the name is checked.
 */
function findLeader(proc: Proc): Promise<number> {
  return waitFor(
    () => {
      if (!proc.running) throw new Error(`systemd-nspawn exited:\n${proc.lines.join("\n")}`);
      const pid = proc.pid!;
      const children = readFileSync(`/proc/${pid}/task/${pid}/children`, "utf8").trim().split(" ");
      return children.map(Number).find((child) => {
        try {
          return readFileSync(`/proc/${child}/comm`, "utf8").trim() === "systemd";
        } catch {
          return false;
        }
      });
    },
    { timeoutMs: 30_000, what: "the container's init process" },
  );
}
