// Gives a node `count` long-running tasks through the hub's API and waits until its agent runs them all.
import type { HubHandle } from "../test/support/processes.ts";
import { waitFor } from "../test/support/wait.ts";

export async function assignTasks(hub: HubHandle, api: string, nodeId: string, count: number): Promise<void> {
  await waitFor(
    async () => ((await (await fetch(`${api}/v1/status`)).json()) as { connected: boolean }).connected,
    { what: `${nodeId} connected`, timeoutMs: 60_000 },
  );
  for (let i = 0; i < count; i++) {
    const res = await hub.api("/api/v1/workloads", {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({
        name: `${nodeId}-t${i}`,
        driver: "exec",
        command: "/bin/sleep",
        args: ["3600"],
        nodes: [nodeId],
      }),
    });
    if (res.status !== 201) throw new Error(`POST workload ${i}: ${res.status}`);
  }
  await waitFor(
    async () => {
      const r = (await (await fetch(`${api}/v1/tasks`)).json()) as { tasks: { status: string }[] };
      return r.tasks.filter((t) => t.status === "running").length === count;
    },
    { what: `${count} running tasks on ${nodeId}`, timeoutMs: 120_000 },
  );
}
