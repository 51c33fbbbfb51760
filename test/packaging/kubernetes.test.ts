// The Kubernetes manifests: what the DaemonSet and StatefulSet promise, and the Kubernetes schema.
import { describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { ROOT, sh, VERSION } from "./_artefacts.ts";

const DIR = join(ROOT, "packaging/kubernetes");

// biome-ignore lint/suspicious/noExplicitAny: manifests are free-form YAML, checked field by field.
type Doc = any;

function resourceFiles(): string[] {
  const k = Bun.YAML.parse(readFileSync(join(DIR, "kustomization.yaml"), "utf8")) as { resources: string[] };
  return k.resources;
}

/** Every object of every file the kustomization lists, in order. */
function manifests(): Doc[] {
  return resourceFiles().flatMap((f) => {
    const parsed = Bun.YAML.parse(readFileSync(join(DIR, f), "utf8")) as Doc;
    return (Array.isArray(parsed) ? parsed : [parsed]).filter(Boolean);
  });
}

const find = (docs: Doc[], kind: string, name: string) =>
  docs.find((d) => d.kind === kind && d.metadata?.name === name);
const env = (container: Doc, name: string) => container.env.find((e: Doc) => e.name === name);

const kubectl = Bun.which("kubectl");
if (!kubectl) console.warn("SKIPPING kustomize render check: kubectl is not installed");
let hasModels = false;
try {
  Bun.resolveSync("kubernetes-models/apps/v1/DaemonSet", import.meta.dir);
  hasModels = true;
} catch {
  console.warn(
    "SKIPPING Kubernetes schema validation: the kubernetes-models package is not installed (npm install -D kubernetes-models); the structure checks still run",
  );
}

describe("Kubernetes manifests", () => {
  test("kubernetes: the agent DaemonSet: node name as node id, read-only host /proc and /sys, buffer on a hostPath, 48Mi/50m requests and 64Mi/100m limits, probes and scrape annotations", () => {
    const docs = manifests();
    const ds = find(docs, "DaemonSet", "novacron-agent");
    expect(ds).toBeDefined();
    const pod = ds.spec.template;
    const [agent] = pod.spec.containers;
    expect(pod.spec.containers).toHaveLength(1);
    expect(env(agent, "NOVACRON_NODE_ID").valueFrom.fieldRef.fieldPath).toBe("spec.nodeName");
    expect(env(agent, "NOVACRON_JOIN_TOKEN").valueFrom.secretKeyRef).toEqual({
      name: "novacron-tokens",
      key: "join-token",
    });

    const volumes = Object.fromEntries(pod.spec.volumes.map((v: Doc) => [v.name, v]));
    const mounts = Object.fromEntries(agent.volumeMounts.map((m: Doc) => [m.mountPath, m]));
    for (const [host, at] of [
      ["/proc", "/host/proc"],
      ["/sys", "/host/sys"],
    ]) {
      expect(mounts[at!]?.readOnly).toBe(true);
      expect(volumes[mounts[at!].name].hostPath.path).toBe(host);
    }
    const data = env(agent, "NOVACRON_DATA").value;
    expect(volumes[mounts[data].name].hostPath).toEqual({
      path: "/var/lib/novacron-k8s",
      type: "DirectoryOrCreate",
    });
    expect(mounts[data].readOnly).toBeFalsy();

    expect(agent.resources).toEqual({
      requests: { cpu: "50m", memory: "48Mi" },
      limits: { cpu: "100m", memory: "64Mi" },
    });

    const port = agent.ports.find((p: Doc) => p.name === "http").containerPort;
    expect(env(agent, "NOVACRON_API").value).toBe(`0.0.0.0:${port}`);
    for (const probe of [agent.livenessProbe, agent.readinessProbe]) {
      expect(probe.httpGet.path).toBe("/healthz");
      expect(probe.httpGet.port).toBe("http");
    }
    expect(pod.metadata.annotations).toEqual({
      "prometheus.io/scrape": "true",
      "prometheus.io/port": String(port),
      "prometheus.io/path": "/metrics",
    });

    expect(agent.securityContext).toMatchObject({
      runAsNonRoot: true,
      allowPrivilegeEscalation: false,
      readOnlyRootFilesystem: true,
      capabilities: { drop: ["ALL"] },
    });
    expect(pod.spec.terminationGracePeriodSeconds).toBeGreaterThanOrEqual(10);
  });

  test("kubernetes: the hub StatefulSet keeps its data on a PVC, behind a Service the agents' hub URL names", () => {
    const docs = manifests();
    const sts = find(docs, "StatefulSet", "novacron-hub");
    const svc = find(docs, "Service", "novacron-hub");
    expect(sts).toBeDefined();
    expect(svc).toBeDefined();
    expect(find(docs, "Service", sts.spec.serviceName)?.spec.clusterIP).toBe("None");
    expect(sts.spec.replicas).toBe(1);
    const [hub] = sts.spec.template.spec.containers;
    const claim = sts.spec.volumeClaimTemplates[0];
    const dataMount = hub.volumeMounts.find((m: Doc) => m.name === claim.metadata.name);
    expect(dataMount.mountPath).toBe(env(hub, "NOVACRON_DATA").value);
    expect(claim.spec.accessModes).toEqual(["ReadWriteOnce"]);
    expect(sts.spec.template.spec.securityContext.fsGroup).toBe(65532);

    for (const [key, value] of Object.entries(svc.spec.selector)) {
      expect(sts.spec.template.metadata.labels[key]).toBe(value as string);
    }
    const svcPort = svc.spec.ports.find((p: Doc) => p.name === "http");
    const containerPort = hub.ports.find((p: Doc) => p.name === svcPort.targetPort).containerPort;
    expect(env(hub, "NOVACRON_LISTEN").value).toBe(`0.0.0.0:${containerPort}`);

    const agent = find(docs, "DaemonSet", "novacron-agent").spec.template.spec.containers[0];
    expect(env(agent, "NOVACRON_HUB").value).toBe(`ws://${svc.metadata.name}:${svcPort.port}`);

    // Every ConfigMap a pod mounts is part of the kustomization.
    for (const workload of [sts, find(docs, "DaemonSet", "novacron-agent")]) {
      for (const v of workload.spec.template.spec.volumes.filter((x: Doc) => x.configMap)) {
        expect(find(docs, "ConfigMap", v.configMap.name)).toBeDefined();
      }
    }
  });

  test("kubernetes: the replicas overlay: a Deployment of three hub replicas sharing one hub id, one key from a Secret and the store's URL from a Secret, ready only while the store takes writes, nothing kept on a volume, and a disruption budget of one", () => {
    const overlay = join(ROOT, "packaging/kubernetes-replicas");
    const k = Bun.YAML.parse(readFileSync(join(overlay, "kustomization.yaml"), "utf8")) as Doc;
    expect(k.resources).toEqual(["../kubernetes", "hub-deployment.yaml", "hub-pdb.yaml"]);
    // The single hub's StatefulSet is what the overlay deletes.
    const deleted = Bun.YAML.parse(k.patches[0].patch) as Doc;
    expect(deleted).toMatchObject({
      $patch: "delete",
      kind: "StatefulSet",
      metadata: { name: "novacron-hub" },
    });
    expect(find(manifests(), "StatefulSet", deleted.metadata.name)).toBeDefined();

    const deploy = Bun.YAML.parse(readFileSync(join(overlay, "hub-deployment.yaml"), "utf8")) as Doc;
    const pdb = Bun.YAML.parse(readFileSync(join(overlay, "hub-pdb.yaml"), "utf8")) as Doc;
    expect(deploy.kind).toBe("Deployment");
    expect(deploy.spec.replicas).toBe(3);
    const pod = deploy.spec.template;
    const [hub] = pod.spec.containers;
    // One hub id for every replica (not the pod's name).
    expect(env(hub, "NOVACRON_HUB_ID").value).toBe("novacron-hub");
    expect(env(hub, "NOVACRON_STORE").valueFrom.secretKeyRef).toEqual({ name: "novacron-store", key: "url" });
    const data = env(hub, "NOVACRON_DATA").value;
    const volumes = Object.fromEntries(pod.spec.volumes.map((v: Doc) => [v.name, v]));
    const mounts = Object.fromEntries(hub.volumeMounts.map((m: Doc) => [m.mountPath, m]));
    expect(volumes[mounts[data].name].emptyDir).toBeDefined();
    const key = mounts[`${data}/hub.key`];
    expect(key).toMatchObject({ subPath: "hub.key", readOnly: true });
    expect(volumes[key.name].secret.secretName).toBe("novacron-hub-key");
    expect(hub.readinessProbe.httpGet.path).toBe("/readyz");
    expect(hub.livenessProbe.httpGet.path).toBe("/healthz");

    // The Service the agents name selects these pods; the budget covers them.
    const svc = find(manifests(), "Service", "novacron-hub");
    for (const [label, value] of Object.entries(svc.spec.selector))
      expect(pod.metadata.labels[label]).toBe(value as string);
    expect(pdb.kind).toBe("PodDisruptionBudget");
    expect(pdb.spec.maxUnavailable).toBe(1);
    for (const [label, value] of Object.entries(pdb.spec.selector.matchLabels))
      expect(pod.metadata.labels[label]).toBe(value as string);
    for (const v of pod.spec.volumes.filter((x: Doc) => x.configMap))
      expect(find(manifests(), "ConfigMap", v.configMap.name)).toBeDefined();
  });

  test.skipIf(!kubectl)(
    "kubernetes: the replicas overlay renders with the Deployment and its budget in place of the StatefulSet",
    async () => {
      const r = await sh([kubectl!, "kustomize", join(ROOT, "packaging/kubernetes-replicas")]);
      expect(r.err).toBe("");
      expect(r.code).toBe(0);
      const docs = (Bun.YAML.parse(r.out) as Doc[]).filter(Boolean);
      expect(docs.map((d) => `${d.kind}/${d.metadata.name}`).sort()).toEqual(
        [
          "ConfigMap/novacron-agent-config",
          "ConfigMap/novacron-hub-config",
          "DaemonSet/novacron-agent",
          "Deployment/novacron-hub",
          "Namespace/novacron",
          "PodDisruptionBudget/novacron-hub",
          "Service/novacron-hub",
          "Service/novacron-hub-headless",
        ].sort(),
      );
      for (const d of docs.filter((x) => x.kind !== "Namespace"))
        expect(d.metadata.namespace).toBe("novacron");
      // The release's image tags and labels reach the overlay's own Deployment too.
      const deploy = docs.find((d) => d.kind === "Deployment");
      expect(deploy.spec.template.spec.containers[0].image).toBe(`novacron-hub:${VERSION}`);
      expect(deploy.metadata.labels["app.kubernetes.io/part-of"]).toBe("novacron");
    },
  );

  test.skipIf(!kubectl)(
    "kubernetes: kustomize renders every object into the novacron namespace with the release's image tags",
    async () => {
      const r = await sh([kubectl!, "kustomize", DIR]);
      expect(r.err).toBe("");
      expect(r.code).toBe(0);
      const docs = (Bun.YAML.parse(r.out) as Doc[]).filter(Boolean);
      expect(docs.map((d) => `${d.kind}/${d.metadata.name}`).sort()).toEqual(
        [
          "ConfigMap/novacron-agent-config",
          "ConfigMap/novacron-hub-config",
          "DaemonSet/novacron-agent",
          "Namespace/novacron",
          "Service/novacron-hub",
          "Service/novacron-hub-headless",
          "StatefulSet/novacron-hub",
        ].sort(),
      );
      for (const d of docs.filter((x) => x.kind !== "Namespace"))
        expect(d.metadata.namespace).toBe("novacron");
      const images = docs
        .filter((d) => d.spec?.template)
        .flatMap((d) => d.spec.template.spec.containers.map((c: Doc) => c.image));
      expect(images.sort()).toEqual([`novacron-agent:${VERSION}`, `novacron-hub:${VERSION}`]);
    },
  );

  test.skipIf(!hasModels)(
    "kubernetes: every object validates against the Kubernetes OpenAPI schema (kubernetes-models)",
    async () => {
      const overlay = ["hub-deployment.yaml", "hub-pdb.yaml"].map(
        (f) => Bun.YAML.parse(readFileSync(join(ROOT, "packaging/kubernetes-replicas", f), "utf8")) as Doc,
      );
      for (const doc of [...manifests(), ...overlay]) {
        const [group, version] = doc.apiVersion.includes("/")
          ? doc.apiVersion.split("/")
          : ["", doc.apiVersion];
        const path = `kubernetes-models/${group ? `${group}/` : ""}${version}/${doc.kind}`;
        const Model = (await import(path))[doc.kind] as new (d: Doc) => { validate(): void };
        expect(() => new Model(doc).validate()).not.toThrow();
      }
      // The validator is not a rubber stamp: a broken probe is refused.
      const daemonSetModel = "kubernetes-models/apps/v1/DaemonSet";
      const { DaemonSet } = (await import(daemonSetModel)) as {
        DaemonSet: new (d: Doc) => { validate(): void };
      };
      const broken = structuredClone(find(manifests(), "DaemonSet", "novacron-agent"));
      delete broken.spec.template.spec.containers[0].livenessProbe.httpGet.port;
      expect(() => new DaemonSet(broken).validate()).toThrow(/port/);
    },
  );
});
