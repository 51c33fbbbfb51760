// What the build produces: the programs (agent, hub, the operator CLI) and the platforms each is compiled for.

/** A program that ships as its own binary, archive, package and image. */
export interface Component {
  name: "agent" | "hub" | "cli";
  /** The binary's and the package's name. */
  program: "novacron-agent" | "novacron-hub" | "novacron";
  /** Only the binary: no archive, no .deb (the CLI runs on an operator's machine, not as a service). */
  binaryOnly?: boolean;
  entry: string;
  /** Example config, installed as /etc/novacron/<configName>. */
  configName: string;
  summary: string;
  description: string;
}

export const COMPONENTS: readonly Component[] = [
  {
    name: "agent",
    program: "novacron-agent",
    entry: "agent/main.ts",
    configName: "agent.yaml",
    summary: "NovaCron Edge agent: host telemetry with an offline buffer",
    description:
      "The edge agent of NovaCron Edge. It samples the host every second from\n" +
      "/proc and /sys, keeps every sample in a local SQLite store while no hub is\n" +
      "reachable, and syncs with a NovaCron hub over WebSocket or MQTT. A local\n" +
      "HTTP API serves /healthz, /metrics and /v1/status.",
  },
  {
    name: "hub",
    program: "novacron-hub",
    entry: "hub/main.ts",
    configName: "hub.yaml",
    summary: "NovaCron Edge hub: control plane for NovaCron agents",
    description:
      "The hub of NovaCron Edge. It authenticates agents, keeps the node registry\n" +
      "and their health, stores their telemetry in SQLite and serves it over an\n" +
      "authenticated JSON API, and re-exports every node's latest values on\n" +
      "/metrics for Prometheus.",
  },
  {
    name: "cli",
    program: "novacron",
    entry: "cli/main.ts",
    configName: "cli.yaml",
    binaryOnly: true,
    summary: "NovaCron Edge CLI: operate a hub and its fleet",
    description:
      "The operator's command line of NovaCron Edge: nodes, workloads (apply with a\n" +
      "plan first), placement dry runs, logs, alerts, tokens, the audit log and a live\n" +
      "fleet view, with tables for people and --json for scripts.",
  },
];

/** A platform a binary is compiled for. */
export interface Target {
  /** Our name for it, used in file names: `novacron-agent-linux-<arch>`. */
  name: "linux-x64" | "linux-arm64" | "linux-x64-musl";
  arch: string;
  /** Debian's architecture name; undefined where no .deb is built (musl). */
  debArch: "amd64" | "arm64" | undefined;
  /** What `uname -m` prints on a machine that runs it (checked by install.sh). */
  unameMachine: string;
  libc: "glibc" | "musl";
  /**
   * The npm package holding the Bun runtime that is embedded, per component. The x64 agent
   * uses Bun's "baseline" package (no AVX2) because edge gateways often have Atom or Celeron
   * CPUs without AVX2. In Bun 1.4.4 both x64 packages hold the same executable; naming the
   * baseline one keeps the agent off AVX2 if a later release splits them again
   * (test/packaging/qemu.test.ts runs it on a Nehalem CPU model).
   */
  runtime: Record<Component["name"], string>;
}

export const TARGETS: readonly Target[] = [
  {
    name: "linux-x64",
    arch: "x64",
    debArch: "amd64",
    unameMachine: "x86_64",
    libc: "glibc",
    runtime: {
      agent: "@oven/bun-linux-x64-baseline",
      hub: "@oven/bun-linux-x64",
      cli: "@oven/bun-linux-x64",
    },
  },
  {
    name: "linux-arm64",
    arch: "arm64",
    debArch: "arm64",
    unameMachine: "aarch64",
    libc: "glibc",
    runtime: {
      agent: "@oven/bun-linux-aarch64",
      hub: "@oven/bun-linux-aarch64",
      cli: "@oven/bun-linux-aarch64",
    },
  },
  {
    name: "linux-x64-musl",
    arch: "x64",
    debArch: undefined,
    unameMachine: "x86_64",
    libc: "musl",
    runtime: {
      agent: "@oven/bun-linux-x64-musl-baseline",
      hub: "@oven/bun-linux-x64-musl",
      cli: "@oven/bun-linux-x64-musl",
    },
  },
];

/** The file name of a compiled binary in dist/. */
export function binaryName(component: Component, target: Target): string {
  return `${component.program}-${target.name}`;
}

/** Looks up targets by name; throws on an unknown one. */
export function selectTargets(names: readonly string[] | undefined): Target[] {
  if (!names || names.length === 0) return [...TARGETS];
  return names.map((n) => {
    const t = TARGETS.find((x) => x.name === n);
    if (!t) throw new Error(`unknown target "${n}" (known: ${TARGETS.map((x) => x.name).join(", ")})`);
    return t;
  });
}

/** Looks up components by name; throws on an unknown one. */
export function selectComponents(names: readonly string[] | undefined): Component[] {
  if (!names || names.length === 0) return [...COMPONENTS];
  return names.map((n) => {
    const c = COMPONENTS.find((x) => x.name === n);
    if (!c) throw new Error(`unknown component "${n}" (known: agent, hub, cli)`);
    return c;
  });
}
