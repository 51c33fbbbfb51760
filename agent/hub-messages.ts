// What the agent does with the hub's own messages: desired allocations, commands, config revisions.
import type { Logger } from "../shared/log.ts";
import type { Body, Message } from "../shared/protocol/index.ts";
import type { LocalCache } from "./cache/index.ts";
import type { TaskManager } from "./tasks/index.ts";

export interface HubMessageDeps {
  tasks: TaskManager | undefined;
  cache: LocalCache | undefined;
  log: Logger;
  /** Answers a command on the live channel. */
  reply: (body: Body<"reply">) => void;
}

/** Applies one hub-to-node message other than an ack. */
export function handleHubMessage(msg: Message, d: HubMessageDeps): void {
  switch (msg.t) {
    case "allocs":
      d.tasks?.reconcile(msg.b.generation, msg.b.allocs);
      return;
    case "command": {
      const { id, kind, args } = msg.b;
      if (kind === "cache_put") {
        // Hub-pushed reference data: a version at or below the one held is refused as stale.
        const put = d.cache?.put(String(args.key), String(args.value), {
          version: Number(args.version),
          source: "hub",
          ...(typeof args.ttl_ms === "number" ? { ttl_ms: args.ttl_ms } : {}),
        });
        if (put && !put.stored)
          d.log.debug("hub cache entry not stored", { key: String(args.key), reason: put.reason });
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
    case "config":
      d.log.info("hub sent a config revision; applying hub config is not supported yet", { rev: msg.b.rev });
      return;
    default:
      return;
  }
}
