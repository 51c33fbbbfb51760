// The api module: the local HTTP API on loopback (health, metrics, status, tasks, ingest, cache), last to start.
import type { Server } from "bun";
import { ConfigError } from "../../shared/errors.ts";
import type { MetricsRegistry } from "../../shared/metrics.ts";
import { type AgentConfig, DEFAULT_API } from "../config/index.ts";
import type { Module, ModuleContext } from "../module.ts";
import { registerAgentMetrics } from "./agent-metrics.ts";
import { createLocalApi } from "./local-api.ts";

/** How many ports past the default the local API tries when the default one is taken. */
const API_FALLBACK_PORTS = 19;

type LocalApiDeps = Parameters<typeof createLocalApi>[0];
type MetricSources = Parameters<typeof registerAgentMetrics>[1];

/** Everything the API serves, read when asked. */
export type ApiModuleDeps = Omit<LocalApiDeps, "metrics"> & { sources: MetricSources };

/** The local API and the agent's own Prometheus gauges. */
export class ApiModule implements Module {
  readonly name = "api";
  readonly #ctx: ModuleContext;
  readonly #metrics: MetricsRegistry;
  readonly #d: ApiModuleDeps;
  #server: Server<unknown> | undefined;
  #registered = false;

  constructor(ctx: ModuleContext, metrics: MetricsRegistry, deps: ApiModuleDeps) {
    this.#ctx = ctx;
    this.#metrics = metrics;
    this.#d = deps;
  }

  /** Where the API listens (after start). */
  get url(): string | undefined {
    return this.#server ? `http://${this.#ctx.config().api.host}:${this.#server.port}` : undefined;
  }

  async start(): Promise<void> {
    if (!this.#registered) {
      registerAgentMetrics(this.#metrics, this.#d.sources);
      this.#registered = true;
    }
    const { sources: _, ...deps } = this.#d;
    const app = createLocalApi({ ...deps, metrics: this.#metrics });
    this.#server = listen(this.#ctx.config(), app.fetch);
    const moved =
      this.#server.port !== this.#ctx.config().api.port
        ? { default_port_taken: this.#ctx.config().api.port }
        : {};
    this.#ctx.log.info("local API listening", { url: this.url, ...moved });
  }

  async stop(): Promise<void> {
    this.#server?.stop(true);
    this.#server = undefined;
  }
}

// The default port is often taken (a second agent on the host, or anything else on 8080): the agent
// then takes the next free one and says where. A port given on purpose is kept or refused.
function listen(cfg: AgentConfig, fetch: (req: Request) => Response | Promise<Response>): Server<unknown> {
  const { host, port } = cfg.api;
  const byDefault = `${host}:${port}` === DEFAULT_API;
  const last = byDefault ? port + API_FALLBACK_PORTS : port;
  for (let p = port; ; p++) {
    try {
      return Bun.serve({ hostname: host, port: p, fetch });
    } catch (err) {
      const inUse =
        (err as { code?: string }).code === "EADDRINUSE" || /in use/i.test((err as Error).message);
      if (!inUse) throw err;
      if (p >= last) {
        throw new ConfigError(
          "api",
          byDefault
            ? `ports ${port}-${last} on ${host} are all in use; give the local API another address with --api HOST:PORT`
            : `${host}:${port} is in use; give the local API another address with --api HOST:PORT`,
        );
      }
    }
  }
}
