// The offline archive: a machine with no network and only the archive installs and starts it.
import { beforeAll, describe, expect, test } from "bun:test";
import type { AgentStatusJson } from "../support/processes.ts";
import type { NodeJson } from "../support/telemetry.ts";
import { waitFor } from "../support/wait.ts";
import { artefacts, VERSION } from "./_artefacts.ts";
import { bootContainer, containerSkipReason } from "./_container.ts";

const skip = containerSkipReason();
if (skip) console.warn(`SKIPPING offline install test: ${skip}`);

const AGENT = `novacron-agent-${VERSION}-linux-x64`;
const HUB = `novacron-hub-${VERSION}-linux-x64`;

describe("offline install from the archive", () => {
  beforeAll(() => artefacts(), 300_000);

  test.skipIf(skip !== undefined)(
    "install.sh: with no network, the hub and then the agent install, start under systemd and join; uninstall keeps data, --purge removes it",
    async () => {
      const dist = await artefacts();
      await using box = await bootContainer({ binds: { [dist.dir]: "/media/usb" } });
      // No network at all: only the loopback interface.
      expect((await box.run("ls /sys/class/net")).trim()).toBe("lo");

      // The hub's installer runs under BusyBox ash where BusyBox is installed (as on Alpine), the
      // agent's under /bin/sh (dash on Debian).
      const shell = Bun.which("busybox") ? "busybox ash " : "";
      const hubOut = await box.run(
        `cd /root && tar -xJf /media/usb/${HUB}.tar.xz && ${shell}./${HUB}/install.sh`,
        120_000,
      );
      expect(hubOut).toContain("started novacron-hub.service");
      const joinToken = await waitFor(
        async () => (await box.exec("cat /var/lib/novacron-hub/join.token")).out.trim(),
        { what: "the hub's join token" },
      );
      const adminToken = (await box.run("cat /var/lib/novacron-hub/admin.token")).trim();

      // The documented one command, as a field technician types it.
      const agentOut = await box.run(
        `cd /root && tar -xJf /media/usb/${AGENT}.tar.xz && ./${AGENT}/install.sh --hub ws://127.0.0.1:8091 --join-token ${joinToken} --node-id field-7 --level 4 --set batch_interval=1s`,
        120_000,
      );
      expect(agentOut).toContain("created the system user novacron");
      expect(await box.run("tail -6 /etc/novacron/agent.yaml")).toBe(
        `# Set by install.sh\nhub: [ws://127.0.0.1:8091]\njoin_token: "${joinToken}"\nnode_id: field-7\nlevel: 4\nbatch_interval: 1s\n`,
      );
      expect(agentOut).toContain(`installed /usr/local/bin/novacron-agent (${VERSION}, linux-x64)`);
      expect(agentOut).toContain("started novacron-agent.service");
      expect(await box.run("grep ^ExecStart= /etc/systemd/system/novacron-agent.service")).toBe(
        "ExecStart=/usr/local/bin/novacron-agent run --data /var/lib/novacron\n",
      );
      expect((await box.run("stat -c '%U:%G %a' /etc/novacron/agent.yaml /var/lib/novacron")).trim()).toBe(
        "root:novacron 640\nnovacron:novacron 750",
      );

      const status = await waitFor(
        async () => {
          const s = (await box.get<AgentStatusJson>("http://127.0.0.1:8080/v1/status")).body;
          return s.connected ? s : undefined;
        },
        { what: "the agent to join the hub" },
      );
      expect(status.node_id).toBe("field-7");
      const node = await waitFor(
        async () => {
          const r = await box.get<NodeJson>("http://127.0.0.1:8091/api/v1/nodes/field-7", adminToken);
          return r.status === 200 && r.body.ingest.samples > 0 ? r.body : undefined;
        },
        { what: "field-7's samples at the hub" },
      );
      expect(node.status).toBe("ready");

      // A damaged copy is refused before anything is touched.
      const damaged = await box.exec(
        `cp -r /root/${AGENT} /root/damaged && printf x >> /root/damaged/novacron-agent && /root/damaged/install.sh`,
      );
      expect(damaged.code).toBe(1);
      expect(damaged.err).toContain("checksums do not match");

      // Uninstall keeps config and data; --purge removes them and the user.
      const un = await box.run(`/root/${AGENT}/install.sh --uninstall`);
      expect(un).toContain("kept /etc/novacron/agent.yaml and /var/lib/novacron");
      expect((await box.exec("test -e /usr/local/bin/novacron-agent")).code).not.toBe(0);
      expect((await box.exec("systemctl cat novacron-agent")).code).not.toBe(0);
      await box.run("test -f /var/lib/novacron/agent.db && test -f /etc/novacron/agent.yaml");
      await box.run(`/root/${AGENT}/install.sh --uninstall --purge`);
      expect((await box.exec("test -e /var/lib/novacron")).code).not.toBe(0);
      expect((await box.exec("id novacron")).code).not.toBe(0);
      await box.run("test -f /etc/novacron/hub.yaml");
    },
    180_000,
  );
});
