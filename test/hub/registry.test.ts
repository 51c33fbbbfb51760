// Specification of the node registry: join token and per-node credentials, and ready/suspect/down status.
import { describe, expect, test } from "bun:test";
import { type AdmitResult, Registry, type StatusPolicy } from "../../hub/registry/index.ts";
import { openHubDb } from "../../hub/store/db.ts";
import type { HelloBody } from "../../shared/protocol/index.ts";
import { tempDir } from "../support/processes.ts";

const JOIN = "join-token-of-this-hub";
const T0 = 1_718_000_000_000;
const POLICY: StatusPolicy = { suspectAfterMs: 15_000, downAfterMs: 60_000, restartGraceMs: 30_000 };

function hello(extra: Partial<HelloBody> = {}): HelloBody {
  return {
    node_id: "edge-1",
    level: 2,
    labels: { site: "lab", region: "eu" },
    capabilities: ["exec", "gpu"],
    resources: { cpu_cores: 4 },
    version: "0.1.0",
    boot_id: "boot-1",
    last_acked: 0,
    ...extra,
  };
}

/** A registry over a real hub database whose clock the test sets through `at()`. */
function openRegistry(dir: string, policy = POLICY, start = T0) {
  const db = openHubDb(dir);
  let now = start;
  const registry = new Registry(db, policy, () => now);
  return {
    db,
    registry,
    at(ms: number) {
      now = ms;
    },
    [Symbol.dispose]: () => db.close(),
  };
}

function credentialOf(r: AdmitResult): string {
  if (!r.ok || r.credential === undefined)
    throw new Error(`expected a new credential, got ${JSON.stringify(r)}`);
  return r.credential;
}

describe("registry: admission", () => {
  test("the join token admits a new node and issues a credential that is stored only hashed", () => {
    using dir = tempDir();
    using h = openRegistry(dir.path);
    const result = h.registry.admit(hello({ join_token: JOIN }), JOIN, "ws");
    const credential = credentialOf(result);
    expect(credential.length).toBeGreaterThanOrEqual(24);
    const row = h.db.query("SELECT cred_hash FROM nodes WHERE id = 'edge-1'").get() as { cred_hash: string };
    expect(row.cred_hash).toBeString();
    expect(row.cred_hash).not.toBe(credential);
    expect(row.cred_hash).not.toContain(credential);
    const everything = JSON.stringify(h.db.query("SELECT * FROM nodes").all());
    expect(everything).not.toContain(credential);
    expect(h.registry.get("edge-1")).toMatchObject({
      id: "edge-1",
      level: 2,
      labels: { site: "lab", region: "eu" },
      capabilities: ["exec", "gpu"],
      transport: "ws",
      first_seen: T0,
      last_seen: T0,
    });
  });

  test("the credential admits the node later without the token, and no new credential is issued", () => {
    using dir = tempDir();
    using h = openRegistry(dir.path);
    const credential = credentialOf(h.registry.admit(hello({ join_token: JOIN }), JOIN, "ws"));
    h.at(T0 + 1000);
    const again = h.registry.admit(hello({ credential, boot_id: "boot-2" }), JOIN, "mqtt");
    expect(again.ok).toBe(true);
    expect(again.ok && again.credential).toBeUndefined();
    expect(h.registry.get("edge-1")).toMatchObject({
      boot_id: "boot-2",
      transport: "mqtt",
      last_seen: T0 + 1000,
    });
  });

  test("a wrong join token is refused with a reason and records nothing", () => {
    using dir = tempDir();
    using h = openRegistry(dir.path);
    expect(h.registry.admit(hello({ join_token: "guess" }), JOIN, "ws")).toEqual({
      ok: false,
      reason: "join token is not valid",
    });
    expect(h.registry.get("edge-1")).toBeUndefined();
  });

  test("a wrong credential is refused with a reason naming the node", () => {
    using dir = tempDir();
    using h = openRegistry(dir.path);
    credentialOf(h.registry.admit(hello({ join_token: JOIN }), JOIN, "ws"));
    const r = h.registry.admit(hello({ credential: "not-the-credential" }), JOIN, "ws");
    expect(r.ok).toBe(false);
    expect(!r.ok && r.reason).toBe("credential for node edge-1 is not valid");
  });

  test("a hello with neither token nor credential is refused", () => {
    using dir = tempDir();
    using h = openRegistry(dir.path);
    expect(h.registry.admit(hello(), JOIN, "ws")).toEqual({
      ok: false,
      reason: "no join token or credential given",
    });
  });

  test("a hub without a join token admits nobody by token, not even an empty one", () => {
    using dir = tempDir();
    using h = openRegistry(dir.path);
    expect(h.registry.admit(hello({ join_token: "" }), "", "ws").ok).toBe(false);
    expect(h.registry.admit(hello({ join_token: "anything" }), "", "ws").ok).toBe(false);
  });

  test("re-joining with the token rotates the credential: the old one stops working", () => {
    using dir = tempDir();
    using h = openRegistry(dir.path);
    const first = credentialOf(h.registry.admit(hello({ join_token: JOIN }), JOIN, "ws"));
    const second = credentialOf(h.registry.admit(hello({ join_token: JOIN }), JOIN, "ws"));
    expect(second).not.toBe(first);
    expect(h.registry.admit(hello({ credential: first }), JOIN, "ws").ok).toBe(false);
    expect(h.registry.admit(hello({ credential: second }), JOIN, "ws").ok).toBe(true);
  });
});

describe("registry: status", () => {
  test("ready while connected and heard from, suspect after suspectAfter of silence, ready again when heard", () => {
    using dir = tempDir();
    using h = openRegistry(dir.path);
    h.registry.admit(hello({ join_token: JOIN }), JOIN, "ws");
    h.registry.setConnected("edge-1", "ws");
    const status = () => h.registry.status(h.registry.get("edge-1")!);
    expect(status()).toBe("ready");
    h.at(T0 + POLICY.suspectAfterMs - 1);
    expect(status()).toBe("ready");
    h.at(T0 + POLICY.suspectAfterMs);
    expect(status()).toBe("suspect");
    h.registry.seen("edge-1");
    expect(status()).toBe("ready");
  });

  test("a disconnected node is suspect at once and down after downAfter of silence", () => {
    using dir = tempDir();
    using h = openRegistry(dir.path);
    h.registry.admit(hello({ join_token: JOIN }), JOIN, "ws");
    h.registry.setConnected("edge-1", "ws");
    h.at(T0 + 40_000);
    h.registry.seen("edge-1");
    h.registry.setDisconnected("edge-1");
    const status = () => h.registry.status(h.registry.get("edge-1")!);
    expect(h.registry.isConnected("edge-1")).toBe(false);
    expect(status()).toBe("suspect");
    h.at(T0 + 40_000 + POLICY.downAfterMs);
    expect(status()).toBe("suspect");
    h.at(T0 + 40_000 + POLICY.downAfterMs + 1);
    expect(status()).toBe("down");
    // The last time it was heard from was written to the database on disconnect.
    const row = h.db.query("SELECT last_seen FROM nodes WHERE id = 'edge-1'").get() as { last_seen: number };
    expect(row.last_seen).toBe(T0 + 40_000);
  });

  test("a node still connected but silent (half-open socket) goes suspect, then down", () => {
    using dir = tempDir();
    using h = openRegistry(dir.path);
    h.registry.admit(hello({ join_token: JOIN }), JOIN, "ws");
    h.registry.setConnected("edge-1", "ws");
    const status = () => h.registry.status(h.registry.get("edge-1")!);
    h.at(T0 + POLICY.suspectAfterMs);
    expect(status()).toBe("suspect");
    h.at(T0 + POLICY.downAfterMs + 1);
    expect(status()).toBe("down");
  });

  test("after a hub restart no node is down before the restart grace period has passed", () => {
    using dir = tempDir();
    const policy: StatusPolicy = { suspectAfterMs: 15_000, downAfterMs: 60_000, restartGraceMs: 120_000 };
    {
      using h = openRegistry(dir.path, policy);
      h.registry.admit(hello({ join_token: JOIN }), JOIN, "ws");
      h.registry.admit(hello({ node_id: "edge-2", join_token: JOIN }), JOIN, "ws");
    }
    // The hub comes back an hour later: everyone has been silent far longer than downAfter.
    const restart = T0 + 3_600_000;
    using h = openRegistry(dir.path, policy, restart);
    const status = (id: string) => h.registry.status(h.registry.get(id)!);
    expect(status("edge-1")).toBe("suspect");
    h.at(restart + policy.downAfterMs + 1);
    expect(status("edge-1")).toBe("suspect");
    // edge-2 reconnects within the grace period.
    h.registry.admit(hello({ node_id: "edge-2", join_token: JOIN }), JOIN, "ws");
    h.registry.setConnected("edge-2", "ws");
    h.at(restart + policy.restartGraceMs);
    expect(status("edge-1")).toBe("suspect");
    h.at(restart + policy.restartGraceMs + 1);
    expect(status("edge-1")).toBe("down");
    h.registry.seen("edge-2");
    expect(status("edge-2")).toBe("ready");
  });
});
