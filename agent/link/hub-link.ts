// The agent's side of the hub link lives in shared/link (a child hub links to its parent the same way).
export { HubLink, type Identity, type LinkStore, type RefusedCounts } from "../../shared/link/hub-link.ts";
