// Public surface of the agent's hub link.
export { HubLink, type Identity } from "./hub-link.ts";
