// Public surface of the agent's hub link.
export { HubLink, type Identity } from "./hub-link.ts";
export { type HubMessageDeps, handleHubMessage } from "./hub-messages.ts";
export { LinkModule, type LinkModuleDeps } from "./link-module.ts";
