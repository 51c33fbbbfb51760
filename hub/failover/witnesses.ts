// Witnesses: a silent node's neighbours are asked whether they still reach it, to tell a partition from a crash.

/** What the witnesses said about one node. */
export interface WitnessReport {
  node: string;
  at: number;
  asked: number;
  /** Peers that gave an answer (yes or no); the rest timed out or were not connected. */
  answered: number;
  reached: number;
  /**
   * In words, for the transition's evidence: `2 of 3 site peers reach it` / `no witness reached it
   * (0 of 3)` / `no witness answered (3 asked)`.
   */
  note: string;
}

/** A node as the choice of witnesses sees it. */
export interface WitnessCandidate {
  id: string;
  labels: Record<string, string>;
  ready: boolean;
}

/**
 * Who to ask about `node`: ready peers in its site first, then in its region, at most `max`.
 * Undefined when the node names no address to check (`witness` label, host:port).
 */
export function chooseWitnesses(
  node: WitnessCandidate,
  fleet: readonly WitnessCandidate[],
  max = 3,
): { target: string; peers: string[]; scope: string } | undefined {
  const target = node.labels.witness;
  if (!target) return undefined;
  const others = fleet.filter((n) => n.id !== node.id && n.ready);
  for (const scope of ["site", "region"] as const) {
    const value = node.labels[scope];
    if (value === undefined) continue;
    const peers = others.filter((n) => n.labels[scope] === value).map((n) => n.id);
    if (peers.length > 0) return { target, peers: peers.sort().slice(0, max), scope };
  }
  return { target, peers: [], scope: "site" };
}

/** Asks each peer in parallel; a peer that does not answer counts as asked, not as reaching. */
export async function askWitnesses(
  node: string,
  choice: { target: string; peers: string[]; scope: string },
  ask: (peer: string, target: string) => Promise<boolean | undefined>,
  now: () => number,
): Promise<WitnessReport> {
  const answers = await Promise.all(choice.peers.map((p) => ask(p, choice.target).catch(() => undefined)));
  const reached = answers.filter((a) => a === true).length;
  const answered = answers.filter((a) => a !== undefined).length;
  const asked = choice.peers.length;
  const note =
    asked === 0
      ? `no ${choice.scope} peer to ask`
      : reached > 0
        ? `${reached} of ${asked} ${choice.scope} peers reach it`
        : answered > 0
          ? `no witness reached it (0 of ${asked})`
          : `no witness answered (${asked} asked)`;
  return { node, at: now(), asked, answered, reached, note };
}
