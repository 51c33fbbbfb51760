#!/usr/bin/env node
// `npx novacron-hub ...` from a checkout: the hub, run by the project's own Bun.
import { launch } from "./novacron.mjs";

launch("hub", process.argv.slice(2));
