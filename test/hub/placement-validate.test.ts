// Specification of placement request validation: bad requests are refused with an error naming the field.
import { describe, expect, test } from "bun:test";
import { fleetNode } from "../../bench/placement-fleet.ts";
import { indexFleet, validatePlacementRequest, validationContext } from "../../hub/placement/index.ts";
import { RequestError } from "../../shared/errors.ts";

const fleet = indexFleet({
  nodes: [fleetNode("gw-1", { rtt_ms: { "market:NYSE": 0.4 } }), fleetNode("gw-2")],
});
const ctx = validationContext(fleet, ["db"]);

/** The RequestError a body is refused with. */
function refusal(body: unknown): RequestError {
  try {
    validatePlacementRequest(body, ctx);
  } catch (err) {
    expect(err).toBeInstanceOf(RequestError);
    return err as RequestError;
  }
  throw new Error(`accepted: ${JSON.stringify(body)}`);
}

describe("placement: request validation", () => {
  test("a full, valid workload spec passes; fields that are not placement's are left alone", () => {
    const body = {
      name: "quote-feed",
      driver: "exec",
      command: "/usr/bin/feed",
      replicas: 2,
      resources: { cpu_millis: 500, mem_mb: 256, disk_mb: 0 },
      nodes: ["gw-1"],
      placement: {
        levels: [2, 3],
        arch: ["x64"],
        capabilities: ["market:NYSE"],
        prefer_capabilities: ["ssd"],
        labels: "site in (a,b), !maintenance",
        jurisdictions: ["US"],
        regions: ["us-east"],
        latency: { target: "market:NYSE", max_ms: 1 },
        prefer_level: 2,
        preset: "latency-first",
        weights: { cost: 5 },
        strategy: "spread",
        spread: { by: "zone", max_per: 1 },
        affinity: { workload: "db", by: "site" },
      },
    };
    const request = validatePlacementRequest(body, ctx);
    expect(request.placement?.latency).toEqual({ target: "market:NYSE", max_ms: 1 });
    expect(request).not.toHaveProperty("command");
    expect(validatePlacementRequest({}, ctx)).toEqual({});
  });

  test("wrong types name the field and what was expected", () => {
    const cases: [unknown, string, string][] = [
      [
        { resources: { cpu_millis: "lots" } },
        "resources.cpu_millis",
        'wrong type (expected number, got "lots")',
      ],
      [{ replicas: 1.5 }, "replicas", "must be an integer"],
      [{ nodes: "gw-1" }, "nodes", 'wrong type (expected Array, got "gw-1")'],
      [{ placement: { levels: "1-3" } }, "placement.levels", 'wrong type (expected Array, got "1-3")'],
      [{ placement: null }, "placement", "wrong type (expected Object, got null)"],
      [
        { placement: { labels: { site: 3 } } },
        "placement.labels",
        "must be an object of label values or a selector string",
      ],
      ["hello", "request", 'wrong type (expected Object, got "hello")'],
    ];
    for (const [body, field, message] of cases) {
      const err = refusal(body);
      expect(err.code).toBe("bad_request");
      expect(err.field).toBe(field);
      expect(err.message).toBe(`${field}: ${message}`);
    }
  });

  test("impossible ranges and values are refused", () => {
    const cases: [unknown, string, string][] = [
      [{ resources: { mem_mb: -1 } }, "resources.mem_mb", "must be 0 or more"],
      [{ replicas: -1 }, "replicas", "must be 0 to 10000"],
      [{ placement: { levels: [4, 2] } }, "placement.levels", "min level 4 is above max level 2"],
      [{ placement: { levels: [0, 2] } }, "placement.levels.0", "must be 1 to 5"],
      [
        { placement: { prefer_level: 5, levels: [1, 3] } },
        "placement.prefer_level",
        "5 is outside levels 1-3",
      ],
      [
        { placement: { latency: { target: "hub", max_ms: 0 } } },
        "placement.latency.max_ms",
        "must be above 0",
      ],
      [
        { placement: { spread: { by: "zone", max_per: 0 } } },
        "placement.spread.max_per",
        "must be 1 or more",
      ],
      [{ placement: { jurisdictions: [] } }, "placement.jurisdictions", "must list at least one"],
      [{ placement: { weights: { latency: -1 } } }, "placement.weights.latency", "must be 0 or more"],
      [
        { placement: { weights: { resources: 0, latency: 0, capabilities: 0, level: 0, availability: 0 } } },
        "placement.weights",
        "at least one weight must be above 0",
      ],
      [{ placement: { labels: "site in (a,b" } }, "placement.labels", "unbalanced parentheses"],
      [
        { name: "web", placement: { affinity: { workload: "web" } } },
        "placement.affinity.workload",
        "a workload cannot follow itself",
      ],
    ];
    for (const [body, field, message] of cases) {
      const err = refusal(body);
      expect(err.field).toBe(field);
      expect(err.message).toBe(`${field}: ${message}`);
    }
  });

  test("unknown names are refused: probe target, node, workload, preset, strategy, domain, field", () => {
    const cases: [unknown, string, string][] = [
      [
        { placement: { latency: { target: "market:NASDAQ", max_ms: 1 } } },
        "placement.latency.target",
        'unknown target "market:NASDAQ" (known: hub, market:NYSE)',
      ],
      [{ nodes: ["gw-1", "ghost"] }, "nodes.1", 'unknown node "ghost"'],
      [
        { placement: { affinity: { workload: "cache" } } },
        "placement.affinity.workload",
        'unknown workload "cache"',
      ],
      [
        { placement: { preset: "fastest" } },
        "placement.preset",
        "must be one of balanced, latency-first, cost-first, availability-first",
      ],
      [{ placement: { strategy: "random" } }, "placement.strategy", 'must be "binpack" or "spread"'],
      [
        { placement: { spread: { by: "rack" } } },
        "placement.spread.by",
        'must be "node", "site", "zone" or "region"',
      ],
      [{ placement: { capabilites: ["gpu"] } }, "placement.capabilites", "unknown field"],
      [{ placement: { weights: { speed: 1 } } }, "placement.weights.speed", "unknown field"],
      [{ placement: { latency: { max_ms: 1 } } }, "placement.latency.target", "is required"],
    ];
    for (const [body, field, message] of cases) {
      const err = refusal(body);
      expect(err.field).toBe(field);
      expect(err.message).toBe(`${field}: ${message}`);
    }
  });

  test("without a context, names are not checked against a fleet", () => {
    const body = { nodes: ["anything"], placement: { latency: { target: "site:plant-9", max_ms: 2 } } };
    expect(validatePlacementRequest(body)).toEqual(body);
  });
});
