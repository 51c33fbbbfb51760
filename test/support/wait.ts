// Waiting on conditions in tests: poll until true or fail with a message after a timeout.

/** Polls `check` until it returns a truthy value, which is returned; throws after `timeoutMs`. */
export async function waitFor<T>(
  check: () => T | Promise<T>,
  opts: { timeoutMs?: number; intervalMs?: number; what?: string } = {},
): Promise<NonNullable<T>> {
  const deadline = Date.now() + (opts.timeoutMs ?? 20_000);
  let last: unknown;
  while (Date.now() < deadline) {
    try {
      const v = await check();
      if (v) return v as NonNullable<T>;
      last = v;
    } catch (err) {
      last = err;
    }
    await Bun.sleep(opts.intervalMs ?? 100);
  }
  const detail = last instanceof Error ? last.message : JSON.stringify(last);
  throw new Error(
    `timed out after ${opts.timeoutMs ?? 20_000} ms waiting for ${opts.what ?? "condition"} (last: ${detail})`,
  );
}
