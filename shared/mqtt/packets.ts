// MQTT 3.1.1 control packets: the subset an agent and a hub need, encoded and parsed by hand.
//
// Why not mqtt.js or mqtt-packet: both pull in Node streams (bl, readable-stream), which cost an
// agent ~12-15 MB of resident memory (bench/agent-memory.ts) against a 35 MB budget. The subset
// below (CONNECT with a Will, PUBLISH QoS 0/1, PUBACK, SUBSCRIBE, PING, DISCONNECT) is small.

export enum PacketType {
  Connect = 1,
  Connack = 2,
  Publish = 3,
  Puback = 4,
  Pubrec = 5,
  Pubrel = 6,
  Pubcomp = 7,
  Subscribe = 8,
  Suback = 9,
  Pingreq = 12,
  Pingresp = 13,
  Disconnect = 14,
}

export interface ConnectOptions {
  clientId: string;
  clean: boolean;
  keepaliveSec: number;
  username?: string;
  password?: string;
  will?: { topic: string; payload: Uint8Array; qos: 0 | 1; retain: boolean };
}

export type Packet =
  | { type: PacketType.Connack; sessionPresent: boolean; returnCode: number }
  | {
      type: PacketType.Publish;
      topic: string;
      payload: Uint8Array;
      qos: 0 | 1 | 2;
      retain: boolean;
      dup: boolean;
      id: number | undefined;
    }
  | { type: PacketType.Puback | PacketType.Pubrec | PacketType.Pubrel | PacketType.Pubcomp; id: number }
  | { type: PacketType.Suback; id: number; granted: number[] }
  | { type: PacketType.Pingresp | PacketType.Pingreq | PacketType.Disconnect };

/** A packet the broker sent that breaks the protocol; the connection must be closed. */
export class MqttProtocolError extends Error {}

const encoder = new TextEncoder();
const decoder = new TextDecoder("utf-8", { fatal: true });

/** CONNACK return codes of MQTT 3.1.1, section 3.2.2.3. */
export const CONNACK_REASONS: Record<number, string> = {
  1: "unacceptable protocol version",
  2: "client identifier rejected",
  3: "server unavailable",
  4: "bad user name or password",
  5: "not authorized",
};

function remainingLength(n: number): number[] {
  const out: number[] = [];
  do {
    let byte = n % 128;
    n = Math.floor(n / 128);
    if (n > 0) byte |= 0x80;
    out.push(byte);
  } while (n > 0);
  return out;
}

// Builds one packet from its first byte and body parts (strings are written with a u16 length).
function packet(first: number, parts: (Uint8Array | number[])[]): Uint8Array {
  const bodyLength = parts.reduce((n, p) => n + p.length, 0);
  const header = [first, ...remainingLength(bodyLength)];
  const out = new Uint8Array(header.length + bodyLength);
  out.set(header, 0);
  let at = header.length;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

const u16 = (n: number) => [(n >> 8) & 0xff, n & 0xff];

function str(s: string | Uint8Array): Uint8Array {
  const bytes = typeof s === "string" ? encoder.encode(s) : s;
  if (bytes.length > 0xffff) throw new RangeError("MQTT string longer than 65535 bytes");
  const out = new Uint8Array(2 + bytes.length);
  out.set(u16(bytes.length), 0);
  out.set(bytes, 2);
  return out;
}

/** CONNECT for protocol level 4 (3.1.1). */
export function connectPacket(o: ConnectOptions): Uint8Array {
  let flags = o.clean ? 0x02 : 0;
  const payload: Uint8Array[] = [str(o.clientId)];
  if (o.will) {
    flags |= 0x04 | (o.will.qos << 3) | (o.will.retain ? 0x20 : 0);
    payload.push(str(o.will.topic), str(o.will.payload));
  }
  if (o.username !== undefined) {
    flags |= 0x80;
    payload.push(str(o.username));
  }
  if (o.password !== undefined) {
    flags |= 0x40;
    payload.push(str(o.password));
  }
  return packet(PacketType.Connect << 4, [str("MQTT"), [4, flags, ...u16(o.keepaliveSec)], ...payload]);
}

/** PUBLISH; `id` is required for QoS 1. */
export function publishPacket(
  topic: string,
  payload: Uint8Array,
  opts: { qos: 0 | 1; retain: boolean; id?: number; dup?: boolean },
): Uint8Array {
  const first = (PacketType.Publish << 4) | (opts.dup ? 0x08 : 0) | (opts.qos << 1) | (opts.retain ? 1 : 0);
  const parts: (Uint8Array | number[])[] = [str(topic)];
  if (opts.qos > 0) parts.push(u16(opts.id ?? 0));
  parts.push(payload);
  return packet(first, parts);
}

/** PUBACK (and the other id-only acknowledgements). */
export function ackPacket(
  type: PacketType.Puback | PacketType.Pubrec | PacketType.Pubcomp,
  id: number,
): Uint8Array {
  return packet(type << 4, [u16(id)]);
}

/** PUBREL has fixed-header flags 0b0010 (3.1.1 section 3.6.1). */
export function pubrelPacket(id: number): Uint8Array {
  return packet((PacketType.Pubrel << 4) | 0x02, [u16(id)]);
}

/** SUBSCRIBE with fixed-header flags 0b0010 (3.1.1 section 3.8.1). */
export function subscribePacket(id: number, filters: { topic: string; qos: 0 | 1 }[]): Uint8Array {
  const parts: (Uint8Array | number[])[] = [u16(id)];
  for (const f of filters) parts.push(str(f.topic), [f.qos]);
  return packet((PacketType.Subscribe << 4) | 0x02, parts);
}

export const PINGREQ = new Uint8Array([PacketType.Pingreq << 4, 0]);
export const DISCONNECT = new Uint8Array([PacketType.Disconnect << 4, 0]);

/**
 * Splits a byte stream into packets. Feed it whatever the socket delivers; it returns the whole
 * packets and keeps the rest. Throws MqttProtocolError on malformed input or a packet over `maxBytes`.
 */
export class PacketReader {
  #buf: Uint8Array = new Uint8Array(0);
  readonly #maxBytes: number;

  constructor(maxBytes: number) {
    this.#maxBytes = maxBytes;
  }

  push(chunk: Uint8Array): Packet[] {
    const buf = this.#buf.length === 0 ? chunk : concat(this.#buf, chunk);
    const out: Packet[] = [];
    let at = 0;
    for (;;) {
      if (buf.length - at < 2) break;
      let length = 0;
      let multiplier = 1;
      let i = at + 1;
      let complete = false;
      for (;;) {
        if (i >= buf.length) break;
        const byte = buf[i]!;
        length += (byte & 0x7f) * multiplier;
        i += 1;
        if ((byte & 0x80) === 0) {
          complete = true;
          break;
        }
        multiplier *= 128;
        if (i - at > 4) throw new MqttProtocolError("remaining length longer than 4 bytes");
      }
      if (!complete) break;
      if (length > this.#maxBytes)
        throw new MqttProtocolError(`packet of ${length} bytes exceeds ${this.#maxBytes}`);
      if (buf.length < i + length) break;
      out.push(parse(buf[at]!, buf.subarray(i, i + length)));
      at = i + length;
    }
    // Copy the tail once per chunk (not once per packet: a chunk of a thousand small packets would
    // copy itself a thousand times), so a large consumed buffer is not kept alive by a small remainder.
    this.#buf = at === buf.length ? new Uint8Array(0) : at === 0 ? buf : buf.slice(at);
    return out;
  }
}

function concat(a: Uint8Array, b: Uint8Array): Uint8Array {
  const out = new Uint8Array(a.length + b.length);
  out.set(a, 0);
  out.set(b, a.length);
  return out;
}

function need(body: Uint8Array, n: number, what: string): void {
  if (body.length < n) throw new MqttProtocolError(`${what} is truncated`);
}

function parse(first: number, body: Uint8Array): Packet {
  const type = first >> 4;
  switch (type) {
    case PacketType.Connack:
      need(body, 2, "CONNACK");
      return { type, sessionPresent: (body[0]! & 1) === 1, returnCode: body[1]! };
    case PacketType.Publish: {
      const bits = (first >> 1) & 3;
      if (bits === 3) throw new MqttProtocolError("PUBLISH with QoS 3");
      const qos = bits as 0 | 1 | 2;
      need(body, 2, "PUBLISH topic");
      const topicLength = (body[0]! << 8) | body[1]!;
      need(body, 2 + topicLength + (qos > 0 ? 2 : 0), "PUBLISH");
      let topic: string;
      try {
        topic = decoder.decode(body.subarray(2, 2 + topicLength));
      } catch {
        throw new MqttProtocolError("PUBLISH topic is not valid UTF-8");
      }
      let at = 2 + topicLength;
      let id: number | undefined;
      if (qos > 0) {
        id = (body[at]! << 8) | body[at + 1]!;
        at += 2;
      }
      return {
        type,
        topic,
        payload: body.slice(at),
        qos,
        retain: (first & 1) === 1,
        dup: (first & 8) === 8,
        id,
      };
    }
    case PacketType.Puback:
    case PacketType.Pubrec:
    case PacketType.Pubrel:
    case PacketType.Pubcomp:
      need(body, 2, "acknowledgement");
      return { type, id: (body[0]! << 8) | body[1]! };
    case PacketType.Suback:
      need(body, 3, "SUBACK");
      return { type, id: (body[0]! << 8) | body[1]!, granted: [...body.subarray(2)] };
    case PacketType.Pingresp:
    case PacketType.Pingreq:
    case PacketType.Disconnect:
      return { type };
    default:
      throw new MqttProtocolError(`unexpected packet type ${type} from the broker`);
  }
}
