// The .deb packages: lintian-clean, and installed, run, stopped and removed under a real systemd.
import { beforeAll, describe, expect, test } from "bun:test";
import type { AgentStatusJson } from "../support/processes.ts";
import type { NodeJson } from "../support/telemetry.ts";
import { waitFor } from "../support/wait.ts";
import { artefacts, sh, VERSION } from "./_artefacts.ts";
import { bootContainer, containerSkipReason } from "./_container.ts";

const hasLintian = Bun.which("lintian") !== null && Bun.which("dpkg-deb") !== null;
if (!hasLintian) console.warn("SKIPPING lintian test: lintian is not installed (apt-get install lintian)");
const containerSkip = containerSkipReason();
if (containerSkip) console.warn(`SKIPPING .deb install test under systemd: ${containerSkip}`);

const AGENT_DEB = `novacron-agent_${VERSION}_amd64.deb`;
const HUB_DEB = `novacron-hub_${VERSION}_amd64.deb`;

describe(".deb packages", () => {
  beforeAll(() => artefacts(), 300_000);

  test.skipIf(!hasLintian)(
    "deb: lintian reports no error and no warning (agent amd64, hub arm64; the four share one recipe)",
    async () => {
      const dist = await artefacts();
      const debs = [AGENT_DEB, `novacron-hub_${VERSION}_arm64.deb`];
      const r = await sh(["lintian", "--fail-on", "none", ...debs.map((d) => dist.path(d))], {
        timeoutMs: 180_000,
      });
      const tags = (r.out + r.err)
        .split("\n")
        .filter((l) => /^[EW]: /.test(l))
        .sort();
      expect(tags).toEqual([]);
      expect(r.code).toBe(0);
    },
    180_000,
  );

  test.skipIf(!hasLintian)(
    "deb: control fields, conffile, unit and maintainer scripts are where dpkg expects them",
    async () => {
      const dist = await artefacts();
      const info = await sh(["dpkg-deb", "--info", dist.path(AGENT_DEB)]);
      expect(info.out).toContain("Package: novacron-agent");
      expect(info.out).toContain(`Version: ${VERSION}`);
      expect(info.out).toContain("Architecture: amd64");
      expect(info.out).toMatch(/Depends: libc6 \(>= 2\.\d+\), adduser/);
      const files = (await sh(["dpkg-deb", "--contents", dist.path(AGENT_DEB)])).out;
      for (const f of [
        "./usr/bin/novacron-agent",
        "./lib/systemd/system/novacron-agent.service",
        "./etc/novacron/agent.yaml",
        "./usr/share/doc/novacron-agent/copyright",
        "./usr/share/man/man8/novacron-agent.8.gz",
      ]) {
        expect(files).toContain(f);
      }
      const conffiles = await sh(["dpkg-deb", "--info", dist.path(AGENT_DEB), "conffiles"]);
      expect(conffiles.out).toBe("/etc/novacron/agent.yaml\n");
      const scripts = await sh(["dpkg-deb", "--info", dist.path(AGENT_DEB), "postinst"]);
      expect(scripts.out).toContain("adduser --quiet --system --group --home /var/lib/novacron");
      expect(scripts.out).toContain("deb-systemd-helper enable 'novacron-agent.service'");
      const arm = await sh([
        "dpkg-deb",
        "--field",
        dist.path(`novacron-agent_${VERSION}_arm64.deb`),
        "Architecture",
      ]);
      expect(arm.out.trim()).toBe("arm64");
    },
    60_000,
  );

  test.skipIf(containerSkip !== undefined)(
    "deb under systemd: installs, starts as its own sandboxed user, joins the hub, keeps every sample across SIGTERM, removes and purges",
    async () => {
      const dist = await artefacts();
      await using box = await bootContainer({ binds: { [dist.dir]: "/media/dist" } });
      // Debian's container images ship a policy-rc.d that forbids starting services on install;
      // a real device has none, and postinst must start the units there.
      await box.run("rm -f /usr/sbin/policy-rc.d");
      await box.run(`dpkg -i /media/dist/${HUB_DEB} /media/dist/${AGENT_DEB}`, 120_000);

      // Installed: users, enabled and running units, config readable only by the service's group.
      expect((await box.run("systemctl is-enabled novacron-agent novacron-hub")).trim().split("\n")).toEqual([
        "enabled",
        "enabled",
      ]);
      await waitFor(
        async () => (await box.exec("systemctl is-active novacron-agent novacron-hub")).code === 0,
        {
          what: `both units active (${box.name})`,
        },
      );
      expect(
        (await box.run("stat -c '%U:%G %a' /etc/novacron/agent.yaml /etc/novacron/hub.yaml")).trim(),
      ).toBe("root:novacron 640\nroot:novacron-hub 640");
      expect(await box.run("getent passwd novacron novacron-hub | cut -d: -f1,6,7")).toBe(
        "novacron:/var/lib/novacron:/usr/sbin/nologin\nnovacron-hub:/var/lib/novacron-hub:/usr/sbin/nologin\n",
      );
      // The installed units verify with their real paths.
      const verify = await box.exec(
        "systemd-analyze verify /lib/systemd/system/novacron-agent.service /lib/systemd/system/novacron-hub.service",
      );
      expect(verify.out + verify.err).toBe("");
      expect(verify.code).toBe(0);

      // Join the hub the way an operator does: edit the config; the agent reloads it live.
      const joinToken = (
        await waitFor(async () => (await box.exec("cat /var/lib/novacron-hub/join.token")).out.trim(), {
          what: "the hub's generated join token",
        })
      ).trim();
      const adminToken = (await box.run("cat /var/lib/novacron-hub/admin.token")).trim();
      const writeConfig = (sampleInterval: string) =>
        box.run(
          [
            "cat > /etc/novacron/agent.yaml <<'EOF'",
            "hub: [ws://127.0.0.1:8091]",
            `join_token: "${joinToken}"`,
            `sample_interval: ${sampleInterval}`,
            "batch_interval: 1s",
            "heartbeat_interval: 1s",
            "EOF",
          ].join("\n"),
        );
      await writeConfig("1s");
      const status = () => box.get<AgentStatusJson>("http://127.0.0.1:8080/v1/status").then((r) => r.body);
      await waitFor(async () => (await status()).connected, { what: "the agent to connect to the hub" });
      const nodeId = (await status()).node_id;
      const node = () => box.get<NodeJson>(`http://127.0.0.1:8091/api/v1/nodes/${nodeId}`, adminToken);
      await waitFor(async () => ((await node()).body.ingest?.samples ?? 0) > 0, {
        what: "samples at the hub",
      });
      const points = await box.get<{ points: [number, number][] }>(
        `http://127.0.0.1:8091/api/v1/nodes/${nodeId}/metrics?series=cpu.util&from=0`,
        adminToken,
      );
      expect(points.body.points.length).toBeGreaterThan(0);

      // The agent runs as the unit says: its user, no capabilities, no new privileges, a seccomp
      // filter, and a read-only file system except its state directory.
      const pid = (await box.run("systemctl show -p MainPID --value novacron-agent")).trim();
      const procStatus = await box.run(`cat /proc/${pid}/status`);
      const uid = (await box.run("id -u novacron")).trim();
      expect(procStatus).toMatch(new RegExp(`Uid:\\s+${uid}\\s+${uid}\\s+${uid}\\s+${uid}`));
      expect(procStatus).toMatch(/CapEff:\s+0+\n/);
      expect(procStatus).toMatch(/CapBnd:\s+0+\n/);
      expect(procStatus).toMatch(/NoNewPrivs:\s+1/);
      expect(procStatus).toMatch(/Seccomp:\s+2/);
      const mounts = (await box.run(`cat /proc/${pid}/mountinfo`)).split("\n").map((l) => l.split(" "));
      const mountOf = (path: string) => mounts.filter((m) => m[4] === path).at(-1);
      expect(mountOf("/")?.[5]).toMatch(/^ro,/);
      expect(mountOf("/etc")?.[5]).toMatch(/^ro,/);
      expect(mountOf("/var/lib/novacron")?.[5]).toMatch(/^rw,/);
      expect(mountOf("/tmp")?.[5]).toMatch(/^rw,/);

      // Hub gone: the agent buffers. Then SIGTERM (systemctl stop) must keep every sample.
      await box.run("systemctl stop novacron-hub");
      await waitFor(async () => !(await status()).connected, { what: "the agent to notice the hub is gone" });
      await waitFor(async () => (await status()).outbox.pending >= 2, { what: "batches buffered offline" });
      await box.run("systemctl stop novacron-agent");
      // journald takes the unit's last lines from its stdout stream on its own time: wait for them.
      const stopped = await waitFor(
        async () => {
          const out = await box.run(
            "systemctl show -p Result -p ExecMainStatus -p ExecMainCode novacron-agent; journalctl -u novacron-agent -o cat --no-pager",
          );
          return out.includes("stopped; every sample is in the local store") ? out : undefined;
        },
        { what: "the agent's last journal line", timeoutMs: 15_000 },
      );
      expect(stopped).toContain("Result=success");
      expect(stopped).toContain("ExecMainStatus=0");
      expect(stopped).toContain("stopping signal=SIGTERM");
      expect(stopped).toContain("stopped; every sample is in the local store");

      // Back up: what was buffered reaches the hub, once. Sampling is paused (1h) to compare.
      await box.run("systemctl start novacron-hub");
      await waitFor(async () => (await box.get("http://127.0.0.1:8091/healthz")).status === 200, {
        what: "the hub to listen again",
      });
      await box.run("systemctl start novacron-agent");
      await writeConfig("1h");
      const final = await waitFor(
        async () => {
          const s = await status();
          return s.connected &&
            s.config.sample_interval_ms === 3_600_000 &&
            s.outbox.pending === 0 &&
            s.samples.staged_ticks === 0
            ? s
            : undefined;
        },
        { timeoutMs: 60_000, what: "the agent to drain its outbox" },
      );
      const stored = await waitFor(
        async () => {
          const n = (await node()).body;
          return n.ingest.samples === final.samples.produced ? n : undefined;
        },
        { timeoutMs: 15_000, what: `the hub to hold all ${final.samples.produced} samples` },
      );
      expect(final.samples.dropped).toBe(0);
      expect(stored.ingest.samples).toBe(final.samples.produced);

      // remove: binary and unit gone, config and data kept; purge: both deleted.
      await box.run("dpkg -r novacron-agent", 60_000);
      expect((await box.exec("test -e /usr/bin/novacron-agent")).code).not.toBe(0);
      expect((await box.exec("systemctl is-active novacron-agent")).out.trim()).not.toBe("active");
      await box.run("test -f /etc/novacron/agent.yaml && test -f /var/lib/novacron/agent.db");
      await box.run("dpkg -P novacron-agent", 60_000);
      expect((await box.exec("test -e /var/lib/novacron")).code).not.toBe(0);
      expect((await box.exec("test -e /etc/novacron/agent.yaml")).code).not.toBe(0);
      // The hub's package and data are untouched by the agent's purge.
      await box.run("test -f /etc/novacron/hub.yaml && test -f /var/lib/novacron-hub/hub.db");
      await box.run("dpkg -P novacron-hub", 60_000);
      expect((await box.exec("test -e /var/lib/novacron-hub")).code).not.toBe(0);
    },
    240_000,
  );
});
