// A task that runs one at a time: asked while it runs, it runs once more when that run ends (however
// often it was asked meanwhile), so the last ask is always answered by a run that began after it.

/** Asks for a run; `idle()` resolves once no run is going or asked for. */
export type OneAtATime = (() => void) & { idle(): Promise<void> };

/** Wraps `task`; the function returned asks for a run. A run that fails is reported to `onError`. */
export function oneAtATime(task: () => Promise<void>, onError: (err: unknown) => void): OneAtATime {
  let state: "idle" | "running" | "again" = "idle";
  let current: Promise<void> = Promise.resolve();
  const ask = (): void => {
    if (state !== "idle") {
      state = "again";
      return;
    }
    state = "running";
    current = task()
      .catch(onError)
      .finally(() => {
        const again = state === "again";
        state = "idle";
        if (again) ask();
      });
  };
  return Object.assign(ask, {
    async idle(): Promise<void> {
      while (state !== "idle") await current;
    },
  });
}
