// The staged rollout's decisions across child domains, step by step (pure: no hubs needed).
import { describe, expect, test } from "bun:test";
import {
  type DomainReport,
  type DomainState,
  nextFederatedStep,
  type StagedRollout,
} from "../../hub/federation/staged-rollout.ts";
import { parseWorkloadSpec } from "../../shared/workload/index.ts";

const parsed = parseWorkloadSpec({
  name: "svc",
  driver: "exec",
  command: "/bin/true",
  replicas: 2,
  health: { type: "command", command: "/bin/true" },
});
if (!parsed.ok) throw new Error("spec");
const spec = parsed.spec;

function rollout(phases: DomainState["phase"][], maxParallel = 1): StagedRollout {
  return {
    name: "svc",
    spec,
    previous: null,
    domains: phases.map((phase, i) => ({
      hub: `h${i}`,
      route: [`h${i}`],
      phase,
      ...(phase !== "pending" ? { version: 2, started: 1000 } : {}),
    })),
    max_parallel: maxParallel,
    deadline_ms: 10_000,
    state: "rolling",
    started: 1000,
    updated: 1000,
    history: [],
  };
}

const healthy: DomainReport = {
  kind: "found",
  version: 2,
  replicas: 2,
  rollout: { state: "idle" },
  allocs: [
    { version: 2, status: "running", healthy: true },
    { version: 2, status: "running", healthy: true },
  ],
};
const starting: DomainReport = {
  kind: "found",
  version: 2,
  replicas: 2,
  rollout: { state: "rolling", to: 2 },
  allocs: [
    { version: 2, status: "running", healthy: null },
    { version: 1, status: "running", healthy: true },
  ],
};

describe("staged rollout across child domains", () => {
  test("the canary domain is changed first, alone, whatever max_parallel says", () => {
    expect(nextFederatedStep(rollout(["pending", "pending", "pending"], 3), new Map(), 1000)).toEqual({
      kind: "apply",
      hubs: ["h0"],
    });
  });

  test("nothing else moves while the canary's hub has not reported the new version healthy", () => {
    const r = rollout(["applying", "pending", "pending"], 3);
    expect(nextFederatedStep(r, new Map([["h0", starting]]), 2000)).toEqual({ kind: "wait" });
  });

  test("the canary healthy, then the others at most max_parallel at a time", () => {
    const r = rollout(["applying", "pending", "pending", "pending"], 2);
    expect(nextFederatedStep(r, new Map([["h0", healthy]]), 2000)).toEqual({ kind: "healthy", hubs: ["h0"] });
    r.domains[0]!.phase = "healthy";
    expect(nextFederatedStep(r, new Map(), 2000)).toEqual({ kind: "apply", hubs: ["h1", "h2"] });
    r.domains[1]!.phase = "applying";
    r.domains[1]!.version = 2;
    r.domains[2]!.phase = "healthy";
    expect(nextFederatedStep(r, new Map([["h1", starting]]), 2000)).toEqual({ kind: "apply", hubs: ["h3"] });
  });

  test("every domain healthy: done", () => {
    expect(nextFederatedStep(rollout(["healthy", "healthy"]), new Map(), 2000)).toEqual({ kind: "done" });
  });

  test("a failed health check in any domain reverts every domain already changed, and stops", () => {
    const r = rollout(["healthy", "applying", "healthy", "pending"], 2);
    const failing: DomainReport = {
      ...healthy,
      rollout: { state: "rolling", to: 2 },
      allocs: [{ id: "a1", node: "n1", version: 2, status: "running", healthy: false }],
    };
    const step = nextFederatedStep(r, new Map([["h1", failing]]), 2000);
    expect(step).toMatchObject({ kind: "revert", failed: "h1", revert: ["h0", "h1", "h2"], already: [] });
    expect(step.kind === "revert" && step.reason).toContain("health check");
  });

  test("a domain whose own hub already rolled back is not reverted again", () => {
    const r = rollout(["applying", "pending"]);
    const back: DomainReport = {
      ...healthy,
      version: 1,
      rollout: { state: "rolled-back", to: 2, message: "allocation x failed its health check" },
    };
    expect(nextFederatedStep(r, new Map([["h0", back]]), 2000)).toMatchObject({
      kind: "revert",
      failed: "h0",
      revert: [],
      already: ["h0"],
    });
  });

  test("a hub that cannot be asked is waited for until the deadline, then counts as failed", () => {
    const r = rollout(["applying", "pending"]);
    const away: DomainReport = { kind: "unreachable", why: "link down" };
    expect(nextFederatedStep(r, new Map([["h0", away]]), 5000)).toEqual({ kind: "wait" });
    expect(nextFederatedStep(r, new Map([["h0", away]]), 12_000)).toMatchObject({
      kind: "revert",
      failed: "h0",
    });
  });

  test("a version changed at the holding hub meanwhile fails the rollout there", () => {
    const r = rollout(["applying", "pending"]);
    const moved: DomainReport = { ...healthy, version: 3 };
    const step = nextFederatedStep(r, new Map([["h0", moved]]), 2000);
    expect(step.kind === "revert" && step.reason).toContain("version 3");
  });

  test("reverting: the domains left to revert are asked again until none is left", () => {
    const r = rollout(["reverting", "reverted", "pending"]);
    r.state = "reverting";
    expect(nextFederatedStep(r, new Map(), 2000)).toMatchObject({ kind: "revert", revert: ["h0"] });
    r.domains[0]!.phase = "reverted";
    expect(nextFederatedStep(r, new Map(), 2000)).toEqual({ kind: "reverted" });
  });
});
