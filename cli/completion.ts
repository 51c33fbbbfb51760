// Shell completion scripts for bash and zsh, generated from the command table.
import { GLOBAL_FLAGS } from "./argv.ts";
import type { Command } from "./command.ts";

/** Words that may follow `novacron` (the first word of each command). */
function firstWords(commands: readonly Command[]): string[] {
  return [...new Set([...commands.map((c) => c.words[0]!), "completion", "help"])];
}

/** For each first word with subcommands, the second words. */
function secondWords(commands: readonly Command[]): Map<string, string[]> {
  const out = new Map<string, string[]>();
  for (const c of commands) {
    if (c.words.length < 2) continue;
    out.set(c.words[0]!, [...(out.get(c.words[0]!) ?? []), c.words[1]!]);
  }
  out.set("completion", ["bash", "zsh"]);
  return out;
}

function flagsOf(c: Command): string[] {
  return [...c.flags, ...GLOBAL_FLAGS].flatMap((f) => [f.name, ...(f.short ? [f.short] : [])]);
}

/** The bash script: `source <(novacron completion bash)`. */
export function bashCompletion(commands: readonly Command[]): string {
  const subs = [...secondWords(commands)]
    .map(([w, list]) => `    ${w}) subs="${list.join(" ")}" ;;`)
    .join("\n");
  const flagCases = commands
    .map((c) => `    "${c.words.join(" ")}") flags="${flagsOf(c).join(" ")}" ;;`)
    .join("\n");
  const choiceCases = [...commands.flatMap((c) => c.flags), ...GLOBAL_FLAGS]
    .filter((f) => f.choices || f.file)
    .map((f) =>
      f.choices
        ? `    ${f.name}) COMPREPLY=($(compgen -W "${f.choices.join(" ")}" -- "$cur")); return ;;`
        : `    ${f.name}${f.short ? `|${f.short}` : ""}) COMPREPLY=($(compgen -f -- "$cur")); return ;;`,
    );
  const unique = [...new Set(choiceCases)].join("\n");
  const dynamic = (kind: "nodes" | "workloads") =>
    commands
      .filter((c) => c.args[0]?.complete === kind)
      .map((c) => `"${c.words.join(" ")}"`)
      .join("|");
  return `# bash completion for novacron (source <(novacron completion bash))
_novacron() {
  local cur prev words=() i cmd subs flags
  cur="\${COMP_WORDS[COMP_CWORD]}"
  prev="\${COMP_WORDS[COMP_CWORD-1]}"
  case "$prev" in
${unique}
  esac
  for ((i = 1; i < COMP_CWORD; i++)); do
    case "\${COMP_WORDS[i]}" in -*) ;; *) words+=("\${COMP_WORDS[i]}") ;; esac
  done
  if [[ \${#words[@]} -eq 0 && "$cur" != -* ]]; then
    COMPREPLY=($(compgen -W "${firstWords(commands).join(" ")}" -- "$cur"))
    return
  fi
  subs=""
  case "\${words[0]}" in
${subs}
  esac
  if [[ -n "$subs" && \${#words[@]} -eq 1 && "$cur" != -* ]]; then
    COMPREPLY=($(compgen -W "$subs" -- "$cur"))
    return
  fi
  cmd="\${words[0]}"
  [[ -n "$subs" && \${#words[@]} -ge 2 ]] && cmd="\${words[0]} \${words[1]}"
  flags="${GLOBAL_FLAGS.map((f) => f.name).join(" ")}"
  case "$cmd" in
${flagCases}
  esac
  # The first argument: node ids or workload names, asked of the hub with the same settings.
  local dyn="" n=1
  [[ "$cmd" == *" "* ]] && n=2
  case "$cmd" in
    ${dynamic("nodes")}) dyn=nodes ;;
    ${dynamic("workloads")}) dyn=workloads ;;
  esac
  if [[ -n "$dyn" && \${#words[@]} -eq $n && "$cur" != -* ]]; then
    COMPREPLY=($(compgen -W "$("\${COMP_WORDS[0]}" __complete "$dyn" 2>/dev/null)" -- "$cur"))
    return
  fi
  if [[ "$cur" == -* ]]; then
    COMPREPLY=($(compgen -W "$flags" -- "$cur"))
  fi
}
complete -F _novacron novacron
`;
}

/** The zsh script: `source <(novacron completion zsh)` (uses bash completion through bashcompinit). */
export function zshCompletion(commands: readonly Command[]): string {
  return `#compdef novacron
# zsh completion for novacron (source <(novacron completion zsh))
autoload -U +X compinit && compinit
autoload -U +X bashcompinit && bashcompinit
${bashCompletion(commands)}`;
}
