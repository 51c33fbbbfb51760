// The dashboard carried inside a compiled hub: the build's entry sets it before the hub starts (scripts/build.ts).
import type { UiFile } from "./bundle.ts";

let files: UiFile[] | undefined;

/** Called once by the compiled hub's entry, before hub/main.ts runs. */
export function setEmbeddedUi(list: UiFile[]): void {
  files = list;
}

/** The embedded files, or undefined when the hub runs from a checkout. */
export function embeddedUi(): UiFile[] | undefined {
  return files;
}
