// JavaScriptCore settings for the compiled agent. JSC reads BUN_JSC_* once, when the process starts,
// so a compiled agent that finds them unset sets them and re-executes itself (same pid, before any other
// module runs: main.ts imports this file first). Measured in BENCHMARKS.md ("Agent memory: cuts").
//
// An operator overrides a setting by giving it in the environment (BUN_JSC_useJIT=true turns the JIT
// back on); NOVACRON_RUNTIME_DEFAULTS=off skips all of them. `bun agent/main.ts` is left as it is.

/** Settings the shipped agent runs with unless the environment says otherwise. */
export const RUNTIME_DEFAULTS: Readonly<Record<string, string>> = {
  // The agent's own JavaScript is a few thousand lines run once a second: the optimising tiers and
  // their compiler's code cost more resident memory than they save in CPU.
  BUN_JSC_useJIT: "false",
};

/** The environment to re-execute with, or undefined when nothing is missing (or this is not a compiled agent). */
export function missingDefaults(
  env: NodeJS.ProcessEnv,
  compiled: boolean,
): Record<string, string> | undefined {
  if (!compiled || env.NOVACRON_RUNTIME_DEFAULTS === "off") return undefined;
  const missing = Object.entries(RUNTIME_DEFAULTS).filter(([k]) => env[k] === undefined);
  return missing.length === 0 ? undefined : Object.fromEntries(missing);
}

// A compiled binary's entry point lives in Bun's embedded file system.
const compiled = Bun.main.startsWith("/$bunfs/");
const missing = missingDefaults(process.env, compiled);
if (missing) {
  try {
    if (typeof process.execve !== "function") throw new Error("process.execve is missing");
    // In a compiled binary argv[1] is the embedded entry point, which the executable adds itself.
    process.execve(process.execPath, [process.argv0 || process.execPath, ...process.argv.slice(2)], {
      ...process.env,
      ...missing,
    });
  } catch (err) {
    // Running with the JIT's defaults costs memory, not correctness.
    process.stderr.write(
      `novacron-agent: could not apply runtime settings (${(err as Error).message}); running without them\n`,
    );
  }
}
