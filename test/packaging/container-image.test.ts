// The container images: built from the Dockerfiles with buildah (no Docker engine), unpacked with
// umoci and run with runc as OCI containers: the hub image and an agent image that joins it.
import { beforeAll, describe, expect, test } from "bun:test";
import {
  chmodSync,
  chownSync,
  copyFileSync,
  mkdirSync,
  readFileSync,
  statSync,
  writeFileSync,
} from "node:fs";
import { join } from "node:path";
import { freePort } from "../support/ports.ts";
import { type AgentStatusJson, Proc, tempDir } from "../support/processes.ts";
import type { NodeJson } from "../support/telemetry.ts";
import { waitFor } from "../support/wait.ts";
import { artefacts, isRoot, ROOT, sh } from "./_artefacts.ts";

const missing = ["buildah", "umoci", "runc"].filter((c) => !Bun.which(c));
const skip = !isRoot
  ? "building and running images needs root"
  : missing.length > 0
    ? `${missing.join(", ")} not installed (apt-get install buildah umoci runc)`
    : undefined;
if (skip) console.warn(`SKIPPING container image test: ${skip}`);

const NONROOT = 65532;

// biome-ignore lint/suspicious/noExplicitAny: the OCI runtime config is edited field by field.
type RuntimeConfig = any;

describe("container images", () => {
  beforeAll(() => artefacts(), 300_000);

  test.skipIf(skip !== undefined)(
    "image: both Dockerfiles build without a Docker engine; the images run as uid 65532 and the agent joins the hub",
    async () => {
      const dist = await artefacts();
      using work = tempDir("novacron-image-");
      const storage = [
        "--root",
        join(work.path, "storage"),
        "--runroot",
        join(work.path, "run"),
        "--storage-driver",
        "vfs",
      ];
      const buildah = async (...args: string[]) => {
        const r = await sh(["buildah", ...storage, ...args], { timeoutMs: 120_000 });
        if (r.code !== 0) throw new Error(`buildah ${args.join(" ")}: ${r.err || r.out}`);
        return r.out.trim();
      };

      // The distroless base cannot be pulled here (no registry): a stand-in with what it holds
      // that the binary needs, glibc from this Debian 12 machine and the nonroot user 65532.
      const base = join(work.path, "base");
      for (const d of ["etc", "lib/x86_64-linux-gnu", "lib64", "tmp", "home/nonroot"]) {
        mkdirSync(join(base, d), { recursive: true });
      }
      chmodSync(join(base, "tmp"), 0o1777);
      for (const lib of ["libc.so.6", "libm.so.6", "libpthread.so.0", "libdl.so.2"]) {
        copyFileSync(`/lib/x86_64-linux-gnu/${lib}`, join(base, "lib/x86_64-linux-gnu", lib));
      }
      copyFileSync("/lib64/ld-linux-x86-64.so.2", join(base, "lib64/ld-linux-x86-64.so.2"));
      writeFileSync(
        join(base, "etc/passwd"),
        `root:x:0:0::/root:/sbin/nologin\nnonroot:x:${NONROOT}:${NONROOT}::/home/nonroot:/sbin/nologin\n`,
      );
      writeFileSync(join(base, "etc/group"), `root:x:0:\nnonroot:x:${NONROOT}:\n`);
      const ctr = await buildah("from", "scratch");
      await buildah("copy", ctr, `${base}/`, "/");
      await buildah("config", "--user", `${NONROOT}:${NONROOT}`, ctr);
      await buildah("commit", "-q", ctr, "localhost/base-standin:test");

      const images: Record<string, string> = {};
      for (const program of ["novacron-hub", "novacron-agent"]) {
        const name = program.replace("novacron-", "");
        await buildah(
          "bud",
          "--pull=never",
          "--platform",
          "linux/amd64",
          "--build-arg",
          "BASE=localhost/base-standin:test",
          "-f",
          join(ROOT, `packaging/container/${name}.Dockerfile`),
          "-t",
          `localhost/${program}:test`,
          dist.dir,
        );
        const config = JSON.parse(await buildah("inspect", "--type", "image", `localhost/${program}:test`))
          .OCIv1.config;
        expect(config.User).toBe(`${NONROOT}:${NONROOT}`);
        expect(config.Entrypoint).toEqual([`/usr/bin/${program}`]);
        await buildah("push", "-q", `localhost/${program}:test`, `oci:${join(work.path, "oci")}:${name}`);
        const bundle = join(work.path, `bundle-${name}`);
        const unpack = await sh(["umoci", "unpack", "--image", `${join(work.path, "oci")}:${name}`, bundle]);
        expect(unpack.code).toBe(0);
        images[program] = bundle;
      }

      // Run them as `docker run --network host -v DIR:/var/lib/... -e ...` would.
      const hubPort = freePort();
      const apiPort = freePort();
      const hub = runBundle(images["novacron-hub"]!, "nc-hub", work.path, "/var/lib/novacron-hub", {
        NOVACRON_LISTEN: `127.0.0.1:${hubPort}`,
        NOVACRON_JOIN_TOKEN: "image-join",
        NOVACRON_ADMIN_TOKEN: "image-admin",
      });
      const agent = runBundle(images["novacron-agent"]!, "nc-agent", work.path, "/var/lib/novacron", {
        NOVACRON_API: `127.0.0.1:${apiPort}`,
        NOVACRON_HUB: `ws://127.0.0.1:${hubPort}`,
        NOVACRON_JOIN_TOKEN: "image-join",
        NOVACRON_NODE_ID: "image-agent",
        NOVACRON_BATCH_INTERVAL: "1s",
      });
      try {
        hub.proc.start();
        await hub.proc.waitForLine(/hub listening/, 30_000);
        agent.proc.start();
        await agent.proc.waitForLine(/local API listening/, 30_000);
        const status = await waitFor(
          async () => {
            const s = (await (
              await fetch(`http://127.0.0.1:${apiPort}/v1/status`)
            ).json()) as AgentStatusJson;
            return s.connected && s.samples.produced > 0 ? s : undefined;
          },
          { what: "the agent container to join the hub container" },
        );
        expect(status.node_id).toBe("image-agent");
        await waitFor(
          async () => {
            const r = await fetch(`http://127.0.0.1:${hubPort}/api/v1/nodes/image-agent`, {
              headers: { authorization: "Bearer image-admin" },
            });
            return r.status === 200 && ((await r.json()) as NodeJson).ingest.samples > 0;
          },
          { what: "the hub container to store the agent's samples" },
        );
        for (const [c, proc] of [
          ["nc-agent", agent.proc],
          ["nc-hub", hub.proc],
        ] as const) {
          const pid = (await sh(["runc", "--root", join(work.path, "runc"), "state", c])).out;
          const status = readFileSync(`/proc/${JSON.parse(pid).pid}/status`, "utf8");
          expect(status).toMatch(new RegExp(`Uid:\\s+${NONROOT}\\s`));
          await sh(["runc", "--root", join(work.path, "runc"), "kill", c, "TERM"]);
          expect(await proc.exited()).toBe(0);
        }
        expect(agent.proc.lines.join("\n")).toContain("stopped; every sample is in the local store");
        expect(statSync(join(agent.data, "agent.db")).uid).toBe(NONROOT);
      } finally {
        for (const c of ["nc-agent", "nc-hub"])
          await sh(["runc", "--root", join(work.path, "runc"), "delete", "--force", c]);
        await sh(["buildah", ...storage, "rm", "--all"]);
      }
    },
    240_000,
  );
});

/**
 * Prepares an unpacked image for `runc run`: the host's network (like --network host), a host
 * directory owned by 65532 on the image's volume (like -v), extra environment (like -e).
 */
function runBundle(
  bundle: string,
  name: string,
  work: string,
  volume: string,
  env: Record<string, string>,
): { proc: Proc; data: string } {
  const path = join(bundle, "config.json");
  const config = JSON.parse(readFileSync(path, "utf8")) as RuntimeConfig;
  const data = join(work, `${name}-data`);
  mkdirSync(data, { recursive: true });
  chownSync(data, NONROOT, NONROOT);
  config.process.terminal = false;
  config.process.env.push(...Object.entries(env).map(([k, v]) => `${k}=${v}`));
  config.linux.namespaces = config.linux.namespaces.filter((n: RuntimeConfig) => n.type !== "network");
  config.mounts = config.mounts.filter((m: RuntimeConfig) => m.destination !== volume);
  config.mounts.push({ destination: volume, type: "bind", source: data, options: ["rbind", "rw"] });
  writeFileSync(path, JSON.stringify(config));
  const proc = new Proc(name, ["runc", "--root", join(work, "runc"), "run", "--bundle", bundle, name]);
  return { proc, data };
}
