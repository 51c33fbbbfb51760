// --help of both commands, run as a reader runs them: every default is shown in words, none as a JS object.
import { expect, test } from "bun:test";

function help(entry: string): string {
  const r = Bun.spawnSync([process.execPath, entry, "--help"], {
    cwd: `${import.meta.dir}/../..`,
    stdout: "pipe",
  });
  expect(r.exitCode).toBe(0);
  return r.stdout.toString();
}

test("help: no default is printed as [object Object] or an empty map, and the custom ones say what they are", () => {
  for (const entry of ["agent/main.ts", "hub/main.ts"]) {
    const text = help(entry);
    expect(text).not.toContain("[object Object]");
    expect(text).not.toMatch(/default \w+=,/);
  }
  const agent = help("agent/main.ts");
  expect(agent).toMatch(
    /file key rules, default four rules: max CPU 80%, memory 85%, disk 90%, min 1 GB free memory/,
  );
  expect(agent).toMatch(/file key ingest_mqtt, default none \(off\)/);
});
