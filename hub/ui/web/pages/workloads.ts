// Workloads: the list, a form (or JSON) that creates one, and each workload's spec, rollout, allocations and logs.
import { html } from "htm/preact";
import { useMemo, useState } from "preact/hooks";
import { api, describeError } from "../api.ts";
import { throttle, useLive } from "../live.ts";
import { Age, Badge, ErrorLine, href, Table, useApi } from "../parts.ts";

interface Alloc {
  id: string;
  node: string;
  status: string;
  healthy: boolean | null;
  restarts: number;
  version: number;
  updated: number;
  message: string | null;
}
interface Workload {
  name: string;
  driver: string;
  command: string;
  replicas: number;
  version: number;
  rollout_status: { state: string; from?: number; to?: number; step_started?: number; message?: string };
  updated: number;
  pending_reason?: string;
  allocs: Alloc[];
  placement_explanation?: unknown;
  [k: string]: unknown;
}

function specFromForm(f: {
  name: string;
  driver: string;
  command: string;
  args: string;
  replicas: string;
  cpu: string;
  mem: string;
}) {
  return {
    name: f.name,
    driver: f.driver,
    command: f.command,
    args: f.args.trim() ? f.args.trim().split(/\s+/) : [],
    replicas: Number(f.replicas),
    resources: { cpu_millis: Number(f.cpu), mem_mb: Number(f.mem) },
  };
}

function CreateForm({ done }: { done: (name: string) => void }) {
  const [f, setF] = useState({
    name: "",
    driver: "exec",
    command: "",
    args: "",
    replicas: "1",
    cpu: "100",
    mem: "64",
  });
  const [json, setJson] = useState("");
  const [mode, setMode] = useState<"form" | "json">("form");
  const [error, setError] = useState<unknown>(null);
  const [busy, setBusy] = useState(false);
  const field = (key: keyof typeof f, label: string, type = "text", extra = {}) =>
    html`<label for=${`wl-${key}`}>${label}</label>
      <input id=${`wl-${key}`} name=${key} type=${type} value=${f[key]} ...${extra}
        onInput=${(e: Event) => setF({ ...f, [key]: (e.target as HTMLInputElement).value })} />`;
  const submit = async (e: Event) => {
    e.preventDefault();
    setBusy(true);
    setError(null);
    try {
      const body = mode === "json" ? json : specFromForm(f);
      const w = await api<Workload>("/api/v1/workloads", { method: "POST", body });
      done(w.name);
    } catch (err) {
      setError(err);
    } finally {
      setBusy(false);
    }
  };
  return html`<form class="create" onSubmit=${submit} aria-labelledby="create-h">
    <h2 id="create-h">Create a workload</h2>
    <div role="radiogroup" aria-label="Describe it with" class="toolbar">
      <label><input type="radio" name="mode" checked=${mode === "form"} onChange=${() => setMode("form")} /> Form</label>
      <label><input type="radio" name="mode" checked=${mode === "json"} onChange=${() => {
        setJson(JSON.stringify(specFromForm(f), null, 2));
        setMode("json");
      }} /> JSON</label>
    </div>
    ${
      mode === "form"
        ? html`<div class="grid">
          ${field("name", "Name", "text", { required: true, pattern: "[a-z0-9][a-z0-9-]*" })}
          <label for="wl-driver">Driver</label>
          <select id="wl-driver" value=${f.driver} onChange=${(e: Event) => setF({ ...f, driver: (e.target as HTMLSelectElement).value })}>
            <option value="exec">exec (a service)</option>
            <option value="job">job (runs to completion)</option>
          </select>
          ${field("command", "Command", "text", { required: true })}
          ${field("args", "Arguments (space-separated)")}
          ${field("replicas", "Replicas", "number", { min: 0, max: 10000 })}
          ${field("cpu", "CPU (millicores)", "number", { min: 0 })}
          ${field("mem", "Memory (MB)", "number", { min: 0 })}
        </div>`
        : html`<label for="wl-json">Workload spec (JSON)</label>
          <textarea id="wl-json" rows="14" spellcheck="false" value=${json}
            onInput=${(e: Event) => setJson((e.target as HTMLTextAreaElement).value)}></textarea>`
    }
    <button type="submit" disabled=${busy}>Create</button>
    ${error ? html`<p class="error" role="alert">${describeError(error)}</p>` : ""}
  </form>`;
}

export function WorkloadsPage() {
  const [version, setVersion] = useState(0);
  const list = useApi<{ workloads: Workload[] }>("/api/v1/workloads", version);
  const refresh = useMemo(() => throttle(() => setVersion((v) => v + 1), 1000), []);
  useLive(["alloc"], refresh);
  return html`<h1 tabindex="-1">Workloads</h1>
    <${ErrorLine} error=${list.error} />
    <${Table}
      caption="Workloads"
      head=${["Name", "Version", "Rollout", "Replicas", "Running", "Updated"]}
      empty=${list.loading ? "Loading…" : "No workloads yet."}
      rows=${(list.data?.workloads ?? []).map(
        (w) => html`<tr data-workload=${w.name}>
          <th scope="row"><a href=${href.workload(w.name)}>${w.name}</a></th>
          <td>${w.version}</td>
          <td><${Badge} value=${w.rollout_status.state} since=${w.rollout_status.step_started} /></td>
          <td>${w.replicas}</td>
          <td>${w.allocs.filter((a) => a.status === "running").length} of ${w.allocs.length}</td>
          <td><${Age} at=${w.updated} /></td>
        </tr>`,
      )}
    />
    <${CreateForm} done=${(name: string) => {
      location.hash = href.workload(name);
    }} />`;
}

export function WorkloadPage({ name }: { name: string }) {
  const enc = encodeURIComponent(name);
  const [version, setVersion] = useState(0);
  const w = useApi<Workload>(`/api/v1/workloads/${enc}`, version);
  const [note, setNote] = useState("");
  const [logs, setLogs] = useState<{ alloc: string; text: string } | null>(null);
  const refresh = useMemo(() => throttle(() => setVersion((v) => v + 1), 1000), []);
  useLive(
    ["alloc"],
    (e) => {
      if (e.data.workload === name) refresh();
    },
    [name],
  );
  const act = async (what: "promote" | "rollback" | "delete") => {
    if (what === "delete" && !confirm(`Delete workload ${name}? Its copies stop.`)) return;
    try {
      await api(what === "delete" ? `/api/v1/workloads/${enc}` : `/api/v1/workloads/${enc}/${what}`, {
        method: what === "delete" ? "DELETE" : "POST",
      });
      if (what === "delete") location.hash = href.workloads;
      setNote(`${what}: done`);
      refresh();
    } catch (err) {
      setNote(`${what}: ${describeError(err)}`);
    }
  };
  const showLogs = async (alloc: string) => {
    setLogs({ alloc, text: "loading…" });
    try {
      const r = await api<{ logs: string }>(
        `/api/v1/workloads/${enc}/allocs/${encodeURIComponent(alloc)}/logs?lines=200`,
      );
      setLogs({ alloc, text: r.logs || "(no output yet)" });
    } catch (err) {
      setLogs({ alloc, text: describeError(err) });
    }
  };
  const d = w.data;
  const {
    allocs: _a,
    placement_explanation,
    rollout_status,
    created: _c,
    updated: _u,
    version: _v,
    pending_reason,
    ...spec
  } = d ?? ({} as Workload);
  return html`<h1 tabindex="-1">Workload ${name}</h1>
    <p><a href=${href.workloads}>← Workloads</a></p>
    <${ErrorLine} error=${w.error} />
    ${
      d
        ? html`<dl class="facts">
          <dt>Version</dt><dd>${d.version}</dd>
          <dt>Rollout</dt><dd data-field="rollout"><${Badge} value=${rollout_status.state} since=${rollout_status.step_started} />
            ${rollout_status.to !== undefined ? ` v${rollout_status.from} → v${rollout_status.to}` : ""} ${rollout_status.message ?? ""}</dd>
          <dt>Updated</dt><dd><${Age} at=${d.updated} /></dd>
          ${pending_reason ? html`<dt>Pending</dt><dd>${pending_reason}</dd>` : ""}
        </dl>
        <div class="toolbar">
          <button type="button" onClick=${() => act("promote")} disabled=${rollout_status.state !== "awaiting-promotion"}>Promote</button>
          <button type="button" onClick=${() => act("rollback")} disabled=${d.version <= 1}>Roll back</button>
          <button type="button" class="danger" onClick=${() => act("delete")}>Delete</button>
          <span role="status">${note}</span>
        </div>
        <section aria-labelledby="wa-h">
          <h2 id="wa-h">Allocations</h2>
          <${Table}
            caption="Copies of this workload"
            head=${["Allocation", "Node", "Version", "Status", "Healthy", "Restarts", "Updated", "Logs"]}
            empty="No copy placed."
            rows=${d.allocs.map(
              (a) => html`<tr data-alloc=${a.id}>
                <td>${a.id}</td>
                <td><a href=${href.node(a.node)}>${a.node}</a></td>
                <td>${a.version}</td>
                <td data-status=${a.status}><${Badge} value=${a.status} /> ${a.message ?? ""}</td>
                <td>${a.healthy === null ? "—" : a.healthy ? "yes" : "no"}</td>
                <td>${a.restarts}</td>
                <td><${Age} at=${a.updated} /></td>
                <td><button type="button" onClick=${() => showLogs(a.id)} aria-label=${`Logs of ${a.id}`}>Logs</button></td>
              </tr>`,
            )}
          />
          ${logs ? html`<h3>Logs of ${logs.alloc}</h3><pre class="logs" tabindex="0">${logs.text}</pre>` : ""}
        </section>
        <details>
          <summary>Spec</summary>
          <pre>${JSON.stringify(spec, null, 2)}</pre>
        </details>
        <details>
          <summary>Last placement</summary>
          <pre>${JSON.stringify(placement_explanation ?? null, null, 2)}</pre>
        </details>`
        : ""
    }`;
}
