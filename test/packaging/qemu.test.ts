// The compiled agent on CPUs this machine is not: arm64, and x86-64 without AVX2, under qemu-user.
import { beforeAll, describe, expect, test } from "bun:test";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { freePort } from "../support/ports.ts";
import { type AgentStatusJson, Proc, startHub, tempDir } from "../support/processes.ts";
import type { NodeJson } from "../support/telemetry.ts";
import { waitFor } from "../support/wait.ts";
import { artefacts, VERSION } from "./_artefacts.ts";

const qemuArm = Bun.which("qemu-aarch64-static") ?? Bun.which("qemu-aarch64");
const qemuX64 = Bun.which("qemu-x86_64-static") ?? Bun.which("qemu-x86_64");
// Debian's arm64 C library, installed for cross-compilers: the binary's loader and libc.
const SYSROOT = "/usr/aarch64-linux-gnu";
const armSkip = !qemuArm
  ? "qemu-user is not installed (apt-get install qemu-user-static)"
  : !existsSync(join(SYSROOT, "lib/ld-linux-aarch64.so.1"))
    ? `no arm64 C library in ${SYSROOT} (apt-get install libc6-arm64-cross)`
    : undefined;
if (armSkip) console.warn(`SKIPPING arm64 binary test: ${armSkip}`);
const x64Skip =
  process.arch !== "x64"
    ? "not an x86-64 machine"
    : !qemuX64
      ? "qemu-user is not installed (apt-get install qemu-user-static)"
      : undefined;
if (x64Skip) console.warn(`SKIPPING x86-64-without-AVX2 test: ${x64Skip}`);

/**
 * Runs `cmd` (an agent binary behind its qemu) against a real hub and checks that it samples,
 * joins, stores queryable series and stops cleanly on SIGTERM.
 */
async function expectAgentWorks(name: string, cmd: string[]): Promise<void> {
  using dir = tempDir();
  await using hub = await startHub({ data: join(dir.path, "hub") });
  const apiPort = freePort();
  const agent = new Proc(`agent:${name}`, [
    ...cmd,
    "run",
    "--data",
    join(dir.path, "agent"),
    "--node-id",
    name,
    "--hub",
    hub.wsUrl,
    "--join-token",
    hub.joinToken,
    "--api",
    `127.0.0.1:${apiPort}`,
    "--batch-interval",
    "1s",
    "--label",
    `cpu=${name}`,
  ]);
  agent.start();
  try {
    await agent.waitForLine(/local API listening/, 60_000);
    const status = await waitFor(
      async () => {
        const s = (await (await fetch(`http://127.0.0.1:${apiPort}/v1/status`)).json()) as AgentStatusJson;
        return s.connected && s.samples.produced > 0 ? s : undefined;
      },
      { timeoutMs: 60_000, what: `the ${name} agent to sample and connect` },
    );
    expect(status.version).toBe(VERSION);
    const node = await waitFor(
      async () => {
        const r = await hub.api<NodeJson>(`/api/v1/nodes/${name}`);
        return r.status === 200 && r.body.ingest.samples > 0 ? r.body : undefined;
      },
      { timeoutMs: 60_000, what: `the hub to store the ${name} agent's samples` },
    );
    expect(node.labels.cpu).toBe(name);
    const r = await hub.api<{ points: [number, number][] }>(
      `/api/v1/nodes/${name}/metrics?series=mem.used_pct&from=0`,
    );
    expect(r.body.points.length).toBeGreaterThan(0);
    for (const [, v] of r.body.points) {
      expect(v).toBeGreaterThan(0);
      expect(v).toBeLessThanOrEqual(100);
    }
    expect(await agent.kill("SIGTERM")).toBe(0);
    expect(agent.lines.join("\n")).toContain("stopped; every sample is in the local store");
  } finally {
    await agent.kill("SIGKILL");
  }
}

describe("compiled agent under qemu-user", () => {
  beforeAll(() => artefacts(), 300_000);

  test.skipIf(armSkip !== undefined)(
    "arm64: the linux-arm64 agent starts, samples, joins a hub and its data is queryable",
    async () => {
      const dist = await artefacts();
      const binary = dist.path("novacron-agent-linux-arm64");
      // ELF header: 64-bit (EI_CLASS 2), little-endian, e_machine 183 (EM_AARCH64).
      const header = new DataView(await Bun.file(binary).slice(0, 20).arrayBuffer());
      expect(header.getUint8(4)).toBe(2);
      expect(header.getUint16(18, true)).toBe(183);
      await expectAgentWorks("arm64", [qemuArm!, "-L", SYSROOT, binary]);
    },
    180_000,
  );

  test.skipIf(x64Skip !== undefined)(
    "x86-64 without AVX2: the linux-x64 agent works on a Nehalem CPU model (edge Atoms and Celerons lack AVX2)",
    async () => {
      const dist = await artefacts();
      // The CPU model is not a rubber stamp: a tiny program that runs one AVX2 instruction exits 0
      // on a Haswell model and dies with SIGILL on the Nehalem one.
      expect(await runAvx2Probe(qemuX64!, "Haswell")).toBe(0);
      expect(await runAvx2Probe(qemuX64!, "Nehalem")).not.toBe(0);
      await expectAgentWorks("nehalem", [qemuX64!, "-cpu", "Nehalem", dist.path("novacron-agent-linux-x64")]);
    },
    180_000,
  );
});

/** Exit code of a minimal static x86-64 program that executes one AVX2 instruction on `cpu`. */
async function runAvx2Probe(qemu: string, cpu: string): Promise<number> {
  // vpaddd ymm2, ymm1, ymm0; mov eax, 60 (exit); xor edi, edi; syscall
  const code = [0xc5, 0xf5, 0xfe, 0xd0, 0xb8, 0x3c, 0x00, 0x00, 0x00, 0x31, 0xff, 0x0f, 0x05];
  const base = 0x400000;
  const elf = new Uint8Array(64 + 56 + code.length);
  const v = new DataView(elf.buffer);
  elf.set([0x7f, 0x45, 0x4c, 0x46, 2, 1, 1]); // \x7fELF, 64-bit, little-endian, version 1
  v.setUint16(16, 2, true); // ET_EXEC
  v.setUint16(18, 62, true); // EM_X86_64
  v.setUint32(20, 1, true);
  v.setBigUint64(24, BigInt(base + 120), true); // entry: right after the headers
  v.setBigUint64(32, 64n, true); // program headers at 64
  v.setUint16(52, 64, true);
  v.setUint16(54, 56, true);
  v.setUint16(56, 1, true);
  v.setUint32(64, 1, true); // PT_LOAD
  v.setUint32(68, 5, true); // R+X
  v.setBigUint64(80, BigInt(base), true);
  v.setBigUint64(88, BigInt(base), true);
  v.setBigUint64(96, BigInt(elf.length), true);
  v.setBigUint64(104, BigInt(elf.length), true);
  v.setBigUint64(112, 0x1000n, true);
  elf.set(code, 120);
  using dir = tempDir();
  const path = join(dir.path, "avx2-probe");
  await Bun.write(path, elf);
  await Bun.$`chmod +x ${path}`;
  const proc = Bun.spawn([qemu, "-cpu", cpu, path], { stdout: "ignore", stderr: "ignore" });
  return await proc.exited;
}
