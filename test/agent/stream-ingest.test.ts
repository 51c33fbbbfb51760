// Specification of the /v1/ingest body parser: JSON and CBOR points in, RequestError naming the field for anything bad.
import { describe, expect, test } from "bun:test";
import { Encoder } from "cbor-x/encode";
import { MAX_INGEST_BYTES, MAX_INGEST_POINTS, parseIngestBody } from "../../agent/stream/index.ts";
import { RequestError } from "../../shared/errors.ts";
import { mulberry32 as prng } from "../support/prng.ts";

const NOW = 1_718_000_000_000;
const DAY = 86_400_000;
const cbor = new Encoder({ useRecords: false, mapsAsObjects: true, tagUint8Array: false });
const utf8 = (s: string) => new TextEncoder().encode(s);

function refused(body: unknown, contentType = "application/json"): RequestError {
  try {
    parseIngestBody(body, contentType, NOW);
  } catch (err) {
    if (err instanceof RequestError) return err;
    throw err;
  }
  throw new Error(`accepted: ${String(body).slice(0, 200)}`);
}

describe("ingest body", () => {
  const doc = {
    points: [
      { series: "app.queue_depth", value: 12 },
      { series: "sensor.temp{room=a1}", t: NOW - 5000, value: -3.5 },
      { series: "Sensor.Humidity", t: NOW + 1000.7, value: 0 },
    ],
  };
  const expected = [
    { series: "app.queue_depth", t: NOW, value: 12 },
    { series: "sensor.temp{room=a1}", t: NOW - 5000, value: -3.5 },
    { series: "Sensor.Humidity", t: NOW + 1000, value: 0 },
  ];

  test("JSON as text, as bytes or already parsed; t defaults to now and is whole milliseconds", () => {
    expect(parseIngestBody(JSON.stringify(doc), "application/json", NOW)).toEqual(expected);
    expect(parseIngestBody(utf8(JSON.stringify(doc)), "application/json; charset=utf-8", NOW)).toEqual(
      expected,
    );
    expect(parseIngestBody(doc, "application/json", NOW)).toEqual(expected);
    expect(parseIngestBody(JSON.stringify(doc), undefined, NOW)).toEqual(expected);
  });

  test("a bare list of points is accepted too, and an empty list is no points", () => {
    expect(parseIngestBody(JSON.stringify(doc.points), "application/json", NOW)).toEqual(expected);
    expect(parseIngestBody("[]", "application/json", NOW)).toEqual([]);
    expect(parseIngestBody({ points: [] }, "application/json", NOW)).toEqual([]);
  });

  test("CBOR bodies decode to the same points", () => {
    expect(parseIngestBody(cbor.encode(doc), "application/cbor", NOW)).toEqual(expected);
    expect(parseIngestBody(cbor.encode(doc.points), "application/cbor", NOW)).toEqual(expected);
  });

  test("wrong types and values are refused naming the field", () => {
    const cases: [unknown, string, RegExp][] = [
      [
        {
          points: [
            { series: "a", value: 1 },
            { series: "b", value: "1.5" },
          ],
        },
        "points.1.value",
        /finite number/,
      ],
      [{ points: [{ series: "a" }] }, "points.0.value", /finite number/],
      [{ points: [{ series: "a", value: Number.NaN }] }, "points.0.value", /finite number/],
      [{ points: [{ series: "a", value: Number.POSITIVE_INFINITY }] }, "points.0.value", /finite number/],
      [{ points: [{ series: "a", value: true }] }, "points.0.value", /finite number/],
      [{ points: [{ series: 5, value: 1 }] }, "points.0.series", /string/],
      [{ points: [{ series: "", value: 1 }] }, "points.0.series", /1-200 characters/],
      [{ points: [{ series: "a b", value: 1 }] }, "points.0.series", /letters, digits/],
      [{ points: [{ series: "a-b", value: 1 }] }, "points.0.series", /letters, digits/],
      [{ points: [{ series: "a{x=1}{y=2}", value: 1 }] }, "points.0.series", /labels/],
      [{ points: [{ series: "a".repeat(201), value: 1 }] }, "points.0.series", /1-200/],
      [{ points: [{ series: "a", value: 1, t: "now" }] }, "points.0.t", /milliseconds/],
      [{ points: [{ series: "a", value: 1, t: NOW + DAY + 1 }] }, "points.0.t", /within one day/],
      [{ points: [{ series: "a", value: 1, t: 1_718_000_000 }] }, "points.0.t", /within one day/], // seconds, not ms
      [{ points: [{ series: "a", value: 1, unit: "C" }] }, "points.0.unit", /unknown field/],
      [{ points: [{ series: "a", value: 1 }, null] }, "points.1", /must be a map/],
      [{ points: [[1, 2]] }, "points.0", /must be a map/],
      [{ points: 5 }, "points", /must be a list/],
      [{ pts: [] }, "pts", /unknown field/],
      ["plain text", "body", /invalid JSON/],
      ["{", "body", /invalid JSON/],
      [42, "body", /must be/],
      [null, "body", /must be/],
    ];
    for (const [body, field, message] of cases) {
      const err = refused(typeof body === "string" ? body : body);
      expect(err.field, JSON.stringify(body)?.slice(0, 80)).toBe(field);
      expect(err.message, JSON.stringify(body)?.slice(0, 80)).toMatch(message);
      expect(err.code).toBe("bad_request");
    }
    expect(
      parseIngestBody({ points: [{ series: "a", value: 1, t: NOW - DAY }] }, "application/json", NOW),
    ).toHaveLength(1);
  });

  test("NaN and Infinity sent as CBOR floats are refused like any non-finite value", () => {
    expect(
      refused(cbor.encode({ points: [{ series: "a", value: Number.NaN }] }), "application/cbor").field,
    ).toBe("points.0.value");
    expect(
      refused(cbor.encode([{ series: "a", value: 1, t: Number.NEGATIVE_INFINITY }]), "application/cbor")
        .field,
    ).toBe("0.t");
  });

  test("huge inputs are refused: more than 10,000 points, or a body over the byte limit", () => {
    const many = Array.from({ length: MAX_INGEST_POINTS + 1 }, (_, i) => ({ series: "a", value: i }));
    expect(refused({ points: many }).message).toMatch(/too many points: 10001 \(at most 10000\)/);
    expect(refused({ points: many }).field).toBe("points");
    expect(refused(cbor.encode(many), "application/cbor").field).toBe("body");
    expect(parseIngestBody({ points: many.slice(1) }, "application/json", NOW)).toHaveLength(
      MAX_INGEST_POINTS,
    );
    const big = new Uint8Array(MAX_INGEST_BYTES + 1).fill(0x20);
    expect(refused(big).message).toMatch(/body too large/);
    expect(refused(big, "application/cbor").message).toMatch(/body too large/);
  });

  test("bad CBOR bytes are refused as invalid CBOR, never a crash", () => {
    const good = cbor.encode(doc);
    expect(refused(good.subarray(0, good.length - 3), "application/cbor").message).toMatch(/invalid CBOR/);
    expect(refused(new Uint8Array([0x1c]), "application/cbor").message).toMatch(/invalid CBOR/); // reserved token
    // An array header claiming 2^64 elements, and a string header claiming 4 GiB, with no data behind them.
    const hugeArray = new Uint8Array([0x9b, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]);
    expect(refused(hugeArray, "application/cbor").message).toMatch(/invalid CBOR/);
    expect(refused(new Uint8Array([0x7a, 0xff, 0xff, 0xff, 0xff]), "application/cbor").message).toMatch(
      /invalid CBOR/,
    );
    expect(refused(new Uint8Array([]), "application/cbor").field).toBe("body");
    // A CBOR body has to be bytes.
    expect(refused(doc, "application/cbor").message).toMatch(/must be bytes/);
  });

  test("random and mutated CBOR bytes only ever parse or raise RequestError (seeded, 3000 cases)", () => {
    const rand = prng(99);
    const good = cbor.encode(doc);
    for (let i = 0; i < 3000; i++) {
      let bytes: Uint8Array;
      if (i % 2 === 0) {
        bytes = new Uint8Array(1 + Math.floor(rand() * 64)).map(() => Math.floor(rand() * 256));
      } else {
        bytes = good.slice();
        for (let k = 0; k < 3; k++) bytes[Math.floor(rand() * bytes.length)] = Math.floor(rand() * 256);
      }
      try {
        const points = parseIngestBody(bytes, "application/cbor", NOW);
        for (const p of points) expect(Number.isFinite(p.value) && Number.isFinite(p.t)).toBe(true);
      } catch (err) {
        expect(err, `case ${i}`).toBeInstanceOf(RequestError);
      }
    }
  });

  test("an unsupported content type is refused naming the header", () => {
    const err = refused("{}", "text/csv");
    expect(err.field).toBe("content-type");
    expect(err.message).toMatch(/application\/json or application\/cbor/);
  });
});
