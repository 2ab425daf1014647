import { connectCsi } from "../csi/client.js";
import { COMMANDS } from "./commands.js";

/**
 * Shell completion: the scripts `csictl completion bash|zsh` print, and the
 * hidden `csictl __complete WORDS...` they call, which answers with one
 * candidate a line: command words, the flags of the command typed so far, and
 * volume or snapshot ids asked from the plugin (ListVolumes / ListSnapshots,
 * at the endpoint the line or CSI_ENDPOINT names, within 2 s).
 */

const GLOBAL = ["--endpoint", "--output", "--timeout", "--secrets-file", "--request-json", "--no-color", "--help"];
const EXTRA_COMMANDS = [["describe"], ["call"], ["completion"]];

export function completionScript(shell: "bash" | "zsh"): string {
  const bash = `# csictl completion for bash: source <(csictl completion bash)
_csictl() {
  local IFS=$'\\n'
  COMPREPLY=($(csictl __complete "\${COMP_WORDS[@]:1:COMP_CWORD}" 2>/dev/null))
}
complete -o default -F _csictl csictl
`;
  if (shell === "bash") return bash;
  return `# csictl completion for zsh: source <(csictl completion zsh)
autoload -U +X bashcompinit && bashcompinit
${bash}`;
}

async function ids(kind: "volume" | "snapshot", endpoint: string): Promise<string[]> {
  const clients = connectCsi(endpoint);
  try {
    const options = { timeoutMs: 2000 };
    if (kind === "volume") return (await clients.controller.listVolumes({}, options)).entries.map((e) => e.volume?.volumeId ?? "");
    return (await clients.controller.listSnapshots({}, options)).entries.map((e) => e.snapshot?.snapshotId ?? "");
  } catch {
    return [];
  } finally {
    clients.close();
  }
}

/** Candidates for the last word of `words` (the words after `csictl`, the last one being completed). */
export async function completions(words: readonly string[], env: NodeJS.ProcessEnv): Promise<number> {
  const current = words.at(-1) ?? "";
  const before = words.slice(0, -1);
  const positionals: string[] = [];
  let endpoint = env.CSI_ENDPOINT;
  for (let i = 0; i < before.length; i++) {
    const word = before[i] ?? "";
    if (word.startsWith("--")) {
      if (word === "--endpoint") endpoint = before[i + 1];
      else if (word.startsWith("--endpoint=")) endpoint = word.slice("--endpoint=".length);
      if (!word.includes("=") && !["--readonly", "--block", "--watch", "--no-color", "--help"].includes(word)) i++;
      continue;
    }
    positionals.push(word);
  }
  const all = [...COMMANDS.map((c) => c.path), ...EXTRA_COMMANDS];
  const out: string[] = [];
  const command = COMMANDS.find((c) => c.path.every((p, i) => positionals[i] === p));
  if (current.startsWith("--")) {
    out.push(...GLOBAL, ...(command?.flags.map((f) => `--${f}`) ?? []));
  } else if (command === undefined) {
    const depth = positionals.length;
    out.push(
      ...new Set(
        all
          .filter((p) => p.slice(0, depth).every((w, i) => positionals[i] === w))
          .map((p) => p[depth] ?? "")
          .filter((w) => w !== ""),
      ),
    );
    if (depth === 1 && positionals[0] === "describe" && endpoint) out.push(...(await ids("volume", endpoint)));
    if (depth === 1 && positionals[0] === "completion") out.push("bash", "zsh");
  } else if (command.completes && positionals.length === command.path.length && endpoint) {
    out.push(...(await ids(command.completes, endpoint)));
  }
  for (const candidate of out) if (candidate.startsWith(current)) process.stdout.write(`${candidate}\n`);
  return 0;
}
