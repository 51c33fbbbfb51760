// The one lifecycle every agent module implements, and what each module is given to do its wiring.
import type { Clock } from "../shared/clock.ts";
import type { Logger } from "../shared/log.ts";
import type { MessageType } from "../shared/protocol/index.ts";
import type { AgentConfig } from "./config/index.ts";

/**
 * One part of the agent. The agent starts its modules in order and stops them in reverse; stop()
 * runs for every module whose start() began, so it must be safe after a start() that threw half-way.
 */
export interface Module {
  readonly name: string;
  /** Starts the module; `signal` aborts when the agent stops. */
  start(signal: AbortSignal): Promise<void>;
  /** Releases what start() took (handles, timers, sockets), whatever part of start() ran. */
  stop(): Promise<void>;
  /** The running config changed (already validated); `changed` names the keys that differ. */
  configChanged?(next: AgentConfig, changed: readonly string[]): void;
}

/** What every module is given: the running config, a logger, the clock, and the outbox for reports. */
export interface ModuleContext {
  /** The config in force now (it changes on a live reload). */
  config(): AgentConfig;
  readonly log: Logger;
  /** Time and timers: the system clock, or a test's fake one. */
  readonly clock: Clock;
  /** A must-deliver report: into the outbox (durable), then out when the link can. */
  report(type: MessageType, body: object): void;
}
