// Small process and file helpers for the build: run a command, hash a file.

/** Runs a command; returns its stdout, or throws with its stderr when it fails. */
export async function run(
  cmd: string[],
  opts: { cwd?: string; env?: Record<string, string>; what?: string } = {},
): Promise<string> {
  const proc = Bun.spawn(cmd, {
    cwd: opts.cwd,
    env: { ...process.env, ...opts.env },
    stdin: "ignore",
    stdout: "pipe",
    stderr: "pipe",
  });
  const [out, err, code] = await Promise.all([
    new Response(proc.stdout).text(),
    new Response(proc.stderr).text(),
    proc.exited,
  ]);
  if (code !== 0) {
    throw new Error(
      `${opts.what ?? cmd.join(" ")} failed with exit code ${code}:\n${err.trim() || out.trim()}`,
    );
  }
  return out;
}

/** The SHA-256 of a file, hex. */
export async function sha256File(path: string): Promise<string> {
  const hasher = new Bun.CryptoHasher("sha256");
  for await (const chunk of Bun.file(path).stream()) hasher.update(chunk);
  return hasher.digest("hex");
}

/** Whether a command is on PATH. */
export function hasCommand(name: string): boolean {
  return Bun.which(name) !== null;
}
