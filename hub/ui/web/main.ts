// The dashboard's shell: sign-in with a pasted token, navigation, the live feed's state and the page router.
import { html } from "htm/preact";
import { render } from "preact";
import { useEffect, useState } from "preact/hooks";
import { api, describeError, onSignedOut, token } from "./api.ts";
import { startLive, stopLive, useLiveState } from "./live.ts";
import { AlertsPage } from "./pages/alerts.ts";
import { NodePage } from "./pages/node.ts";
import { OverviewPage } from "./pages/overview.ts";
import { PlacementPage } from "./pages/placement.ts";
import { WorkloadPage, WorkloadsPage } from "./pages/workloads.ts";
import { href } from "./parts.ts";

function SignIn({ onDone, note }: { onDone: () => void; note: string }) {
  const [value, setValue] = useState("");
  const [error, setError] = useState(note);
  const [busy, setBusy] = useState(false);
  const submit = async (e: Event) => {
    e.preventDefault();
    setBusy(true);
    token.set(value.trim());
    try {
      await api("/api/v1/hub");
      onDone();
    } catch (err) {
      token.clear();
      setError(`That token was not accepted: ${describeError(err)}`);
    } finally {
      setBusy(false);
    }
  };
  return html`<main class="signin">
    <h1>NovaCron Edge</h1>
    <form onSubmit=${submit}>
      <label for="token">Operator token</label>
      <input id="token" name="token" type="password" autocomplete="off" required value=${value}
        onInput=${(e: Event) => setValue((e.target as HTMLInputElement).value)} />
      <p class="hint">Kept in this tab only (session storage) and sent as a bearer header on every call.</p>
      <button type="submit" disabled=${busy}>Sign in</button>
      ${error ? html`<p class="error" role="alert">${error}</p>` : ""}
    </form>
  </main>`;
}

function route(hash: string) {
  const parts = hash.replace(/^#\/?/, "").split("/").map(decodeURIComponent);
  const [first, second] = parts;
  if (first === "nodes" && second) return html`<${NodePage} id=${second} />`;
  if (first === "workloads" && second) return html`<${WorkloadPage} name=${second} />`;
  if (first === "workloads") return html`<${WorkloadsPage} />`;
  if (first === "placement") return html`<${PlacementPage} />`;
  if (first === "alerts") return html`<${AlertsPage} />`;
  return html`<${OverviewPage} />`;
}

const NAV: [string, string, (h: string) => boolean][] = [
  ["Fleet", href.overview, (h) => h === "" || h.startsWith("nodes")],
  ["Workloads", href.workloads, (h) => h.startsWith("workloads")],
  ["Placement", href.placement, (h) => h.startsWith("placement")],
  ["Alerts", href.alerts, (h) => h.startsWith("alerts")],
];

function Shell({ signOut }: { signOut: () => void }) {
  const [hash, setHash] = useState(location.hash);
  const live = useLiveState();
  useEffect(() => {
    const on = () => setHash(location.hash);
    addEventListener("hashchange", on);
    return () => removeEventListener("hashchange", on);
  }, []);
  useEffect(() => {
    // Moving between pages puts the keyboard at the new page's heading.
    document.querySelector<HTMLElement>("main h1")?.focus();
  }, [hash]);
  const h = hash.replace(/^#\/?/, "");
  return html`<a class="skip" href="#content" onClick=${(e: Event) => {
    e.preventDefault();
    document.querySelector<HTMLElement>("main h1")?.focus();
  }}>Skip to content</a>
    <header>
      <span class="brand">NovaCron Edge</span>
      <nav aria-label="Pages">
        ${NAV.map(([label, to, on]) => html`<a href=${to} aria-current=${on(h) ? "page" : undefined}>${label}</a>`)}
      </nav>
      <span class="live" data-live=${live} role="status" aria-live="polite"
        >${live === "live" ? "● live" : live === "unavailable" ? "live updates not available on this hub" : `○ ${live}…`}</span
      >
      <button type="button" class="link" onClick=${signOut}>Sign out</button>
    </header>
    <main id="content">${route(hash)}</main>`;
}

function App() {
  const [signedIn, setSignedIn] = useState(!!token.get());
  const [note, setNote] = useState("");
  useEffect(() => {
    if (signedIn) startLive();
    return onSignedOut(() => {
      token.clear();
      stopLive();
      setNote("The hub refused the token (it may have been revoked or expired): sign in again.");
      setSignedIn(false);
    });
  }, [signedIn]);
  if (!signedIn) return html`<${SignIn} note=${note} onDone=${() => setSignedIn(true)} />`;
  return html`<${Shell}
    signOut=${() => {
      token.clear();
      stopLive();
      setNote("");
      setSignedIn(false);
    }}
  />`;
}

const root = document.getElementById("app")!;
// The page's own "Loading" line goes; Preact renders into an empty element.
root.textContent = "";
render(html`<${App} />`, root);
