// A real browser for dashboard tests and benchmarks: Debian's chromium, driven by playwright-core.
import { existsSync, mkdirSync } from "node:fs";
import { join } from "node:path";
import { type Browser, chromium } from "playwright-core";

/** Where Debian's chromium package puts the browser (overridable with CHROMIUM). */
export const CHROMIUM = process.env.CHROMIUM ?? "/usr/bin/chromium";

/** Why browser tests cannot run here, or undefined when they can. */
export function browserMissing(): string | undefined {
  return existsSync(CHROMIUM) ? undefined : `no chromium at ${CHROMIUM} (apt-get install chromium)`;
}

/** Launches headless chromium; dispose it with `await using`. */
export async function launchBrowser(): Promise<Browser & AsyncDisposable> {
  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    // The shared machine's /dev/shm is small; a sandbox needs user namespaces a container may not give.
    args: ["--disable-dev-shm-usage", "--no-sandbox", "--disable-gpu"],
  });
  return Object.assign(browser, { [Symbol.asyncDispose]: () => browser.close() });
}

/** The git-ignored directory test screenshots go to: test-artifacts/<name>/. */
export function artifactDir(name: string): string {
  const dir = join(import.meta.dir, "../../test-artifacts", name);
  mkdirSync(dir, { recursive: true });
  return dir;
}
