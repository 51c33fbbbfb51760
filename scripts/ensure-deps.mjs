// Installs the pinned dependencies (Bun included) when a fresh clone has none yet.
import { execSync } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";

const pkg = JSON.parse(readFileSync("package.json", "utf8"));
const want = Object.keys({ ...pkg.dependencies, ...pkg.devDependencies });
const missing = want.filter((name) => !existsSync(`node_modules/${name}/package.json`));
if (missing.length > 0) {
  // `npm ci` installs exactly what package-lock.json pins and never rewrites it (npm install may,
  // which left a fresh clone with a modified tracked file).
  const command = existsSync("package-lock.json")
    ? "npm ci --no-audit --no-fund"
    : "npm install --no-audit --no-fund";
  console.error(`installing dependencies (missing: ${missing.join(", ")}): ${command}`);
  execSync(command, { stdio: "inherit" });
}
