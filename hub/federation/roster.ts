// A subtree's roster (every node id) on the wire: ids one per line, zstd-compressed; decoded with bounds.
import { ProtocolError } from "../../shared/errors.ts";
import { ID_PATTERN, SUMMARY_LIMITS } from "../../shared/protocol/index.ts";
import { decompress } from "../../shared/protocol/metrics-codec.ts";

/** Most bytes a roster may decompress to: the most ids at 129 bytes each (128 and a newline). */
export const ROSTER_MAX_BYTES = SUMMARY_LIMITS.roster * 129;

/** Packs ids for `roster_z`. */
export function encodeRoster(ids: readonly string[]): Uint8Array<ArrayBuffer> {
  return new Uint8Array(Bun.zstdCompressSync(new TextEncoder().encode(ids.join("\n"))));
}

/** Unpacks `roster_z`: a bomb, an id that is not one, or too many ids is refused whole. */
export function decodeRoster(z: Uint8Array): string[] {
  const text = new TextDecoder().decode(decompress(z, ROSTER_MAX_BYTES));
  if (text === "") return [];
  const ids = text.split("\n");
  if (ids.length > SUMMARY_LIMITS.roster)
    throw new ProtocolError(
      "bad_body",
      `roster_z: ${ids.length} ids, over the limit of ${SUMMARY_LIMITS.roster}`,
    );
  for (const id of ids)
    if (id.length > 128 || !ID_PATTERN.test(id))
      throw new ProtocolError("bad_body", `roster_z: ${JSON.stringify(id.slice(0, 40))} is not a node id`);
  return ids;
}
