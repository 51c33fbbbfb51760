// Installs the pinned dependencies (Bun included) when a fresh clone has none yet.
import { execSync } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";

const pkg = JSON.parse(readFileSync("package.json", "utf8"));
const want = Object.keys({ ...pkg.dependencies, ...pkg.devDependencies });
const missing = want.filter((name) => !existsSync(`node_modules/${name}/package.json`));
if (missing.length > 0) {
  console.error(`installing dependencies (missing: ${missing.join(", ")})`);
  execSync("npm install --no-audit --no-fund", { stdio: "inherit" });
}
