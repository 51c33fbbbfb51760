// A section 8 manual page generated from a program's --help, so the two never disagree.

function roffEscape(line: string): string {
  // A leading dot or quote would be read as a request; backslashes are escapes.
  const escaped = line.replace(/\\/g, "\\e").replace(/-/g, "\\-");
  return /^[.']/.test(escaped) ? `\\&${escaped}` : escaped;
}

/** Renders the manual page of `program` from its `--help` text. */
export function manPage(
  program: string,
  version: string,
  summary: string,
  help: string,
  sourceDateEpoch: number,
): string {
  const date = new Date(sourceDateEpoch * 1000).toISOString().slice(0, 10);
  const [usage = "", ...rest] = help.trimEnd().split("\n");
  const body = rest.map(roffEscape).join("\n");
  const isAgent = program === "novacron-agent";
  const files = isAgent
    ? ["/etc/novacron/agent.yaml", "/etc/novacron/agent.env", "/var/lib/novacron"]
    : ["/etc/novacron/hub.yaml", "/etc/novacron/hub.env", "/var/lib/novacron-hub"];
  return [
    `.TH ${program.toUpperCase()} 8 "${date}" "${program} ${version}" "NovaCron Edge"`,
    ".SH NAME",
    `${program} \\- ${summary.replace(/^NovaCron Edge \w+: /, "")}`,
    ".SH SYNOPSIS",
    roffEscape(usage.replace(/^Usage: /, "")),
    ".SH DESCRIPTION",
    `${program} is normally run by systemd as ${program}.service. Every flag below also has a`,
    "key in the YAML config file and a NOVACRON_* environment variable; flags win over the",
    "environment, which wins over the file.",
    ".SH OPTIONS",
    ".nf",
    body,
    ".fi",
    ".SH FILES",
    ...files.flatMap((f) => [".TP", f]),
    ".SH SIGNALS",
    "SIGTERM and SIGINT stop the program cleanly: everything received or sampled so far is kept",
    "in its SQLite store.",
    ".SH SEE ALSO",
    "systemctl(1), journalctl(1)",
    "",
  ].join("\n");
}
