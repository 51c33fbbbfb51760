// A private PostgreSQL server (initdb + pg_ctl) on a free port in a temp dir, so tests never touch a shared one.
import { afterAll, beforeAll, describe } from "bun:test";
import { chownSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { SQL } from "bun";
import { freePort } from "./ports.ts";
import { waitFor } from "./wait.ts";

/**
 * The newest PostgreSQL bin directory: $PG_BIN, then Debian's /usr/lib/postgresql/<ver>/bin (not on
 * PATH), then `initdb` on PATH. Undefined when none is installed.
 */
export function postgresBinDir(): string | undefined {
  const fromEnv = process.env.PG_BIN;
  if (fromEnv && existsSync(join(fromEnv, "initdb"))) return fromEnv;
  const root = "/usr/lib/postgresql";
  if (existsSync(root)) {
    const versions = readdirSync(root)
      .filter((v) => existsSync(join(root, v, "bin", "initdb")))
      .sort((a, b) => Number.parseFloat(b) - Number.parseFloat(a));
    if (versions[0]) return join(root, versions[0], "bin");
  }
  const onPath = Bun.which("initdb");
  return onPath ? join(onPath, "..") : undefined;
}

/**
 * Why PostgreSQL tests cannot run here, or undefined when they can. On CI a missing server is an error
 * (.ci/run installs it), not a reason to skip.
 */
export function postgresMissing(): string | undefined {
  if (postgresBinDir()) return undefined;
  if (process.env.CI)
    throw new Error("PostgreSQL (initdb) is not installed, and CI must run the PostgreSQL tests");
  return "PostgreSQL is not installed (no initdb in /usr/lib/postgresql/*/bin or on PATH)";
}

/**
 * A describe block with a private PostgreSQL started for it and stopped after it; `pg()` is the
 * server. Skipped, saying why, where PostgreSQL is not installed (never under CI).
 */
export function describeOnPostgres(name: string, body: (pg: () => Postgres) => void): void {
  const missing = postgresMissing();
  if (missing) console.warn(`${name} cases skipped: ${missing}`);
  let server: Postgres | undefined;
  describe.skipIf(missing !== undefined)(`${name}${missing ? ` (skipped: ${missing})` : ""}`, () => {
    beforeAll(async () => {
      server = await startPostgres();
    }, 60_000);
    afterAll(async () => {
      await server?.[Symbol.asyncDispose]();
    });
    body(() => server!);
  });
}

export interface Postgres extends AsyncDisposable {
  /** postgres://novacron@127.0.0.1:PORT/novacron (trust auth, superuser). */
  url: string;
  port: number;
  /** Temp dir holding the data dir, the log and the unix socket. */
  dir: string;
  /** A fresh, empty database on this server; its URL. */
  newDatabase(name?: string): Promise<string>;
  /** Clean shutdown (pg_ctl stop -m fast): clients are disconnected. */
  stop(): Promise<void>;
  /** Starts a stopped (or killed) server again on the same port and data dir. */
  start(): Promise<void>;
  /** stop(), wait `downMs`, start(). */
  restart(downMs?: number): Promise<void>;
  /** SIGKILL to the postmaster and its children: a crash, with recovery at the next start(). */
  kill(): Promise<void>;
  /** The server log so far (for failure messages). */
  log(): string;
}

const USER = "novacron";
let serial = 0;

/**
 * Starts a private server: initdb into a temp dir (trust auth for the role `novacron`), listening on
 * 127.0.0.1:<free port> and on a unix socket in the same dir. As root, the server runs as the
 * `postgres` user (PostgreSQL refuses to run as root). `fsync: false` (the default) is for tests that
 * do not crash the machine; benchmarks pass true.
 */
export async function startPostgres(
  opts: { fsync?: boolean; settings?: Record<string, string> } = {},
): Promise<Postgres> {
  const bin = postgresBinDir();
  if (!bin) throw new Error("PostgreSQL is not installed (no initdb found)");
  const dir = mkdtempSync(join(tmpdir(), "novacron-pg-"));
  const data = join(dir, "data");
  const logFile = join(dir, "server.log");
  const asRoot = process.getuid?.() === 0;
  // PostgreSQL refuses to run as root; the Debian package creates the `postgres` user.
  const wrap = (cmd: string[]) =>
    asRoot ? ["setpriv", "--reuid=postgres", "--regid=postgres", "--clear-groups", ...cmd] : cmd;
  if (asRoot) {
    const uid = Number(await run(["id", "-u", "postgres"]));
    const gid = Number(await run(["id", "-g", "postgres"]));
    chownSync(dir, uid, gid);
  }
  await run(
    wrap([
      join(bin, "initdb"),
      "-D",
      data,
      "-U",
      USER,
      "-A",
      "trust",
      "-E",
      "UTF8",
      "--no-locale",
      "--no-sync",
    ]),
  );
  const port = freePort();
  const settings: Record<string, string> = {
    listen_addresses: "127.0.0.1",
    port: String(port),
    unix_socket_directories: dir,
    fsync: opts.fsync ? "on" : "off",
    max_connections: "100",
    ...opts.settings,
  };
  const serverOpts = Object.entries(settings)
    .map(([k, v]) => `-c ${k}=${v}`)
    .join(" ");
  const pgCtl = (...args: string[]) => run(wrap([join(bin, "pg_ctl"), "-D", data, ...args]));
  const start = async () => {
    await pgCtl("start", "-w", "-t", "60", "-l", logFile, "-o", serverOpts);
  };
  const admin = `postgres://${USER}@127.0.0.1:${port}/postgres`;
  const stopNow = () => {
    // Synchronous: used at process exit, when a test died without disposing the server.
    if (existsSync(join(data, "postmaster.pid")))
      Bun.spawnSync(wrap([join(bin, "pg_ctl"), "-D", data, "stop", "-m", "immediate"]), {
        stdout: "ignore",
        stderr: "ignore",
      });
  };
  process.once("exit", stopNow);
  await start();
  // A test process can end without its exit handlers running (a test runner's worker is killed when the
  // run ends): a watchdog stops the server and removes its directory once this process is gone.
  const stopCmd = wrap([join(bin, "pg_ctl"), "-D", data, "stop", "-m", "immediate"])
    .map((a) => `'${a.replaceAll("'", "'\\''")}'`)
    .join(" ");
  const keep = process.env.KEEP_TEST_DIRS ? "" : `; rm -rf '${dir}'`;
  // Started by a shell that exits at once: the watchdog is nobody's child here, so neither a runner that
  // ends this process's children nor a signal to its group ends the watchdog with it.
  const watchdog = `while kill -0 ${process.pid} 2>/dev/null; do sleep 1; done; [ -f '${data}/postmaster.pid' ] && ${stopCmd} >/dev/null 2>&1${keep}`;
  Bun.spawnSync(["sh", "-c", `setsid sh -c "$0" </dev/null >/dev/null 2>&1 &`, watchdog], {
    stdin: "ignore",
    stdout: "ignore",
    stderr: "ignore",
  });
  const log = () => (existsSync(logFile) ? readFileSync(logFile, "utf8") : "");
  const server: Postgres = {
    url: `postgres://${USER}@127.0.0.1:${port}/${USER}`,
    port,
    dir,
    log,
    async newDatabase(name = `t${process.pid}_${++serial}`) {
      const sql = new SQL({ url: admin, max: 1 });
      try {
        await sql.unsafe(`CREATE DATABASE "${name}"`);
      } finally {
        await sql.close();
      }
      return `postgres://${USER}@127.0.0.1:${port}/${name}`;
    },
    async stop() {
      await pgCtl("stop", "-w", "-m", "fast");
    },
    start,
    async restart(downMs = 0) {
      await server.stop();
      if (downMs > 0) await Bun.sleep(downMs);
      await start();
    },
    async kill() {
      const pid = postmasterPid(data);
      if (pid === undefined) return;
      const children = childrenOf(pid);
      process.kill(pid, "SIGKILL");
      for (const c of children) {
        try {
          process.kill(c, "SIGKILL");
        } catch {}
      }
      // A new postmaster refuses to start while an old backend still holds the shared memory.
      await waitFor(() => [pid, ...children].every((p) => !alive(p)), {
        timeoutMs: 10_000,
        what: "postgres processes to exit",
      });
    },
    async [Symbol.asyncDispose]() {
      process.off("exit", stopNow);
      stopNow();
      if (!process.env.KEEP_TEST_DIRS) rmSync(dir, { recursive: true, force: true });
    },
  };
  // The database the url names.
  await server.newDatabase(USER);
  return server;
}

async function run(cmd: string[]): Promise<string> {
  const p = Bun.spawn(cmd, { stdout: "pipe", stderr: "pipe", stdin: "ignore" });
  const [out, err, code] = await Promise.all([
    new Response(p.stdout).text(),
    new Response(p.stderr).text(),
    p.exited,
  ]);
  if (code !== 0) throw new Error(`${cmd.join(" ")} exited with ${code}: ${err.trim() || out.trim()}`);
  return out.trim();
}

function postmasterPid(data: string): number | undefined {
  const file = join(data, "postmaster.pid");
  if (!existsSync(file)) return undefined;
  const pid = Number(readFileSync(file, "utf8").split("\n")[0]);
  return Number.isInteger(pid) && pid > 0 ? pid : undefined;
}

function childrenOf(pid: number): number[] {
  const out: number[] = [];
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      // The ppid is the 2nd field after the parenthesised command name.
      const stat = readFileSync(`/proc/${entry}/stat`, "utf8");
      const ppid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
      if (ppid === pid) out.push(Number(entry));
    } catch {}
  }
  return out;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}
