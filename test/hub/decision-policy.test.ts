// Specification of the hub's check of offline decisions against its default rules.
import { expect, test } from "bun:test";
import { decisionPolicy } from "../../hub/events/index.ts";

test("decision policy: agrees when the hub's rule of that name holds for the inputs, disagrees when not, and says when it has no such rule", () => {
  const check = decisionPolicy();
  const fire = (inputs: Record<string, number>) =>
    check("n1", { rule: "cpu-high", at: 1, kind: "fire", action: "x", inputs });
  expect(fire({ "cpu.util": 91 }).verdict).toBe("agree");
  expect(fire({ "cpu.util": 42 })).toMatchObject({ verdict: "disagree" });
  expect(fire({ "cpu.util": 42 }).reason).toContain("cpu.util");
  expect(
    check("n1", { rule: "cpu-high", at: 1, kind: "clear", action: "x", inputs: { "cpu.util": 50 } }).verdict,
  ).toBe("agree");
  expect(check("n1", { rule: "made-up", at: 1, action: "x", inputs: {} }).verdict).toBe("unknown");
});
