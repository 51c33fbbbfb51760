// The document runner fails on a broken example: a fixture Markdown file whose examples are partly wrong.
import { expect, test } from "bun:test";
import { commandBlocks, runDocument } from "../support/doc-runner.ts";

test("documents: a broken example fails, naming its line and the error; skipped blocks are counted", async () => {
  const run = await runDocument("test/e2e/fixtures/readme-broken.md");
  const byLine = new Map(run.outcomes.map((o) => [o.block.line, o]));
  expect(run.outcomes.map((o) => `${o.block.line}:${o.status}`)).toEqual([
    "7:passed",
    "13:passed",
    "19:failed",
    "28:skipped",
    "34:failed",
    "42:failed",
  ]);
  expect(byLine.get(19)!.detail).toContain('unknown target \\"market:NYSE\\"');
  expect(byLine.get(28)!.detail).toBe("needs a cluster");
  expect(byLine.get(34)!.detail).toMatch(/frobnicate/);
  expect(byLine.get(42)!.detail).toMatch(/exited with code 2[\s\S]*rules/);
}, 120_000);

test("documents: a directive that is not understood, or stands before prose, is an error", () => {
  expect(() => commandBlocks("<!-- readme-test: sometimes -->\n```sh\ntrue\n```\n", "x.md")).toThrow(
    'x.md:1: unknown readme-test directive "sometimes"',
  );
  expect(() => commandBlocks("<!-- readme-test: skip (why) -->\ntext\n```sh\ntrue\n```\n", "x.md")).toThrow(
    "must stand right before a command block",
  );
  const blocks = commandBlocks("```yaml\na: 1\n```\n\n```sh\necho hi\n```\n", "x.md");
  expect(blocks).toHaveLength(1);
  expect(blocks[0]!.code).toBe("echo hi");
});
