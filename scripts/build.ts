// `npm run build`: compiled binaries, offline archives and .deb packages in dist/ (packaging/README.md).
import { basename, resolve } from "node:path";
import { parseArgs } from "node:util";
import { build, mb, selectComponents, selectTargets, TARGETS } from "../packaging/build/index.ts";

const HELP = `Usage: bun scripts/build.ts [--out DIR] [--target NAME,...] [--component agent,hub,cli] [--fast] [--skip archive,deb]

  --out DIR          where the artefacts go (default dist)
  --target NAME,...  ${TARGETS.map((t) => t.name).join(", ")} (default all)
  --component LIST   agent, hub, cli (default all; cli is a binary only)
  --fast             xz -0 instead of -6 (for tests: same contents, bigger files)
  --skip LIST        archive and/or deb: build only what is left`;

const list = (v: string | undefined) =>
  v
    ?.split(",")
    .map((s) => s.trim())
    .filter(Boolean);

let args: ReturnType<typeof parse>;
function parse() {
  return parseArgs({
    args: process.argv.slice(2),
    options: {
      out: { type: "string", default: "dist" },
      target: { type: "string" },
      component: { type: "string" },
      fast: { type: "boolean", default: false },
      skip: { type: "string" },
      help: { type: "boolean", default: false },
    },
  }).values;
}
try {
  args = parse();
} catch (err) {
  console.error(`build: ${(err as Error).message}\n\n${HELP}`);
  process.exit(2);
}
if (args.help) {
  console.log(HELP);
  process.exit(0);
}
const skip = new Set(list(args.skip) ?? []);
for (const s of skip) {
  if (s !== "archive" && s !== "deb") {
    console.error(`build: --skip takes archive and/or deb, not "${s}"`);
    process.exit(2);
  }
}

try {
  selectTargets(list(args.target));
  selectComponents(list(args.component));
} catch (err) {
  console.error(`build: ${(err as Error).message}`);
  process.exit(2);
}

const root = resolve(import.meta.dir, "..");
const t0 = performance.now();
try {
  const result = await build({
    root,
    outDir: resolve(root, args.out),
    targets: list(args.target),
    components: list(args.component),
    fast: args.fast,
    skip: skip as Set<"archive" | "deb">,
    log: (line) => console.log(`build: ${line}`),
  });
  console.log(`\nnovacron ${result.version} (SOURCE_DATE_EPOCH=${result.sourceDateEpoch}) in ${args.out}/:`);
  for (const a of result.artefacts) {
    console.log(`  ${basename(a.path).padEnd(48)} ${mb(a.bytes).padStart(9)}  ${a.sha256.slice(0, 16)}`);
  }
  console.log(`  SHA256SUMS, BUILDINFO\nbuilt in ${((performance.now() - t0) / 1000).toFixed(0)} s`);
} catch (err) {
  console.error(`build: ${(err as Error).message}`);
  process.exit(1);
}
