// A task that runs one at a time: asked while it runs, it runs once more when that run ends (however
// often it was asked meanwhile), so the last ask is always answered by a run that began after it.

/** Wraps `task`; the function returned asks for a run. A run that fails is reported to `onError`. */
export function oneAtATime(task: () => Promise<void>, onError: (err: unknown) => void): () => void {
  let state: "idle" | "running" | "again" = "idle";
  const ask = (): void => {
    if (state !== "idle") {
      state = "again";
      return;
    }
    state = "running";
    void task()
      .catch(onError)
      .finally(() => {
        const again = state === "again";
        state = "idle";
        if (again) ask();
      });
  };
  return ask;
}
