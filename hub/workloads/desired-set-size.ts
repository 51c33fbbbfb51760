// Whether a workload still fits the agent's frame limit once it is in a node's desired set (`allocs`).
import { TooLargeError } from "../../shared/errors.ts";
import { encodeCbor, encodeFrame, envelope } from "../../shared/protocol/index.ts";
import { DATA_OVERHEAD } from "../../shared/secure/index.ts";
import type { AllocSpec, WorkloadSpec } from "../../shared/workload/index.ts";

/** Bytes of the frame that sends `allocs` as a node's desired set, sealed. */
export function desiredSetBytes(allocs: AllocSpec[], hubId: string): number {
  const frame = encodeFrame(envelope("allocs", hubId, { generation: 2 ** 31, allocs }, { q: 2 ** 31 }));
  return frame.byteLength + DATA_OVERHEAD;
}

/**
 * Refuses a workload whose copy would not fit a node's desired set under `maxFrameBytes` (with what
 * the node already runs, for pinned nodes): the agent would refuse the frame and never run anything.
 * The error names the spec's largest field.
 */
export function checkDesiredSetSize(
  spec: WorkloadSpec,
  o: { maxFrameBytes: number; hubId: string; existingOn: (node: string) => AllocSpec[] },
): void {
  const alloc: AllocSpec = { id: "x".repeat(36), workload: spec.name, version: 2 ** 31, spec };
  const nodes = spec.nodes?.length ? spec.nodes : [undefined];
  for (const node of nodes) {
    const others = node === undefined ? [] : o.existingOn(node).filter((a) => a.workload !== spec.name);
    const bytes = desiredSetBytes([...others, alloc], o.hubId);
    if (bytes <= o.maxFrameBytes) continue;
    const [field, size] = Object.entries(spec)
      .map(([k, v]) => [k, encodeCbor(v).byteLength] as const)
      .sort((a, b) => b[1] - a[1])[0] ?? ["spec", bytes];
    const where = node === undefined ? "" : ` on node ${node} (with its ${others.length} other allocations)`;
    throw new TooLargeError(
      `${field}: the desired set${where} would be ${bytes} bytes, over the agents' frame limit of ${o.maxFrameBytes} bytes (max_frame_bytes); ${field} is ${size} bytes`,
      field,
    );
  }
}
