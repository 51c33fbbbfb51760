// The CLI against a real hub with two real agents: every fleet command, tables and --json, and exit codes.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { chmodSync, mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { runCli } from "../support/cli.ts";
import { type AgentHandle, type HubHandle, startAgent, startHub, tempDir } from "../support/processes.ts";
import { waitFor } from "../support/wait.ts";

const dir = tempDir("novacron-cli-fleet-");
let hub: HubHandle;
let agents: AgentHandle[] = [];
const cli = (args: string[], stdin?: string) =>
  runCli(args, { hub: hub.url, token: hub.adminToken, ...(stdin !== undefined ? { stdin } : {}) });

interface Alloc {
  id: string;
  node: string;
  status: string;
}
interface Workload {
  name: string;
  version: number;
  allocs: Alloc[];
  resources: { mem_mb: number };
}

/** A spec file in the test's directory. */
function specFile(name: string, text: string): string {
  const path = join(dir.path, name);
  writeFileSync(path, text);
  return path;
}

const loopSpec = (name: string, extra = "") => `name: ${name}
driver: exec
command: /bin/sh
args: ["-c", "echo started-${name}; while :; do echo tick-${name}; sleep 1; done"]
restart: always
replicas: 1
resources: {cpu_millis: 50, mem_mb: 32}
${extra}`;

beforeAll(async () => {
  hub = await startHub({ data: join(dir.path, "hub") });
  agents = [
    await startAgent({
      data: join(dir.path, "a"),
      nodeId: "gw-a",
      hub: hub.wsUrl,
      joinToken: hub.joinToken,
      args: ["--level", "3", "--label", "site=s1"],
    }),
    await startAgent({
      data: join(dir.path, "b"),
      nodeId: "gw-b",
      hub: hub.wsUrl,
      joinToken: hub.joinToken,
      args: ["--level", "5", "--label", "site=s2"],
    }),
  ];
  await waitFor(
    async () => {
      const r = await hub.api<{ nodes: { id: string; connected: boolean }[] }>("/api/v1/nodes");
      return r.body.nodes.filter((n) => n.connected).length === 2;
    },
    { timeoutMs: 60_000, what: "both agents to join" },
  );
}, 120_000);

afterAll(async () => {
  for (const a of agents) await a[Symbol.asyncDispose]();
  await hub?.[Symbol.asyncDispose]();
  dir[Symbol.dispose]();
});

async function workload(name: string): Promise<Workload | undefined> {
  const r = await hub.api<Workload>(`/api/v1/workloads/${name}`);
  return r.status === 200 ? r.body : undefined;
}

async function runningAllocs(name: string, n: number): Promise<Alloc[]> {
  return waitFor(
    async () => {
      const w = await workload(name);
      const running = (w?.allocs ?? []).filter((a) => a.status === "running");
      return running.length >= n ? running : undefined;
    },
    { timeoutMs: 60_000, what: `${n} running copies of ${name}` },
  );
}

describe("cli: nodes", () => {
  test("nodes: a table with every node, its tier and status; --json parses to the hub's list", async () => {
    const table = await cli(["nodes"]);
    expect(table.code).toBe(0);
    const lines = table.stdout.trim().split("\n");
    expect(lines[0]).toMatch(/^NODE\s+LEVEL\s+STATUS\s+CONNECTED\s+LAST SEEN\s+LABELS$/);
    expect(lines.find((l) => l.startsWith("gw-a"))).toMatch(/^gw-a\s+3\s+ready\s+yes\s+.*site=s1$/);
    expect(lines.find((l) => l.startsWith("gw-b"))).toMatch(/^gw-b\s+5\s+ready\s+yes\s+.*site=s2$/);
    const json = (await cli(["nodes", "--json"])).json<{ nodes: { id: string; level: number }[] }>();
    expect(json.nodes.map((n) => [n.id, n.level]).sort()).toEqual([
      ["gw-a", 3],
      ["gw-b", 5],
    ]);
    const ready = (await cli(["nodes", "--status", "down", "--json"])).json<{ nodes: unknown[] }>();
    expect(ready.nodes).toEqual([]);
  }, 90_000);

  test("node show: the node's detail and allocations; an unknown node exits 1 and names it", async () => {
    const r = await cli(["node", "show", "gw-a"]);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^node:\s+gw-a$/m);
    expect(r.stdout).toMatch(/^status:\s+ready, connected$/m);
    expect(r.stdout).toMatch(/^labels:\s+site=s1$/m);
    const json = (await cli(["node", "show", "gw-a", "--json"])).json<{ id: string; allocs: unknown[] }>();
    expect(json.id).toBe("gw-a");
    expect(Array.isArray(json.allocs)).toBe(true);
    const missing = await cli(["node", "show", "gw-zz"]);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toContain("no node gw-zz");
  }, 90_000);

  test("node drain and undrain: the node turns draining, then ready again", async () => {
    const drain = await cli(["node", "drain", "gw-b", "--deadline", "10m"]);
    expect(drain.code).toBe(0);
    expect(drain.stdout).toContain("draining gw-b");
    const during = (await cli(["nodes", "--json"])).json<{ nodes: { id: string; status: string }[] }>();
    expect(during.nodes.find((n) => n.id === "gw-b")?.status).toBe("draining");
    const undrain = await cli(["node", "undrain", "gw-b", "--json"]);
    expect(undrain.code).toBe(0);
    expect(undrain.json()).toEqual({ node: "gw-b", draining: false });
    const after = (await cli(["nodes", "--json"])).json<{ nodes: { id: string; status: string }[] }>();
    expect(after.nodes.find((n) => n.id === "gw-b")?.status).toBe("ready");
    const bad = await cli(["node", "drain", "gw-b", "--deadline", "soon"]);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain("--deadline");
  }, 90_000);
});

describe("cli: apply and plan", () => {
  test("apply without --yes prints the plan (placement, explanation) and changes nothing: exit 5", async () => {
    const file = specFile("plan-only.yaml", loopSpec("plan-only", "placement: {levels: [3, 4]}"));
    const r = await cli(["apply", "-f", file]);
    expect(r.code).toBe(5);
    expect(r.stdout).toContain('+ workload "plan-only" (new, 1 replica)');
    expect(r.stdout).toMatch(/replica 0 -> gw-a/);
    expect(r.stdout).toMatch(/1 node: level outside 3-4 \(e\.g\. gw-b\)/);
    expect(r.stderr).toContain("not applied: pass --yes");
    expect(await workload("plan-only")).toBeUndefined();
    // --json: the same plan for a script, and still nothing changed.
    const j = await cli(["apply", "-f", file, "--json"]);
    expect(j.code).toBe(5);
    const plan = j.json<{
      applied: boolean;
      plan: { action: string; placement: { placements: { node: string }[] } };
    }>();
    expect(plan.applied).toBe(false);
    expect(plan.plan.action).toBe("create");
    expect(plan.plan.placement.placements.map((p) => p.node)).toEqual(["gw-a"]);
    expect(await workload("plan-only")).toBeUndefined();
  }, 90_000);

  test("apply --yes creates the workload, which runs on the planned agent; the same spec again changes nothing", async () => {
    const file = specFile("web.yaml", loopSpec("web", "placement: {levels: [5, 5]}"));
    const r = await cli(["apply", "-f", file, "--yes"]);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain("replica 0 -> gw-b");
    expect(r.stdout).toContain("created workload web, version 1");
    const [alloc] = await runningAllocs("web", 1);
    expect(alloc?.node).toBe("gw-b");
    const again = await cli(["apply", "-f", file, "--yes"]);
    expect(again.code).toBe(0);
    expect(again.stdout).toContain('= workload "web" is unchanged (version 1)');
    expect((await workload("web"))?.version).toBe(1);
  }, 90_000);

  test("apply of a changed spec shows the diff by field; it changes only with --yes", async () => {
    const file = specFile(
      "diff.json",
      JSON.stringify({
        name: "diffed",
        driver: "exec",
        command: "/bin/sleep",
        args: ["600"],
        resources: { mem_mb: 32 },
      }),
    );
    expect((await cli(["apply", "-f", file, "--yes"])).code).toBe(0);
    writeFileSync(
      file,
      JSON.stringify({
        name: "diffed",
        driver: "exec",
        command: "/bin/sleep",
        args: ["600"],
        resources: { mem_mb: 48 },
        priority: 7,
      }),
    );
    const plan = await cli(["apply", "-f", file]);
    expect(plan.code).toBe(5);
    expect(plan.stdout).toContain('~ workload "diffed" (version 1 -> 2');
    expect(plan.stdout).toContain("~ resources.mem_mb: 32 => 48");
    expect(plan.stdout).toContain("~ priority: 5 => 7");
    expect((await workload("diffed"))?.version).toBe(1);
    const applied = await cli(["apply", "-f", file, "--yes", "--json"]);
    expect(applied.code).toBe(0);
    const out = applied.json<{
      applied: boolean;
      plan: { changes: { path: string }[] };
      workload: Workload;
    }>();
    expect(out.applied).toBe(true);
    expect(out.plan.changes.map((c) => c.path).sort()).toEqual(["priority", "resources.mem_mb"]);
    expect(out.workload.version).toBe(2);
    expect((await workload("diffed"))?.resources.mem_mb).toBe(48);
  }, 90_000);

  test("apply on a terminal asks first: n changes nothing (exit 5), y applies", async () => {
    const file = specFile("asked.yaml", loopSpec("asked"));
    const tty = (answer: string) =>
      runCli(["-c", `printf '${answer}\\n' | script -qec "bun cli/main.ts apply -f ${file}" /dev/null`], {
        hub: hub.url,
        token: hub.adminToken,
        command: ["bash"],
        env: { PATH: `${join(process.execPath, "..")}:${process.env.PATH}` },
      });
    const no = await tty("n");
    expect(no.stdout).toContain('Create workload "asked"? [y/N]');
    expect(no.code).toBe(5);
    expect(await workload("asked")).toBeUndefined();
    const yes = await tty("y");
    expect(yes.code).toBe(0);
    expect(yes.stdout).toContain("created workload asked, version 1");
    expect(await workload("asked")).toBeDefined();
  }, 90_000);

  test("apply of an invalid spec exits 2 naming the file and the field, and sends nothing", async () => {
    const file = specFile(
      "bad.yaml",
      loopSpec("bad-one", "resources: {mem_mb: -1}").replace(/resources: \{cpu.*\n/, ""),
    );
    const r = await cli(["apply", "-f", file, "--yes"]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(`${file}: resources.mem_mb`);
    expect(await workload("bad-one")).toBeUndefined();
    const broken = specFile("broken.yaml", "name: [unclosed\n");
    expect((await cli(["apply", "-f", broken])).stderr).toContain("not valid YAML");
    const missing = await cli(["apply", "-f", join(dir.path, "nope.yaml")]);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toContain("file not found");
    const noFile = await cli(["apply"]);
    expect(noFile.code).toBe(2);
    expect(noFile.stderr).toContain("--file is required");
  }, 90_000);

  test("apply reads a spec from stdin with -f -", async () => {
    const r = await cli(["apply", "-f", "-", "--yes"], loopSpec("from-stdin", "replicas: 0"));
    expect(r.code).toBe(0);
    expect(r.stdout).toContain("created workload from-stdin");
  }, 90_000);

  test("plan: the placement dry run with candidates, score parts and what each filter removed", async () => {
    const file = specFile(
      "plan.yaml",
      loopSpec("planned", "replicas: 2\nplacement: {levels: [1, 3], spread: {by: node, max_per: 1}}"),
    );
    const r = await cli(["plan", "-f", file]);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain("Placement: 1 of 2 replicas placed (2 nodes considered, 1 feasible");
    expect(r.stdout).toMatch(
      /NODE\s+SCORE\s+RESOURCES\s+LATENCY\s+CAPABILITIES\s+LEVEL\s+AVAILABILITY\s+COST/,
    );
    expect(r.stdout).toMatch(/^\s+gw-a\s+\d+\.\d/m);
    expect(r.stdout).toContain("1 node: level outside 1-3 (e.g. gw-b)");
    expect(r.stdout).toContain("not placed:");
    const json = (await cli(["plan", "-f", file, "--json"])).json<{
      feasible: number;
      filtered: { filter: string }[];
    }>();
    expect(json.feasible).toBe(1);
    expect(json.filtered.map((f) => f.filter)).toEqual(["level"]);
    expect(await workload("planned")).toBeUndefined();
    const refused = await cli(["plan", "-f", specFile("bad-plan.yaml", "placement: {levels: [9, 1]}\n")]);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain("the hub answered 400");
  }, 90_000);
});

describe("cli: workloads and logs", () => {
  test("workloads and workload show: version, running copies, allocations; --json parses", async () => {
    const file = specFile("shown.yaml", loopSpec("shown", "nodes: [gw-a]"));
    expect((await cli(["apply", "-f", file, "--yes"])).code).toBe(0);
    await runningAllocs("shown", 1);
    const list = await cli(["workloads"]);
    expect(list.code).toBe(0);
    expect(list.stdout).toMatch(/^shown\s+exec\s+1\s+1\/1\s+/m);
    const listed = (await cli(["workloads", "--json"])).json<{ workloads: Workload[] }>();
    expect(listed.workloads.map((w) => w.name)).toContain("shown");
    const show = await cli(["workload", "show", "shown"]);
    expect(show.stdout).toMatch(/^replicas:\s+1 running of 1$/m);
    expect(show.stdout).toMatch(/^pinned to:\s+gw-a$/m);
    expect(show.stdout).toMatch(/^shown-\S+\s+shown\s+gw-a\s+running\s+1\s+/m);
    expect((await cli(["workload", "show", "shown", "--json"])).json<Workload>().allocs).toHaveLength(1);
    const missing = await cli(["workload", "show", "ghost"]);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toContain("no workload ghost");
  }, 90_000);

  test("logs: the output of every running copy, of one allocation with --alloc, and as JSON", async () => {
    const file = specFile("talk.yaml", loopSpec("talk", "replicas: 2\nnodes: [gw-a, gw-b]"));
    expect((await cli(["apply", "-f", file, "--yes"])).code).toBe(0);
    const allocs = await runningAllocs("talk", 2);
    const all = await waitFor(
      async () => {
        const r = await cli(["logs", "talk", "--lines", "5"]);
        return r.code === 0 && (r.stdout.match(/tick-talk/g) ?? []).length >= 2 ? r : undefined;
      },
      { timeoutMs: 30_000, what: "output of both copies" },
    );
    for (const a of allocs) expect(all.stdout).toContain(`==> ${a.id} on ${a.node} <==`);
    const one = await cli(["logs", "talk", "--alloc", allocs[0]!.id, "--json"]);
    const body = one.json<{ logs: { alloc: string; logs: string }[] }>();
    expect(body.logs).toHaveLength(1);
    expect(body.logs[0]?.alloc).toBe(allocs[0]!.id);
    expect(body.logs[0]?.logs).toContain("tick-talk");
    const wrong = await cli(["logs", "talk", "--alloc", "talk-v9-nothere"]);
    expect(wrong.code).toBe(1);
    expect(wrong.stderr).toContain("no allocation talk-v9-nothere");
  }, 90_000);
});

describe("cli: workload delete, promote, rollback", () => {
  test("workload delete asks first: without --yes exit 5 and the workload stays; --yes deletes it", async () => {
    const file = specFile("doomed.yaml", loopSpec("doomed", "nodes: [gw-a]"));
    expect((await cli(["apply", "-f", file, "--yes"])).code).toBe(0);
    await runningAllocs("doomed", 1);
    const asked = await cli(["workload", "delete", "doomed"]);
    expect(asked.code).toBe(5);
    expect(asked.stdout).toContain('- workload "doomed" (version 1; 1 running copy stop)');
    expect(await workload("doomed")).toBeDefined();
    const gone = await cli(["workload", "delete", "doomed", "--yes"]);
    expect(gone.code).toBe(0);
    expect(gone.stdout).toContain("deleted workload doomed");
    expect(await workload("doomed")).toBeUndefined();
  }, 90_000);

  test("workload rollback returns to the previous spec; promote with nothing waiting exits 1 with the hub's reason", async () => {
    const file = specFile("undo.yaml", loopSpec("undo", "replicas: 0"));
    expect((await cli(["apply", "-f", file, "--yes"])).code).toBe(0);
    writeFileSync(file, loopSpec("undo", "replicas: 0\npriority: 9"));
    expect((await cli(["apply", "-f", file, "--yes"])).code).toBe(0);
    const v2 = await waitFor(async () => {
      const w = (await cli(["workload", "show", "undo", "--json"])).json<Workload & { priority: number }>();
      return w.version === 2 ? w : undefined;
    });
    expect(v2.priority).toBe(9);
    const back = await cli(["workload", "rollback", "undo", "--json"]);
    expect(back.code).toBe(0);
    await waitFor(
      async () => {
        const w = (await cli(["workload", "show", "undo", "--json"])).json<{ priority: number }>();
        return w.priority === 5;
      },
      { timeoutMs: 30_000, what: "the rollback to the first spec" },
    );
    const promote = await cli(["workload", "promote", "undo"]);
    expect(promote.code).toBe(1);
    expect(promote.stderr).toContain("the hub answered 400");
  }, 90_000);
});

describe("cli: completion", () => {
  test("bash completes node ids and workload names as the hub knows them", async () => {
    // `novacron` on the PATH, as an installed binary would be.
    const bin = join(dir.path, "bin");
    mkdirSync(bin, { recursive: true });
    writeFileSync(
      join(bin, "novacron"),
      `#!/bin/sh\nexec ${process.execPath} ${join(import.meta.dir, "../../cli/main.ts")} "$@"\n`,
    );
    chmodSync(join(bin, "novacron"), 0o755);
    const script = join(dir.path, "completion.bash");
    writeFileSync(script, (await cli(["completion", "bash"])).stdout);
    const complete = async (...words: string[]) => {
      const quoted = words.map((w) => `'${w}'`).join(" ");
      const r = await runCli(
        [
          "-c",
          `source ${script}; COMP_WORDS=(${quoted}); COMP_CWORD=${words.length - 1}; _novacron; printf '%s\\n' "\${COMPREPLY[@]}"`,
        ],
        {
          hub: hub.url,
          token: hub.adminToken,
          command: ["bash"],
          env: { PATH: `${bin}:${process.env.PATH}` },
        },
      );
      expect(r.code).toBe(0);
      return r.stdout.trim().split("\n").filter(Boolean).sort();
    };
    expect(await complete("novacron", "node", "drain", "")).toEqual(["gw-a", "gw-b"]);
    expect(await complete("novacron", "node", "show", "gw-b")).toEqual(["gw-b"]);
    expect(await complete("novacron", "workload", "show", "we")).toEqual(["web"]);
    expect(await complete("novacron", "logs", "tal")).toEqual(["talk"]);
    // Only the first argument: after it, nothing more is offered.
    expect(await complete("novacron", "node", "show", "gw-a", "")).toEqual([]);
  }, 90_000);
});

describe("cli: alerts and top", () => {
  test("alerts: a table for people and a list for scripts (the hub's alerts route)", async () => {
    const r = await cli(["alerts", "--json"]);
    expect(r.code).toBe(0);
    expect(Array.isArray(r.json<{ alerts: unknown[] }>().alerts)).toBe(true);
    const bad = await cli(["alerts", "--state", "sleepy"]);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain("--state must be one of open, acknowledged, resolved, all");
  }, 90_000);

  test("top --once: one frame with every node, its status and its newest CPU and memory", async () => {
    // The newest values come from the hub's /metrics once the agents' first batches are in.
    const r = await waitFor(
      async () => {
        const r = await cli(["top", "--once"]);
        return /^gw-a\s+3\s+ready\s+yes\s+\d+\s+\d+/m.test(r.stdout) ? r : undefined;
      },
      { timeoutMs: 60_000, what: "a frame with gw-a's CPU and memory" },
    );
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^nodes 2: 2 ready, 0 suspect, 0 down, 0 draining/m);
    expect(r.stdout).toMatch(
      /^NODE\s+LEVEL\s+STATUS\s+CONN\s+CPU%\s+MEM%\s+DISK%\s+LOAD1\s+ALLOCS\s+LAST SEEN$/m,
    );
    expect(r.stdout).toMatch(/^gw-b\s+5\s+ready\s+yes/m);
    const json = (await cli(["top", "--once", "--json"])).json<{
      nodes: unknown[];
      values: Record<string, Record<string, number>>;
    }>();
    expect(json.nodes).toHaveLength(2);
    expect(typeof json.values["gw-a"]?.cpu_util).toBe("number");
  }, 90_000);

  test("top: refreshes until q is typed, then exits 0", async () => {
    const proc = Bun.spawn([process.execPath, "cli/main.ts", "top", "--interval", "200ms"], {
      cwd: join(import.meta.dir, "../.."),
      env: { ...process.env, HOME: dir.path, NOVACRON_HUB: hub.url, NOVACRON_TOKEN: hub.adminToken },
      stdin: "pipe",
      stdout: "pipe",
      stderr: "pipe",
    });
    let out = "";
    const reader = (async () => {
      for await (const chunk of proc.stdout) out += new TextDecoder().decode(chunk);
    })();
    await waitFor(() => (out.match(/^novacron top /gm) ?? []).length >= 3, {
      timeoutMs: 30_000,
      what: "three frames",
    });
    expect(proc.exitCode).toBeNull();
    proc.stdin.write("q");
    proc.stdin.flush();
    expect(await proc.exited).toBe(0);
    await reader;
    expect(out).toContain("(q to quit)");
  }, 90_000);

  test("top on a terminal: redraws in the alternate screen, q quits and restores the screen", async () => {
    const r = await runCli(["-c", `(sleep 3; printf q) | script -qec "bun cli/main.ts top" /dev/null`], {
      hub: hub.url,
      token: hub.adminToken,
      command: ["bash"],
      env: { PATH: `${join(process.execPath, "..")}:${process.env.PATH}` },
    });
    expect(r.code).toBe(0);
    expect(r.stdout.startsWith("\x1b[?1049h")).toBe(true);
    expect(r.stdout.split("\x1b[H\x1b[2Jnovacron top ").length - 1).toBeGreaterThanOrEqual(2);
    expect(r.stdout).toMatch(/gw-a\s+3\s+ready/);
    expect(r.stdout.trimEnd().endsWith("\x1b[?25h\x1b[?1049l")).toBe(true);
  }, 90_000);
});
