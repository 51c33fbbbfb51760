// The live feed shared by every page: one stream per signed-in tab, its events handed to whoever listens.
import { useEffect, useState } from "preact/hooks";
import { followStream, type LiveEvent } from "./api.ts";

type Handler = (e: LiveEvent) => void;
const handlers = new Set<Handler>();
const stateListeners = new Set<(s: string) => void>();
let state = "connecting";
let abort: AbortController | undefined;

/** Starts the stream (once); stops it on sign-out. */
export function startLive(): void {
  if (abort) return;
  abort = new AbortController();
  void followStream(
    (e) => {
      for (const h of handlers) h(e);
    },
    (s) => {
      state = s;
      for (const l of stateListeners) l(s);
    },
    abort.signal,
  );
}

export function stopLive(): void {
  abort?.abort();
  abort = undefined;
  state = "connecting";
}

/** Calls `fn` for each live event of the given kinds while the component is mounted. */
export function useLive(kinds: string[], fn: Handler, deps: unknown[] = []): void {
  useEffect(() => {
    const h: Handler = (e) => {
      if (kinds.includes(e.event)) fn(e);
    };
    handlers.add(h);
    return () => {
      handlers.delete(h);
    };
  }, deps);
}

/** The stream's state: `connecting`, `live`, `reconnecting`, `unavailable`. */
export function useLiveState(): string {
  const [s, set] = useState(state);
  useEffect(() => {
    stateListeners.add(set);
    set(state);
    return () => {
      stateListeners.delete(set);
    };
  }, []);
  return s;
}

/** Runs `fn` at most once per `ms` however often it is asked (refetches after bursts of events). */
export function throttle(fn: () => void, ms: number): () => void {
  let timer: ReturnType<typeof setTimeout> | undefined;
  return () => {
    if (timer) return;
    timer = setTimeout(() => {
      timer = undefined;
      fn();
    }, ms);
  };
}
