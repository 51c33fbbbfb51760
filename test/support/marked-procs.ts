// Processes a test's workloads start, found by a mark in their command line.

/** Arguments for `/bin/sh` that loop forever, printing `mark` (so `pids(mark)` finds the copy). */
export const loop = (mark: string): string[] => ["-c", `while true; do echo ${mark}; sleep 1; done`];

/** Pids of processes whose command line contains `mark`. */
export async function pids(mark: string): Promise<number[]> {
  const out = await new Response(Bun.spawn(["pgrep", "-f", mark], { stdout: "pipe" }).stdout).text();
  return out
    .split("\n")
    .filter(Boolean)
    .map(Number)
    .filter((p) => p !== process.pid);
}

/** Pids of processes whose command line contains any of `marks`, read in one snapshot (one pgrep). */
export async function pidsOfAny(marks: readonly string[]): Promise<number[]> {
  return pids(marks.join("|"));
}

/**
 * Creates workload `name` through `hub`'s API: one placed copy of `/bin/sh` looping with `mark` (found
 * by `pids(mark)`). Returns the API's status.
 */
export async function createLoop(
  hub: { api(path: string, init?: RequestInit): Promise<{ status: number }> },
  mark: string,
  name = "svc",
): Promise<number> {
  const r = await hub.api("/api/v1/workloads", {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ name, driver: "exec", command: "/bin/sh", args: loop(mark), replicas: 1 }),
  });
  return r.status;
}
