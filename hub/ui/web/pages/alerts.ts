// Alerts: open, acknowledged and history, with an acknowledge button where the hub tracks alert states.
import { html } from "htm/preact";
import { useMemo, useState } from "preact/hooks";
import { api, describeError } from "../api.ts";
import { throttle, useLive } from "../live.ts";
import { Age, Badge, ErrorLine, href, Table, useApi } from "../parts.ts";

type Alert = Record<string, unknown> & { id: number | string };
const TABS: [string, string][] = [
  ["open", "Open"],
  ["acknowledged", "Acknowledged"],
  ["all", "History"],
];
const TRACKED = new Set(["open", "acknowledged", "resolved"]);

export function AlertsPage() {
  const [tab, setTab] = useState("open");
  const [version, setVersion] = useState(0);
  const list = useApi<{ alerts: Alert[] }>(`/api/v1/alerts?state=${tab}&limit=200`, version);
  const [note, setNote] = useState("");
  const refresh = useMemo(() => throttle(() => setVersion((v) => v + 1), 1000), []);
  useLive(["alert"], refresh);
  const alerts = list.data?.alerts ?? [];
  // A hub with alert states answers them; an older one lists the alerts nodes raised and cleared.
  const tracked = alerts.length === 0 || alerts.some((a) => TRACKED.has(String(a.state)));
  const shown = tracked ? alerts : tab === "all" ? alerts : [];
  const ack = async (id: string | number) => {
    try {
      await api(`/api/v1/alerts/${encodeURIComponent(String(id))}/ack`, { method: "POST", body: {} });
      setNote(`alert ${id} acknowledged`);
      refresh();
    } catch (err) {
      setNote(`alert ${id}: acknowledging is ${describeError(err)}`);
    }
  };
  return html`<h1 tabindex="-1">Alerts</h1>
    <div role="tablist" aria-label="Alerts by state" class="tabs">
      ${TABS.map(
        ([k, label]) =>
          html`<button type="button" role="tab" aria-selected=${tab === k} onClick=${() => setTab(k)}>${label}</button>`,
      )}
    </div>
    <${ErrorLine} error=${list.error} />
    ${
      !tracked
        ? html`<p class="notice" role="note">
          Acknowledging alerts is not available on this hub: it keeps the alerts nodes raise and clear, without
          open or acknowledged states. ${tab === "all" ? "" : "See History for every alert."}
        </p>`
        : ""
    }
    <span role="status">${note}</span>
    <${Table}
      caption=${`${TABS.find(([k]) => k === tab)?.[1]} alerts, newest first`}
      head=${["Started", "Node", "Severity", "Rule", "State", "Message", ""]}
      empty=${list.loading ? "Loading…" : "No alerts here."}
      rows=${shown.map(
        (a) => html`<tr data-alert=${a.id}>
          <td><${Age} at=${Number(a.started_at ?? a.at)} /></td>
          <td>${a.node ? html`<a href=${href.node(String(a.node))}>${String(a.node)}</a>` : "hub"}</td>
          <td>${String(a.severity ?? "")}</td>
          <td>${String(a.rule ?? a.source ?? "")}</td>
          <td><${Badge} value=${String(a.state ?? "")} since=${Number(a.updated_at ?? a.at) || undefined} />
            ${a.acknowledged_by ? html` by ${String(a.acknowledged_by)}` : ""}</td>
          <td>${String(a.message ?? "")}</td>
          <td>${a.state === "open" ? html`<button type="button" onClick=${() => ack(a.id)} aria-label=${`Acknowledge alert ${a.id}`}>Acknowledge</button>` : ""}</td>
        </tr>`,
      )}
    />`;
}
