#!/usr/bin/env node
// `npx novacron ...` from a checkout: the operator CLI, run by the project's own Bun.
import { launch } from "./novacron.mjs";

launch("cli", process.argv.slice(2));
