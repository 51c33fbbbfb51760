// One `bun build --compile` per component and target, with the runtime given explicitly.
import { statSync } from "node:fs";
import { join } from "node:path";
import { run, sha256File } from "./exec.ts";
import type { Runtime } from "./runtime.ts";
import { binaryName, type Component, type Target } from "./targets.ts";

export interface CompiledBinary {
  component: Component;
  target: Target;
  path: string;
  bytes: number;
  sha256: string;
  runtime: Runtime;
}

/** Bun's `--target` name for a runtime package, e.g. `bun-linux-x64-baseline`. */
export function bunTarget(target: Target, runtimePkg: string): string {
  const baseline = runtimePkg.endsWith("-baseline") ? "-baseline" : "";
  const musl = target.libc === "musl" ? "-musl" : "";
  return `bun-linux-${target.arch}${musl}${baseline}`;
}

/**
 * Compiles `component` for `target` into `outDir/<program>-<target>`. The file name is part of
 * the output (Bun embeds it as `/$bunfs/root/<name>`), so two builds are byte-identical only
 * under the same name; that is why binaries keep their dist/ name everywhere they are copied.
 */
export async function compile(
  root: string,
  component: Component,
  target: Target,
  runtime: Runtime,
  outDir: string,
): Promise<CompiledBinary> {
  const path = join(outDir, binaryName(component, target));
  await run(
    [
      process.execPath,
      "build",
      "--compile",
      "--minify",
      // A production binary must not pick up a stray .env or bunfig.toml from its working directory.
      "--no-compile-autoload-dotenv",
      "--no-compile-autoload-bunfig",
      `--target=${bunTarget(target, runtime.spec.slice(0, runtime.spec.lastIndexOf("@")))}`,
      `--compile-executable-path=${runtime.path}`,
      component.entry,
      "--outfile",
      path,
    ],
    { cwd: root, what: `bun build --compile ${component.entry} for ${target.name}` },
  );
  return {
    component,
    target,
    path,
    bytes: statSync(path).size,
    sha256: await sha256File(path),
    runtime,
  };
}
