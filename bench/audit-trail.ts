// What the audit trail costs: a changing request with its entry (two reads of the object's state, one
// chained insert), a read without one, and verify over the whole log. In-process hub on a real SQLite file.
//
//   bun bench/audit-trail.ts [--requests 2000]
import { parseArgs } from "node:util";
import { ADMIN, openHubCore } from "../test/support/hub-core.ts";
import { tempDir } from "../test/support/processes.ts";
import { machineInfo, printMachine } from "./_machine.ts";

const { values } = parseArgs({ options: { requests: { type: "string", default: "2000" } } });
const n = Number(values.requests);
printMachine(machineInfo());
using dir = tempDir();
using core = await openHubCore(dir.path);
const headers = { authorization: `Bearer ${ADMIN}`, "content-type": "application/json" };
const spec = { name: "web", driver: "exec", command: "/bin/sleep", args: ["60"], nodes: ["n1"] };
await core.app.request("/api/v1/workloads", { method: "POST", headers, body: JSON.stringify(spec) });

const time = async (what: string, fn: (i: number) => Response | Promise<Response>) => {
  for (let i = 0; i < 50; i++) await fn(i);
  const t0 = performance.now();
  for (let i = 0; i < n; i++) await fn(i);
  const ms = performance.now() - t0;
  console.log(`${what}: ${n} requests, ${((ms * 1000) / n).toFixed(0)} µs each`);
};
await time("GET /api/v1/workloads/web (no entry)", () =>
  core.app.request("/api/v1/workloads/web", { headers }),
);
await time("PUT /api/v1/workloads/web, unchanged spec (one entry)", () =>
  core.app.request("/api/v1/workloads/web", { method: "PUT", headers, body: JSON.stringify(spec) }),
);
await time("PUT /api/v1/cache (one entry)", (i) =>
  core.app.request("/api/v1/cache", {
    method: "PUT",
    headers,
    body: JSON.stringify({ key: "k", value: "v", version: i + 1 }),
  }),
);
const entries = core.db!.query("SELECT count(*) AS n FROM audit_log").get() as { n: number };
const t0 = performance.now();
const v = await core.audit.verify();
console.log(`verify: ${entries.n} entries, ok=${v.ok}, ${(performance.now() - t0).toFixed(1)} ms`);
