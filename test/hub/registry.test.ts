// Specification of the node registry: node keys, scoped join tokens, rotation, and ready/suspect/down status.
import { describe, expect, test } from "bun:test";
import { type PeerAuth, Registry, type StatusPolicy } from "../../hub/registry/index.ts";
import type { HelloBody } from "../../shared/protocol/index.ts";
import {
  encodeKey,
  generateKeyPair,
  joinTokenKey,
  legacyProof,
  nodeTokenProof,
  parseJoinToken,
} from "../../shared/secure/index.ts";
import { openTestStore } from "../support/hub-store.ts";
import { tempDir } from "../support/processes.ts";

const JOIN = "join-token-of-this-hub";
const T0 = 1_718_000_000_000;
const POLICY: StatusPolicy = {
  suspectAfterMs: 15_000,
  downAfterMs: 60_000,
  restartGraceMs: 30_000,
  keyLifetimeMs: 30 * 86_400_000,
};

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
async function openRegistry(dir: string, policy = POLICY, start = T0) {
  const store = await openTestStore(dir);
  let now = start;
  const registry = new Registry(store.sql, policy, () => now);
  await registry.joinTokens.ensureDefault(JOIN, start);
  await registry.load();
  return {
    sql: store.sql,
    registry,
    at(ms: number) {
      now = ms;
    },
    [Symbol.dispose]: () => void store.close(),
  };
}

const HASH = new Uint8Array(32).fill(3);

/** What a session proved: a key, and a handshake hash that proofs are bound to. */
function session(key = generateKeyPair(), hash = HASH): PeerAuth {
  return { key: key.publicKey, hash };
}

/** A hello proving `token` over `auth`'s handshake hash. */
function joining(token: string, auth: PeerAuth, extra: Partial<HelloBody> = {}): HelloBody {
  const t = parseJoinToken(token);
  return hello({ join: { id: t.id, proof: nodeTokenProof(joinTokenKey(t.secret), auth.hash) }, ...extra });
}

describe("registry: admission", () => {
  test("the join token admits a new node id and binds the key its session proved; only the key's public half is stored", async () => {
    using dir = tempDir();
    using h = await openRegistry(dir.path);
    const key = generateKeyPair();
    const auth = session(key);
    const result = await h.registry.admit(joining(JOIN, auth), auth, "ws");
    expect(result.ok && result.joined).toBe(true);
    expect(h.registry.keyInfo("edge-1")?.public_key).toBe(encodeKey(key.publicKey));
    const everything = JSON.stringify(await h.sql.all("SELECT * FROM nodes"));
    expect(everything).not.toContain(encodeKey(key.secret));
    expect(JSON.stringify(await h.sql.all("SELECT * FROM join_tokens"))).not.toContain(JOIN);
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

  test("the node's key admits it later with no token at all", async () => {
    using dir = tempDir();
    using h = await openRegistry(dir.path);
    const key = generateKeyPair();
    const first = session(key);
    await h.registry.admit(joining(JOIN, first), first, "ws");
    h.at(T0 + 1000);
    const again = await h.registry.admit(
      hello({ boot_id: "boot-2" }),
      session(key, new Uint8Array(32).fill(9)),
      "mqtt",
    );
    expect(again.ok && again.joined).toBe(false);
    expect(again.ok).toBe(true);
    expect(h.registry.get("edge-1")).toMatchObject({
      boot_id: "boot-2",
      transport: "mqtt",
      last_seen: T0 + 1000,
    });
  });

  test("the join token never admits an existing node id with another key: it cannot take a node over", async () => {
    using dir = tempDir();
    using h = await openRegistry(dir.path);
    const real = session();
    await h.registry.admit(joining(JOIN, real, { labels: { site: "lab" } }), real, "ws");
    const thief = session();
    const r = await h.registry.admit(
      joining(JOIN, thief, { level: 1, labels: { site: "elsewhere" } }),
      thief,
      "ws",
    );
    expect(r.ok).toBe(false);
    expect(!r.ok && r.reason).toMatch(/registered with another key/);
    expect(h.registry.get("edge-1")).toMatchObject({ level: 2, labels: { site: "lab" } });
    expect(h.registry.keyInfo("edge-1")?.public_key).toBe(encodeKey(real.key));
  });

  test("a proof made for another session, or with a wrong token, is refused and records nothing", async () => {
    using dir = tempDir();
    using h = await openRegistry(dir.path);
    const auth = session();
    const replayed = joining(JOIN, session(generateKeyPair(), new Uint8Array(32).fill(1)));
    expect(await h.registry.admit(replayed, auth, "ws")).toEqual({
      ok: false,
      reason: "join token is not valid",
    });
    expect(await h.registry.admit(joining("guess", auth), auth, "ws")).toEqual({
      ok: false,
      reason: "join token is not valid",
    });
    expect(await h.registry.admit(hello(), auth, "ws")).toEqual({
      ok: false,
      reason: "no join token proof given",
    });
    expect(h.registry.get("edge-1")).toBeUndefined();
  });

  test("minted tokens keep their scope: expiry, uses, levels, labels; revoked ones stop at once", async () => {
    using dir = tempDir();
    using h = await openRegistry(dir.path);
    const tokens = h.registry.joinTokens;
    const scoped = await tokens.mint({ max_uses: 1, levels: [3, 4], labels: { region: "eu" } }, T0);
    const try_ = (id: string, token: string, extra: Partial<HelloBody> = {}) => {
      const auth = session();
      return h.registry.admit(joining(token, auth, { node_id: id, ...extra }), auth, "ws");
    };
    expect(await try_("a", scoped.token, { level: 2 })).toMatchObject({
      ok: false,
      reason: expect.stringMatching(/levels 3-4/),
    });
    expect(await try_("a", scoped.token, { level: 3, labels: {} })).toMatchObject({
      ok: false,
      reason: expect.stringMatching(/region=eu/),
    });
    expect((await try_("a", scoped.token, { level: 3 })).ok).toBe(true);
    expect(await try_("b", scoped.token, { level: 3 })).toMatchObject({
      ok: false,
      reason: expect.stringMatching(/admitted its 1/),
    });
    const expiring = await tokens.mint({ expires: T0 + 1000 }, T0);
    h.at(T0 + 2000);
    expect(await try_("c", expiring.token)).toMatchObject({
      ok: false,
      reason: expect.stringMatching(/expired/),
    });
    const revoked = await tokens.mint({}, T0);
    expect(await tokens.revoke(revoked.token.split(".")[0]!, T0)).toBe(true);
    expect(await try_("d", revoked.token)).toMatchObject({
      ok: false,
      reason: expect.stringMatching(/revoked/),
    });
    // Tokens minted in the same millisecond are listed by id.
    const state = Object.fromEntries((await tokens.list(T0 + 2000)).map((t) => [t.id, t.state]));
    const idOf = (t: { token: string }) => t.token.split(".")[0]!;
    expect(state).toEqual({
      default: "active",
      [idOf(scoped)]: "used_up",
      [idOf(expiring)]: "expired",
      [idOf(revoked)]: "revoked",
    });
  });

  test("a rotated key takes over; the old one is taken only until the node first proves the new one", async () => {
    using dir = tempDir();
    using h = await openRegistry(dir.path);
    const old = generateKeyPair();
    const next = generateKeyPair();
    await h.registry.admit(joining(JOIN, session(old)), session(old), "ws");
    expect(await h.registry.rekey("edge-1", old.publicKey, next.publicKey)).toMatchObject({ ok: true });
    // The node never heard the answer: its old key still works, and it is asked to rotate again.
    expect(await h.registry.admit(hello(), session(old), "ws")).toMatchObject({ ok: true, rotate: true });
    expect(await h.registry.rekey("edge-1", old.publicKey, next.publicKey)).toMatchObject({ ok: true });
    expect(await h.registry.admit(hello(), session(next), "ws")).toMatchObject({ ok: true, rotate: false });
    expect((await h.registry.admit(hello(), session(old), "ws")).ok).toBe(false);
    // A session of another key cannot rotate this node's.
    expect(
      (await h.registry.rekey("edge-1", generateKeyPair().publicKey, generateKeyPair().publicKey)).ok,
    ).toBe(false);
  });

  test("a key past two thirds of its lifetime is asked to rotate, and an expired one still renews", async () => {
    using dir = tempDir();
    using h = await openRegistry(dir.path);
    const key = generateKeyPair();
    await h.registry.admit(joining(JOIN, session(key)), session(key), "ws");
    expect(h.registry.rotationDue("edge-1")).toBe(false);
    h.at(T0 + (POLICY.keyLifetimeMs * 2) / 3 + 1);
    expect(h.registry.rotationDue("edge-1")).toBe(true);
    h.at(T0 + POLICY.keyLifetimeMs * 10);
    const late = await h.registry.admit(hello(), session(key), "ws");
    expect(late).toMatchObject({ ok: true, rotate: true });
    expect((await h.registry.rekey("edge-1", key.publicKey, generateKeyPair().publicKey)).ok).toBe(true);
    expect(h.registry.rotationDue("edge-1")).toBe(false);
  });

  test("an operator reset lets a join token claim the id again, once, within its window", async () => {
    using dir = tempDir();
    using h = await openRegistry(dir.path);
    await h.registry.admit(joining(JOIN, session()), session(), "ws");
    const h2 = session();
    expect((await h.registry.admit(joining(JOIN, h2), h2, "ws")).ok).toBe(false);
    expect(await h.registry.resetKey("edge-1", 60_000)).toBe(true);
    expect((await h.registry.admit(hello(), session(), "ws")).ok).toBe(false);
    expect((await h.registry.admit(joining(JOIN, h2), h2, "ws")).ok).toBe(true);
    const h3 = session();
    expect((await h.registry.admit(joining(JOIN, h3), h3, "ws")).ok).toBe(false);
  });

  test("a stolen previous key cannot rotate the node's key back to the thief's", async () => {
    using dir = tempDir();
    using h = await openRegistry(dir.path);
    const k0 = generateKeyPair();
    const k1 = generateKeyPair();
    await h.registry.admit(joining(JOIN, session(k0)), session(k0), "ws");
    expect((await h.registry.rekey("edge-1", k0.publicKey, k1.publicKey)).ok).toBe(true);
    // The thief holds k0: while the node has not proved k1 yet, k0 still opens a session, but cannot rotate.
    const theirs = generateKeyPair();
    expect(await h.registry.rekey("edge-1", k0.publicKey, theirs.publicKey)).toMatchObject({ ok: false });
    expect(h.registry.keyInfo("edge-1")?.public_key).toBe(encodeKey(k1.publicKey));
    expect((await h.registry.admit(hello(), session(k1), "ws")).ok).toBe(true);
    expect((await h.registry.admit(hello(), session(k0), "ws")).ok).toBe(false);
  });

  test("an operator reset revokes the key: rejoining with the same key is refused, a new key joins", async () => {
    using dir = tempDir();
    using h = await openRegistry(dir.path);
    const stolen = generateKeyPair();
    await h.registry.admit(joining(JOIN, session(stolen)), session(stolen), "ws");
    await h.registry.resetKey("edge-1", 60_000);
    const again = session(stolen);
    expect(await h.registry.admit(joining(JOIN, again), again, "ws")).toMatchObject({
      ok: false,
      code: "key_revoked",
    });
    const fresh = session();
    expect((await h.registry.admit(joining(JOIN, fresh), fresh, "ws")).ok).toBe(true);
  });

  test("a scoped token's levels and labels hold for every later hello, not just the first", async () => {
    using dir = tempDir();
    using h = await openRegistry(dir.path);
    const scoped = await h.registry.joinTokens.mint({ levels: [4, 5], labels: { site: "plant-7" } }, T0);
    const key = generateKeyPair();
    const first = session(key);
    const joined = await h.registry.admit(
      joining(scoped.token, first, { level: 4, labels: { site: "plant-7" } }),
      first,
      "ws",
    );
    expect(joined.ok).toBe(true);
    const later = session(key, new Uint8Array(32).fill(5));
    expect(
      await h.registry.admit(hello({ level: 1, labels: { site: "plant-7" } }), later, "ws"),
    ).toMatchObject({
      ok: false,
      reason: expect.stringMatching(/levels 4-5/),
    });
    expect(await h.registry.admit(hello({ level: 4, labels: { site: "hq" } }), later, "ws")).toMatchObject({
      ok: false,
      reason: expect.stringMatching(/site=plant-7/),
    });
    expect(h.registry.get("edge-1")).toMatchObject({ level: 4, labels: { site: "plant-7" } });
    expect(
      (await h.registry.admit(hello({ level: 5, labels: { site: "plant-7", rack: "2" } }), later, "ws")).ok,
    ).toBe(true);
  });

  test("a revoked default token stays revoked when the hub starts again with the same secret", async () => {
    using dir = tempDir();
    using h = await openRegistry(dir.path);
    expect(await h.registry.joinTokens.revoke("default", T0)).toBe(true);
    await h.registry.joinTokens.ensureDefault(JOIN, T0 + 1);
    expect((await admitNew(h.registry)).ok).toBe(false);
    // A new secret is a new token.
    await h.registry.joinTokens.ensureDefault("a-new-secret", T0 + 2);
    expect((await h.registry.joinTokens.get("default", T0 + 2))?.state).toBe("active");
  });

  test("protocol 1 credentials are refused unless the hub takes them for a migration", async () => {
    using dir = tempDir();
    using h = await openRegistry(dir.path, { ...POLICY, acceptLegacyCredentials: false });
    const credHash = new Bun.CryptoHasher("sha256").update("old-credential").digest("hex");
    await h.sql.run(
      "INSERT INTO nodes (id, level, cred_hash, first_seen, last_seen) VALUES ('edge-1', 2, ?, 1, 1)",
      [credHash],
    );
    const auth = session();
    expect(
      await h.registry.admit(hello({ legacy: legacyProof(credHash, auth.hash) }), auth, "ws"),
    ).toMatchObject({
      ok: false,
      reason: expect.stringMatching(/legacy-credentials/),
    });
  });

  test("a node registered under protocol 1 keeps its id by proving its old credential, once", async () => {
    using dir = tempDir();
    using h = await openRegistry(dir.path, { ...POLICY, acceptLegacyCredentials: true });
    const credential = "old-credential";
    const credHash = new Bun.CryptoHasher("sha256").update(credential).digest("hex");
    await h.sql.run(
      "INSERT INTO nodes (id, level, cred_hash, first_seen, last_seen) VALUES ('edge-1', 2, ?, 1, 1)",
      [credHash],
    );
    const auth = session();
    expect((await h.registry.admit(hello({ legacy: legacyProof("wrong", auth.hash) }), auth, "ws")).ok).toBe(
      false,
    );
    expect((await h.registry.admit(hello({ legacy: legacyProof(credHash, auth.hash) }), auth, "ws")).ok).toBe(
      true,
    );
    expect(h.registry.keyInfo("edge-1")?.public_key).toBe(encodeKey(auth.key));
    const other = session();
    expect(
      (await h.registry.admit(hello({ legacy: legacyProof(credHash, other.hash) }), other, "ws")).ok,
    ).toBe(false);
  });
});

describe("registry: status", () => {
  test("ready while connected and heard from, suspect after suspectAfter of silence, ready again when heard", async () => {
    using dir = tempDir();
    using h = await openRegistry(dir.path);
    await admitNew(h.registry);
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

  test("a disconnected node is suspect at once and down after downAfter of silence", async () => {
    using dir = tempDir();
    using h = await openRegistry(dir.path);
    await admitNew(h.registry);
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
    // The last time it was heard from goes to the database with the next flush (the hub's every 5 s).
    await h.registry.flushSeen();
    const row = (await h.sql.get<{ last_seen: number }>("SELECT last_seen FROM nodes WHERE id = 'edge-1'"))!;
    expect(row.last_seen).toBe(T0 + 40_000);
  });

  test("a node still connected but silent (half-open socket) goes suspect, then down", async () => {
    using dir = tempDir();
    using h = await openRegistry(dir.path);
    await admitNew(h.registry);
    h.registry.setConnected("edge-1", "ws");
    const status = () => h.registry.status(h.registry.get("edge-1")!);
    h.at(T0 + POLICY.suspectAfterMs);
    expect(status()).toBe("suspect");
    h.at(T0 + POLICY.downAfterMs + 1);
    expect(status()).toBe("down");
  });

  test("after a hub restart no node is down before the restart grace period has passed", async () => {
    using dir = tempDir();
    const policy: StatusPolicy = { ...POLICY, restartGraceMs: 120_000 };
    {
      using h = await openRegistry(dir.path, policy);
      await admitNew(h.registry);
      await admitNew(h.registry, { node_id: "edge-2" });
    }
    // The hub comes back an hour later: everyone has been silent far longer than downAfter.
    const restart = T0 + 3_600_000;
    using h = await openRegistry(dir.path, policy, restart);
    const status = (id: string) => h.registry.status(h.registry.get(id)!);
    expect(status("edge-1")).toBe("suspect");
    h.at(restart + policy.downAfterMs + 1);
    expect(status("edge-1")).toBe("suspect");
    // edge-2 reconnects within the grace period.
    await admitNew(h.registry, { node_id: "edge-2" });
    h.registry.setConnected("edge-2", "ws");
    h.at(restart + policy.restartGraceMs);
    expect(status("edge-1")).toBe("suspect");
    h.at(restart + policy.restartGraceMs + 1);
    expect(status("edge-1")).toBe("down");
    h.registry.seen("edge-2");
    expect(status("edge-2")).toBe("ready");
  });
});

function admitNew(registry: Registry, extra: Partial<HelloBody> = {}) {
  const auth = session();
  return registry.admit(joining(JOIN, auth, extra), auth, "ws");
}
