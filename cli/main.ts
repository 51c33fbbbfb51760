// novacron: the operator's command line for a NovaCron hub (`bun cli/main.ts ...` from a checkout).
import { run } from "./run.ts";

process.exitCode = await run(process.argv.slice(2), {
  env: process.env,
  stdin: process.stdin,
  stdout: process.stdout,
  stderr: process.stderr,
});
