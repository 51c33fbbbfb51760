// Notification latency between two replicas: publish on one HubSql, received on another's LISTEN connection.
//
//   bun bench/notify-latency.ts [--count 200] [--rounds 3] [--bytes 64] [--fsync on|off]
//
// Starts one private PostgreSQL (test/support/postgres.ts, fsync on by default, as a hub would run it)
// and opens two stores on it, as two replicas would. One subscribes to a channel; the other publishes
// `--count` notifications one at a time, each waiting for the last to arrive. The latency of one is from
// just before publish() to the subscriber's callback: the NOTIFY's round trip and commit, then the
// server's delivery to the listening connection. Twenty warm-up notifications are not counted.
import { parseArgs } from "node:util";
import { openNotifier, openPostgres } from "../hub/store/sql/index.ts";
import { startPostgres } from "../test/support/postgres.ts";
import { machineInfo, pct, printMachine, table } from "./_machine.ts";

const { values: opts } = parseArgs({
  args: process.argv.slice(2),
  options: {
    count: { type: "string", default: "200" },
    rounds: { type: "string", default: "3" },
    bytes: { type: "string", default: "64" },
    fsync: { type: "string", default: "on" },
  },
});
const COUNT = Number(opts.count);
const ROUNDS = Number(opts.rounds);
const BYTES = Number(opts.bytes);
if (!(Number.isInteger(COUNT) && COUNT >= 10 && COUNT <= 100_000))
  throw new Error("--count must be in 10..100000");
if (!(Number.isInteger(ROUNDS) && ROUNDS >= 1 && ROUNDS <= 20)) throw new Error("--rounds must be in 1..20");
if (!(Number.isInteger(BYTES) && BYTES >= 8 && BYTES <= 7999)) throw new Error("--bytes must be in 8..7999");
if (opts.fsync !== "on" && opts.fsync !== "off") throw new Error("--fsync takes on or off");

printMachine(machineInfo());
await using pg = await startPostgres({ fsync: opts.fsync === "on" });
const url = await pg.newDatabase("notify_bench");
console.log(
  `postgres on 127.0.0.1:${pg.port}, fsync ${opts.fsync}; ${COUNT} notifications of ${BYTES} bytes per round`,
);

const ms = (x: number) => x.toFixed(3);
const rows: (string | number)[][] = [["round", "p50 ms", "p90 ms", "p99 ms", "max ms", "per s"]];
const p50s: number[] = [];
const p99s: number[] = [];
for (let round = 1; round <= ROUNDS; round++) {
  const publisher = openPostgres(url, { max: 4 });
  const subscriber = openPostgres(url, { max: 4 });
  const pub = openNotifier(publisher);
  const sub = openNotifier(subscriber);
  let waiting: { id: string; done: () => void } | undefined;
  const subscription = await sub.subscribe("replica.b", (payload) => {
    if (waiting && payload.startsWith(waiting.id)) waiting.done();
  });
  const pad = "x".repeat(BYTES);
  const one = async (i: number): Promise<number> => {
    const id = `${round}:${i}:`;
    const arrived = new Promise<void>((done) => {
      waiting = { id, done };
    });
    const t0 = performance.now();
    await pub.publish("replica.b", (id + pad).slice(0, BYTES));
    await arrived;
    return performance.now() - t0;
  };
  for (let i = 0; i < 20; i++) await one(-i - 1);
  const lat: number[] = [];
  const start = performance.now();
  for (let i = 0; i < COUNT; i++) lat.push(await one(i));
  const perSec = COUNT / ((performance.now() - start) / 1000);
  await subscription.unsubscribe();
  await publisher.close();
  await subscriber.close();
  lat.sort((a, b) => a - b);
  p50s.push(pct(lat, 0.5));
  p99s.push(pct(lat, 0.99));
  rows.push([
    round,
    ms(pct(lat, 0.5)),
    ms(pct(lat, 0.9)),
    ms(pct(lat, 0.99)),
    ms(lat.at(-1)!),
    perSec.toFixed(0),
  ]);
}
console.log(table(rows));
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
console.log(`median of rounds: p50 ${ms(median(p50s))} ms, p99 ${ms(median(p99s))} ms`);
