// Reads the small kernel text files the collector samples; an unreadable file means an absent series, never an exception.
import { readFileSync } from "node:fs";

// readFileSync measured ~10 µs a file here, the same as open+readSync into a reused buffer, while
// Bun.file().text() costs ~48 µs a file sequentially (~14 µs with Promise.all) and would make sample() async.
// Bun.file() also reports size 0 for /proc files, which are generated on read.

/** Returns the file's text, or undefined when it is missing or unreadable (no /proc, no thermal zones, a zone that answers EINVAL). */
export function readText(path: string): string | undefined {
  try {
    return readFileSync(path, "utf8");
  } catch {
    return undefined;
  }
}
