// The user-facing documents are executed: every command block of README.md, docs/ and packaging/README.md
// runs against real processes, with only the placeholders filled in (the rules: test/support/doc-runner.ts).
import { expect, test } from "bun:test";
import { readdirSync } from "node:fs";
import { type DocRun, runDocument } from "../support/doc-runner.ts";

const DOCUMENTS = [
  "README.md",
  ...readdirSync(`${import.meta.dir}/../../docs`)
    .filter((f) => f.endsWith(".md"))
    .sort()
    .map((f) => `docs/${f}`),
  "packaging/README.md",
];

function report(run: DocRun): string {
  const lines = run.outcomes.map((o) => {
    const where = `${o.block.file}:${o.block.line}`;
    if (o.status === "skipped") return `  skipped  ${where}  (${o.detail})`;
    return `  ${o.status.padEnd(7)}  ${where}  ${o.ms} ms${o.status === "failed" ? `\n${o.detail}` : ""}`;
  });
  return lines.join("\n");
}

for (const file of DOCUMENTS) {
  test(`documents: every command block of ${file} works as written`, async () => {
    const run = await runDocument(file);
    const skipped = run.outcomes.filter((o) => o.status === "skipped").length;
    const ran = run.outcomes.length - skipped;
    console.log(`${file}: ${ran} blocks run, ${skipped} skipped\n${report(run)}`);
    const failed = run.outcomes.filter((o) => o.status === "failed");
    if (failed.length > 0) console.error(run.serviceLogs());
    expect(failed.map((o) => `${o.block.file}:${o.block.line}\n${o.detail}`)).toEqual([]);
    if (file === "README.md") {
      // A hub and two agents on this one host, started exactly as written: no --api, and each agent
      // found its own local API port.
      const agents = run.outcomes.filter(
        (o) => o.block.directive.kind === "service" && /novacron-agent run/.test(o.block.code),
      );
      expect(agents.length).toBeGreaterThanOrEqual(2);
      for (const a of agents) expect(a.block.code).not.toContain("--api");
      expect(new Set(run.agentApis).size).toBe(run.agentApis.length);
      expect(run.agentApis.length).toBeGreaterThanOrEqual(2);
    }
  }, 240_000);
}
