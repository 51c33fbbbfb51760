#!/usr/bin/env node
// `npx novacron-agent ...` from a checkout: the agent, run by the project's own Bun.
import { launch } from "./novacron.mjs";

launch("agent", process.argv.slice(2));
