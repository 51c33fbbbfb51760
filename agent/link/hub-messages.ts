// What the agent does with the hub's own messages: desired allocations, commands, config revisions.
import { RequestError } from "../../shared/errors.ts";
import type { Logger } from "../../shared/log.ts";
import type { Body, Message } from "../../shared/protocol/index.ts";
import type { DecisionVerdict } from "../../shared/rules/index.ts";
import { parseCacheSpec } from "../../shared/cache/index.ts";
import type { LocalCache, NamedCaches } from "../cache/index.ts";
import { tcpConnectMs } from "../collect/index.ts";
import type { Fencing, TaskManager } from "../tasks/index.ts";

export interface HubMessageDeps {
  tasks: TaskManager | undefined;
  /** Keeps allocs stopped by edge-side fencing out of the hub's desired set. */
  fencing?: Fencing | undefined;
  cache: LocalCache | undefined;
  /** The named caches: replicas of writes made elsewhere, and declarations the hub pushes. */
  named?: NamedCaches | undefined;
  log: Logger;
  /** The hub answered a request of this node (a strong cache read). */
  onReply?: (reply: Body<"reply">) => void;
  /** Answers a command on the live channel. */
  reply: (body: Body<"reply">) => void;
  /** The rule runner: hub rule sets in, the hub's verdicts on decisions in. */
  rules?: {
    applyHub(rev: number, config: Record<string, unknown>): boolean;
    onVerdicts(verdicts: readonly DecisionVerdict[]): void;
  };
}

/** The verdicts of a `decision_verdicts` command; a malformed list is refused naming the field. */
function verdictsOf(args: Record<string, unknown>): DecisionVerdict[] {
  const list = args.verdicts;
  if (!Array.isArray(list)) throw new RequestError("must be a list of verdicts", "verdicts");
  return list.map((v, i) => {
    const x = v as Record<string, unknown> | null;
    if (
      !x ||
      typeof x.id !== "number" ||
      typeof x.rule !== "string" ||
      typeof x.at !== "number" ||
      typeof x.verdict !== "string" ||
      typeof x.reason !== "string"
    ) {
      throw new RequestError("must be {id, rule, at, verdict, reason}", `verdicts[${i}]`);
    }
    return { id: x.id, rule: x.rule, at: x.at, verdict: x.verdict, reason: x.reason };
  });
}

function stringArg(args: Record<string, unknown>, field: string): string {
  const x = args[field];
  if (typeof x !== "string") throw new RequestError("must be a string", field);
  return x;
}

function versionArg(args: Record<string, unknown>): number {
  const x = args.version;
  if (typeof x !== "number" || !Number.isSafeInteger(x) || x < 0)
    throw new RequestError("must be a non-negative integer", "version");
  return x;
}

/** Applies one hub-to-node message other than an ack. */
export function handleHubMessage(msg: Message, d: HubMessageDeps): void {
  switch (msg.t) {
    case "allocs":
      d.tasks?.reconcile(msg.b.generation, d.fencing ? d.fencing.filter(msg.b.allocs) : msg.b.allocs);
      return;
    case "command": {
      const { id, kind, args } = msg.b;
      if (kind === "cache_put") {
        // Hub-pushed reference data: a version at or below the one held is refused as stale. A key or
        // value outside the shared definition throws (the link refuses and reports it, never a crash).
        const put = d.cache?.put(stringArg(args, "key"), stringArg(args, "value"), {
          version: versionArg(args),
          source: "hub",
          ...(args.ttl_ms !== undefined ? { ttl_ms: args.ttl_ms as number } : {}),
        });
        if (put && !put.stored)
          d.log.debug("hub cache entry not stored", { key: String(args.key), reason: put.reason });
      } else if (kind === "cache_replica") {
        d.named?.onReplica(args);
      } else if (kind === "cache_define") {
        const name = stringArg(args, "name");
        d.named?.define(name, parseCacheSpec(args.spec, "spec"));
      } else if (kind === "cache_delete") {
        d.cache?.deleteHub(stringArg(args, "key"), versionArg(args));
      } else if (kind === "decision_verdicts") {
        d.rules?.onVerdicts(verdictsOf(args));
      } else if (kind === "witness") {
        // Failover asks: can this node reach a silent peer? (its address: the peer's `witness` label)
        const target = String(args.target ?? "");
        if (!/^.+:\d{1,5}$/.test(target)) {
          d.reply({ id, ok: false, body: "target: must be host:port" });
          return;
        }
        const timeout = Math.min(Math.max(Number(args.timeout_ms ?? 1500), 50), 10_000);
        void tcpConnectMs(target, timeout).then((ms) =>
          d.reply({ id, ok: true, body: { reached: ms !== undefined, ...(ms !== undefined ? { ms } : {}) } }),
        );
      } else if (kind === "logs") {
        const logs = d.tasks?.logs(String(args.alloc), Number(args.lines ?? 200));
        d.reply(
          logs === undefined
            ? { id, ok: false, body: `no allocation ${String(args.alloc)} here` }
            : { id, ok: true, body: logs },
        );
      } else {
        d.reply({ id, ok: false, body: `unknown command ${kind}` });
      }
      return;
    }
    case "reply":
      d.onReply?.(msg.b);
      return;
    case "config":
      // Rule sets are what a hub config carries today; the rule runner logs what it applied or refused.
      d.rules?.applyHub(msg.b.rev, msg.b.config);
      return;
    default:
      return;
  }
}
