// Recognises a full disk in what SQLite and node:fs throw, so that every write path can treat it as a state.

/** True for SQLITE_FULL ("database or disk is full") and ENOSPC / EDQUOT from the file system. */
export function isDiskFull(err: unknown): boolean {
  if (!err || typeof err !== "object") return false;
  const code = (err as { code?: unknown }).code;
  if (code === "SQLITE_FULL" || code === "ENOSPC" || code === "EDQUOT") return true;
  const message = String((err as { message?: unknown }).message ?? "");
  return /database or disk is full|no space left on device|quota exceeded/i.test(message);
}

/** True for an SQLite I/O error (SQLITE_IOERR_*): on a nearly full disk these are ENOSPC underneath (the -shm file). */
export function isIoError(err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === "string" && code.startsWith("SQLITE_IOERR");
}
