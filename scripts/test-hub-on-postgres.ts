// The hub's tests again, each hub on a private PostgreSQL (test/support/hub-store.ts), after the run on
// SQLite: `npm test` runs both. Where PostgreSQL is not installed they are skipped, saying so; under CI
// that is an error (.ci/run installs it).
import { postgresMissing } from "../test/support/postgres.ts";

const missing = postgresMissing();
if (missing) {
  console.warn(`the hub's tests on PostgreSQL skipped: ${missing}`);
  process.exit(0);
}
const run = Bun.spawn(["bun", "test", "--parallel=2", "--timeout", "120000", "test/hub"], {
  env: { ...process.env, NOVACRON_TEST_STORE: "postgres" },
  stdout: "inherit",
  stderr: "inherit",
});
process.exit(await run.exited);
