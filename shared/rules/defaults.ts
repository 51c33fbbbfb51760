// The default rule set: the resource limits the project started from (max CPU 80%, memory 85%, disk 90%, min 1 GiB free), written as a YAML rule list would be.
import { type CompiledRuleSet, compileRules } from "./compile.ts";
import type { RuleInput } from "./schema.ts";

const GIB = 1024 ** 3;

/**
 * Max CPU 80%, max memory 85%, max disk 90% on `/`, min free memory 1 GiB. In force when the config has no
 * `rules:` key; a `rules:` list replaces it (copy these into the file to keep them beside your own).
 */
export const DEFAULT_RULES: readonly RuleInput[] = [
  {
    name: "cpu-high",
    when: "cpu.util > 80",
    for: "30s",
    clear_when: "cpu.util < 70",
    clear_for: "60s",
    cooldown: "5m",
    severity: "warning",
    actions: [{ alert: "CPU above 80% for 30 s" }, { pause_tasks_below: 5 }],
    clear_actions: [{ resume_tasks: true }],
  },
  {
    name: "memory-high",
    when: "mem.used_pct > 85",
    for: "30s",
    clear_when: "mem.used_pct < 80",
    clear_for: "60s",
    cooldown: "5m",
    severity: "warning",
    actions: [{ alert: "memory above 85% for 30 s" }, { pause_tasks_below: 5 }],
    clear_actions: [{ resume_tasks: true }],
  },
  {
    // Disk usage is sampled every 30 s by default, so 60 s is three samples in a row.
    name: "disk-full",
    when: 'disk.used_pct{mount="/"} > 90',
    for: "60s",
    clear_when: 'disk.used_pct{mount="/"} < 85',
    clear_for: "5m",
    cooldown: "15m",
    severity: "critical",
    actions: [{ alert: "disk / above 90%" }, { prune_buffer: { older_than: "12h" } }],
  },
  {
    name: "memory-low",
    when: `mem.avail_bytes < ${GIB}`,
    for: "30s",
    // Hysteresis of a quarter GiB, so that the rule does not flap around the limit.
    clear_when: `mem.avail_bytes > ${1.25 * GIB}`,
    clear_for: "60s",
    cooldown: "5m",
    severity: "critical",
    actions: [
      { alert: "less than 1 GiB of memory available" },
      { evict_cache: { fraction: 0.5 } },
      { pause_tasks_below: 5 },
    ],
    clear_actions: [{ resume_tasks: true }],
  },
];

/** The default rule set, compiled. */
export function defaultRuleSet(): CompiledRuleSet {
  return compileRules(DEFAULT_RULES);
}
