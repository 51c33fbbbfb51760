// What the counters on every fifth heartbeat add to control traffic: frame sizes and bytes per agent-hour.
//
//   bun bench/heartbeat-counters.ts [--heartbeat-s 10]
//
// Encodes a heartbeat envelope as the link does (encodeFrame), without and with the counters a store
// reports (epoch, produced, dropped, held; dropped_by only when something was dropped), with 13-digit
// timestamps and counters of a node that has run for months. The session layer adds the same 25 bytes
// to either, so the difference is what the counters cost on the wire before TCP/IP headers.
import { parseArgs } from "node:util";
import { encodeFrame, envelope } from "../shared/protocol/index.ts";
import { machineInfo, printMachine } from "./_machine.ts";

const { values: opts } = parseArgs({
  args: process.argv.slice(2),
  options: { "heartbeat-s": { type: "string", default: "10" } },
});
const beatS = Number(opts["heartbeat-s"]);
// The link's default: every fifth beat, at most a minute apart.
const everyS = Math.min(60, 5 * beatS);
const ts = Date.now();
const node = "edge-node-0001";
const size = (body: object) => encodeFrame(envelope("heartbeat", node, body as never, { ts })).byteLength;
const plain = size({ pending: 3, rtt: 12 });
const counters = { epoch: "3f9c0a1b2c3d4e5f", produced: 123_456_789, dropped: 0, held: 4567 };
const quiet = size({ pending: 3, rtt: 12, ...counters });
const dropping = size({ pending: 3, rtt: 12, ...counters, dropped: 1234, dropped_by: { budget: 1234 } });
const perHour = 3600 / everyS;
printMachine(machineInfo());
console.log(`heartbeat every ${beatS} s, counters on one every ${everyS} s (${perHour} an hour)`);
console.log(
  `heartbeat frame: ${plain} B; with counters: ${quiet} B (+${quiet - plain}); with a drop reason: ${dropping} B (+${dropping - plain})`,
);
console.log(
  `added per agent-hour: ${(perHour * (quiet - plain)).toFixed(0)} B, or ${(perHour * (dropping - plain)).toFixed(0)} B while dropping`,
);
