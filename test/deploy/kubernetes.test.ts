/**
 * deploy/kubernetes/: every YAML document is checked against the Kubernetes (and KEDA) OpenAPI schemas, with no
 * field the schema does not know, and the settings that make specd behave on a cluster are asserted: probes on the
 * right endpoints, a termination budget above the server's drain, one autoscaler on queue depth, an Ingress that
 * streams. A second suite builds the image and serves one completion from it, where a container runtime works.
 */
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { parse as parseYaml, parseAllDocuments } from 'yaml';
import { type IDeployment, Deployment } from 'kubernetes-models/apps/v1/Deployment';
import { type IHorizontalPodAutoscaler, HorizontalPodAutoscaler } from 'kubernetes-models/autoscaling/v2/HorizontalPodAutoscaler';
import { type IIngress, Ingress } from 'kubernetes-models/networking.k8s.io/v1/Ingress';
import { type IPodDisruptionBudget, PodDisruptionBudget } from 'kubernetes-models/policy/v1/PodDisruptionBudget';
import { type IConfigMap, ConfigMap } from 'kubernetes-models/v1/ConfigMap';
import type { IContainer } from 'kubernetes-models/v1/Container';
import { type INamespace, Namespace } from 'kubernetes-models/v1/Namespace';
import type { IProbe } from 'kubernetes-models/v1/Probe';
import { type IService, Service } from 'kubernetes-models/v1/Service';
import { type IScaledObject, ScaledObject } from '@kubernetes-models/keda/keda.sh/v1alpha1/ScaledObject';
import { DEFAULT_DRAFT, DEFAULT_TARGET } from '../../src/config/schema.ts';
import { modelsSwitchedOff } from '../helpers/models.ts';
import { describeUnless } from '../helpers/skip.ts';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const DIR = join(ROOT, 'deploy/kubernetes');
const read = (path: string) => readFileSync(join(ROOT, path), 'utf8');

/** Upper end of a model load on 2 cores (facts of the bundled pair; the probes are sized from it). */
const MAX_MODEL_LOAD_S = 20;

function walk(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? walk(join(dir, e.name)) : [join(dir, e.name)]));
}
const FILES = walk(DIR)
  .map((f) => relative(DIR, f))
  .sort();

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);

interface Manifest {
  /** Relative to deploy/kubernetes/. */
  file: string;
  index: number;
  doc: Obj;
}

/**
 * YAML 1.1, as Kubernetes' own parser reads manifests: there an unquoted `off` or `yes` is a boolean, so an
 * annotation written that way is rejected by the API server although a YAML 1.2 parser would read a string.
 */
function parseManifests(file: string): Manifest[] {
  const docs = parseAllDocuments(readFileSync(join(DIR, file), 'utf8'), { version: '1.1', uniqueKeys: true });
  return (Array.isArray(docs) ? docs : [docs]).flatMap((d, index) => {
    const problems = [...d.errors, ...d.warnings].map((e) => e.message);
    if (problems.length > 0) throw new Error(`${file} document ${index}: ${problems.join('; ')}`);
    const doc: unknown = d.toJS();
    if (doc === null) return []; // a trailing `---`
    if (!isObj(doc)) throw new Error(`${file} document ${index} is not a mapping`);
    return [{ file, index, doc }];
  });
}

const YAML_FILES = FILES.filter((f) => /\.ya?ml$/.test(f));
const MANIFESTS = YAML_FILES.flatMap(parseManifests);

interface Validatable {
  validate(): void;
}
/** The kinds specd ships, each with its schema. A kind missing here fails the suite rather than going unchecked. */
const MODELS: Record<string, (doc: Obj) => Validatable> = {
  'v1/Namespace': (d) => new Namespace(d as never),
  'v1/Service': (d) => new Service(d as never),
  'v1/ConfigMap': (d) => new ConfigMap(d as never),
  'apps/v1/Deployment': (d) => new Deployment(d as never),
  'policy/v1/PodDisruptionBudget': (d) => new PodDisruptionBudget(d as never),
  'networking.k8s.io/v1/Ingress': (d) => new Ingress(d as never),
  'autoscaling/v2/HorizontalPodAutoscaler': (d) => new HorizontalPodAutoscaler(d as never),
  'keda.sh/v1alpha1/ScaledObject': (d) => new ScaledObject(d as never),
};
const typeOf = (doc: Obj) => `${String(doc['apiVersion'])}/${String(doc['kind'])}`;

/**
 * Paths of the keys in `doc` that `validate` never read. The generated validators check only the fields their
 * schema declares (no additionalProperties: false), so a misspelt field (`readinessprobe`) would pass validate()
 * and be dropped by the API server. Running the validator on a proxy shows which keys the schema knows: one it
 * never looks at is not in the schema.
 */
function unknownFields(doc: Obj, validate: (data: unknown) => void): string[] {
  const seen = new WeakMap<object, Set<PropertyKey>>();
  const track = (v: unknown): unknown => {
    if (typeof v !== 'object' || v === null) return v;
    const keys = seen.get(v) ?? new Set<PropertyKey>();
    seen.set(v, keys);
    return new Proxy(v, {
      get(target, key, receiver) {
        keys.add(key);
        return track(Reflect.get(target, key, receiver));
      },
      has(target, key) {
        keys.add(key);
        return Reflect.has(target, key);
      },
    });
  };
  try {
    validate(track(doc));
  } catch {
    // schema errors are reported by validate() on the document itself
  }
  const unknown: string[] = [];
  const visit = (v: unknown, path: string) => {
    if (Array.isArray(v)) v.forEach((item, i) => visit(item, `${path}/${i}`));
    else if (isObj(v))
      for (const [key, child] of Object.entries(v)) {
        if (!seen.get(v)?.has(key)) unknown.push(`${path}/${key}`);
        else visit(child, `${path}/${key}`);
      }
  };
  visit(doc, '');
  return unknown;
}

function only<T>(type: string, where: (m: Manifest) => boolean = () => true): T {
  const found = MANIFESTS.filter((m) => typeOf(m.doc) === type && where(m));
  if (found.length !== 1) throw new Error(`expected exactly one ${type}, found ${found.length} (${found.map((m) => m.file).join(', ')})`);
  return found[0]!.doc as T;
}
const topLevel = (m: Manifest) => !m.file.includes('/');

const deployment = only<IDeployment>('apps/v1/Deployment');
const pod = deployment.spec!.template.spec!;
const container: IContainer = pod.containers[0]!;
const podLabels = deployment.spec!.template.metadata?.labels ?? {};

function env(name: string): string {
  const value = container.env?.find((e) => e.name === name)?.value;
  if (value === undefined) throw new Error(`the container sets no ${name}`);
  return value;
}
const containerPort = container.ports?.find((p) => p.name === 'http');

/** A probe's or Service's port, as the number it resolves to in the container. */
function resolvePort(port: number | string | undefined): number | undefined {
  return typeof port === 'number' ? port : container.ports?.find((p) => p.name === port)?.containerPort;
}
function probe(name: 'startupProbe' | 'readinessProbe' | 'livenessProbe'): IProbe & { budgetS: number } {
  const p = container[name];
  if (!p) throw new Error(`the container has no ${name}`);
  // Kubernetes' defaults where the field is left out.
  const budgetS = (p.initialDelaySeconds ?? 0) + (p.periodSeconds ?? 10) * (p.failureThreshold ?? 3);
  return { ...p, budgetS };
}

const matches = (selector: Record<string, string> | undefined, labels: Record<string, string>) =>
  selector !== undefined && Object.keys(selector).length > 0 && Object.entries(selector).every(([k, v]) => labels[k] === v);

const BINARY_SUFFIX: Record<string, number> = { Ki: 2 ** 10, Mi: 2 ** 20, Gi: 2 ** 30 };
function bytes(q: string | number | undefined): number {
  const m = /^(\d+(?:\.\d+)?)(Ki|Mi|Gi)?$/.exec(String(q));
  if (!m) throw new Error(`unexpected memory quantity ${String(q)}`);
  return Number(m[1]) * (m[2] ? BINARY_SUFFIX[m[2]]! : 1);
}
function cores(q: string | number | undefined): number {
  const m = /^(\d+(?:\.\d+)?)(m)?$/.exec(String(q));
  if (!m) throw new Error(`unexpected CPU quantity ${String(q)}`);
  return Number(m[1]) / (m[2] ? 1000 : 1);
}

describe('deploy/kubernetes manifests', () => {
  it('has the manifests it documents', () => {
    expect(MANIFESTS.length).toBeGreaterThanOrEqual(9);
    const readme = read('deploy/kubernetes/README.md');
    for (const file of FILES.filter((f) => f !== 'README.md')) expect(readme, `README.md describes ${file}`).toContain(file);
  });

  it('reads YAML the way Kubernetes does', () => {
    // The premise of parseManifests: an unquoted off is a boolean, which no annotation or env value may be.
    const [doc] = parseAllDocuments('a: off\nb: "off"\n', { version: '1.1' });
    expect(doc?.toJS()).toEqual({ a: false, b: 'off' });
  });

  describe.each(MANIFESTS.map((m) => [`${m.file}#${m.index} ${typeOf(m.doc)}`, m] as const))('%s', (_name, m) => {
    it('is a kind with a schema, and valid against it', () => {
      const model = MODELS[typeOf(m.doc)];
      expect(model, `no schema registered for ${typeOf(m.doc)}: add it to MODELS`).toBeDefined();
      expect(() => model!(m.doc).validate()).not.toThrow();
    });

    it('has no field the schema does not know', () => {
      const model = MODELS[typeOf(m.doc)]!;
      expect(unknownFields(m.doc, (data) => model(m.doc).validate.call(data))).toEqual([]);
    });

    it('is named and, unless cluster-scoped, namespaced', () => {
      const meta = m.doc['metadata'] as { name?: string; namespace?: string } | undefined;
      expect(meta?.name).toMatch(/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/);
      if (typeOf(m.doc) !== 'v1/Namespace') expect(meta?.namespace).toBeTruthy();
    });
  });

  it('catches invalid values and unknown fields (the checks above can fail)', () => {
    const broken = structuredClone(deployment) as unknown as Obj;
    const spec = broken['spec'] as Obj;
    spec['minReadySecond'] = 5;
    (((spec['template'] as Obj)['spec'] as Obj)['containers'] as Obj[])[0]!['readinessprobe'] = {};
    expect(unknownFields(broken, (data) => new Deployment(broken as never).validate.call(data)).sort()).toEqual([
      '/spec/minReadySecond',
      '/spec/template/spec/containers/0/readinessprobe',
    ]);
    const so = structuredClone(scaledObject()) as unknown as Obj;
    ((so['spec'] as Obj)['triggers'] as Obj[])[0]!['metricsType'] = 'Value';
    expect(unknownFields(so, (data) => new ScaledObject(so as never).validate.call(data))).toEqual(['/spec/triggers/0/metricsType']);
    spec['revisionHistoryLimit'] = 'five';
    expect(() => MODELS['apps/v1/Deployment']!(broken).validate()).toThrow(/revisionHistoryLimit must be integer/);
  });

  it('puts every object of the top folder in the namespace it creates', () => {
    const ns = only<INamespace>('v1/Namespace').metadata!.name;
    for (const m of MANIFESTS.filter((x) => topLevel(x) && typeOf(x.doc) !== 'v1/Namespace'))
      expect((m.doc['metadata'] as { namespace?: string }).namespace, m.file).toBe(ns);
    // `kubectl apply -f deploy/kubernetes/` goes through the files in name order: the namespace comes first.
    const first = YAML_FILES.filter((f) => !f.includes('/'))[0];
    expect(first && parseManifests(first).map((m) => typeOf(m.doc))).toEqual(['v1/Namespace']);
  });

  describe('Deployment', () => {
    it('listens on all interfaces, on the port it declares', () => {
      expect(env('SPECD_HOST')).toBe('0.0.0.0');
      expect(containerPort?.containerPort).toBe(Number(env('SPECD_PORT')));
    });

    it('probes /ready to start and to serve, /health to live, on the container port', () => {
      for (const [name, path] of [
        ['startupProbe', '/ready'],
        ['readinessProbe', '/ready'],
        ['livenessProbe', '/health'],
      ] as const) {
        const p = probe(name);
        expect(p.httpGet?.path, name).toBe(path);
        expect(resolvePort(p.httpGet?.port), name).toBe(containerPort?.containerPort);
      }
    });

    it('gives the model load and an in-process worker reload time before restarting the container', () => {
      // The startup probe alone guards the load (liveness and readiness wait for it): well beyond the slowest.
      expect(probe('startupProbe').budgetS).toBeGreaterThanOrEqual(3 * MAX_MODEL_LOAD_S);
      // /health is 503 while a dead model worker is replaced (a model load): liveness must outlast that.
      expect(probe('livenessProbe').budgetS).toBeGreaterThanOrEqual(2 * MAX_MODEL_LOAD_S);
      // A pod whose worker reloads leaves the endpoints early in the reload, long before liveness would act.
      expect(probe('readinessProbe').budgetS).toBeLessThanOrEqual(MAX_MODEL_LOAD_S / 2);
      expect(probe('readinessProbe').budgetS).toBeLessThan(probe('livenessProbe').budgetS);
    });

    it('lets endpoints drain, then the server drain, within the termination grace period', () => {
      const graceS = Number(env('SPECD_SHUTDOWN_GRACE_MS')) / 1000;
      expect(graceS).toBeGreaterThan(0);
      const command = container.lifecycle?.preStop?.exec?.command ?? [];
      expect(command[0]).toBe('sleep');
      const preStopS = Number(command[1]);
      expect(preStopS).toBeGreaterThanOrEqual(2);
      // The kubelet counts the preStop hook against the same budget before it sends SIGTERM.
      expect(pod.terminationGracePeriodSeconds).toBeGreaterThan(graceS);
      expect(pod.terminationGracePeriodSeconds).toBeGreaterThan(preStopS + graceS);
    });

    it('requests and limits CPU and memory to fit one replica', () => {
      const { requests, limits } = container.resources ?? {};
      for (const q of [requests?.['cpu'], requests?.['memory'], limits?.['cpu'], limits?.['memory']]) expect(q).toBeDefined();
      // One core per ONNX Runtime thread, and no less memory than a replica's ~1 GiB RSS.
      expect(cores(requests?.['cpu'])).toBeGreaterThanOrEqual(Number(env('SPECD_THREADS')));
      expect(cores(limits?.['cpu'])).toBeGreaterThanOrEqual(cores(requests?.['cpu']));
      expect(bytes(requests?.['memory'])).toBeGreaterThanOrEqual(2 ** 30);
      expect(bytes(limits?.['memory'])).toBeGreaterThanOrEqual(bytes(requests?.['memory']));
    });

    it('is scraped by Prometheus on its metrics endpoint', () => {
      const annotations = deployment.spec!.template.metadata?.annotations ?? {};
      expect(annotations['prometheus.io/scrape']).toBe('true');
      expect(Number(annotations['prometheus.io/port'])).toBe(containerPort?.containerPort);
      expect(annotations['prometheus.io/path']).toBe('/metrics');
    });

    it('gets no service-link variables (SPECD_PORT=tcp://… for the Service "specd" would be read as its port)', () => {
      expect(pod.enableServiceLinks).toBe(false);
    });

    it('leaves the replica count to the autoscaler', () => {
      expect(deployment.spec!.replicas).toBeUndefined();
    });

    it('runs as the image user, non-root, with a read-only root and a writable /tmp', () => {
      expect(pod.securityContext?.runAsNonRoot).toBe(true);
      expect(pod.securityContext?.runAsUser).toBe(dockerUid());
      expect(container.securityContext?.allowPrivilegeEscalation).toBe(false);
      expect(container.securityContext?.readOnlyRootFilesystem).toBe(true);
      const tmp = container.volumeMounts?.find((v) => v.mountPath === '/tmp');
      expect(pod.volumes?.find((v) => v.name === tmp?.name)?.emptyDir).toBeDefined();
    });
  });

  it('Service: ClusterIP, port 80 to the container port of the pods', () => {
    const svc = only<IService>('v1/Service');
    expect(svc.spec?.type).toBe('ClusterIP');
    const [port] = svc.spec?.ports ?? [];
    expect(port?.port).toBe(80);
    expect(resolvePort(port?.targetPort)).toBe(containerPort?.containerPort);
    expect(matches(svc.spec?.selector, podLabels)).toBe(true);
  });

  it('PodDisruptionBudget: covers the pods and lets one go at the autoscaler minimum', () => {
    const pdb = only<IPodDisruptionBudget>('policy/v1/PodDisruptionBudget');
    expect(matches(pdb.spec?.selector?.matchLabels, podLabels)).toBe(true);
    const min = scaledObject().spec.minReplicaCount ?? 0;
    if (pdb.spec?.maxUnavailable !== undefined) expect(Number(pdb.spec.maxUnavailable)).toBeGreaterThanOrEqual(1);
    else expect(Number(pdb.spec?.minAvailable)).toBeLessThan(min);
  });

  const scaledObject = () => only<IScaledObject>('keda.sh/v1alpha1/ScaledObject');

  describe('autoscaling', () => {
    it('KEDA scales the Deployment on the queue depth from Prometheus', () => {
      const so = scaledObject();
      expect(so.spec.scaleTargetRef.name).toBe(deployment.metadata?.name);
      expect(so.spec.scaleTargetRef.kind ?? 'Deployment').toBe('Deployment');
      const [trigger, ...others] = so.spec.triggers;
      expect(others).toEqual([]);
      expect(trigger?.type).toBe('prometheus');
      expect(trigger?.metadata['query']).toContain('specd_num_requests_waiting');
      expect(trigger?.metadata['query']).toContain(`namespace="${deployment.metadata?.namespace}"`);
      expect(trigger?.metadata['serverAddress']).toMatch(/^https?:\/\//);
      expect(Number(trigger?.metadata['threshold'])).toBeGreaterThan(0);
    });

    it('never to zero: nothing would hold requests while a cold replica loads', () => {
      const so = scaledObject();
      expect(so.spec.minReplicaCount).toBeGreaterThanOrEqual(1);
      expect(so.spec.maxReplicaCount).toBeGreaterThan(so.spec.minReplicaCount!);
    });

    it('the HPA alternative scales on the same metric, served by the Prometheus Adapter rule', () => {
      const hpa = only<IHorizontalPodAutoscaler>('autoscaling/v2/HorizontalPodAutoscaler');
      expect(hpa.spec?.scaleTargetRef.name).toBe(deployment.metadata?.name);
      const metric = hpa.spec?.metrics?.find((x) => x.type === 'Pods')?.pods;
      expect(metric?.metric.name).toBe('specd_num_requests_waiting');
      expect(metric?.target.type).toBe('AverageValue');

      const adapter = only<IConfigMap>('v1/ConfigMap', (m) => m.file.startsWith('hpa-alternative/'));
      const { rules } = parseYaml(adapter.data?.['config.yaml'] ?? '') as { rules: AdapterRule[] };
      const rule = rules.find((r) => r.seriesQuery.includes('specd_num_requests_waiting'));
      expect(rule?.name.as ?? rule?.name.matches).toBe(metric?.metric.name);
      // The adapter maps series to pods through labels that the scrape config must write.
      const overrides = rule?.resources.overrides ?? {};
      expect(overrides['namespace']?.resource).toBe('namespace');
      expect(overrides['pod']?.resource).toBe('pod');
      expect(scrapeTargetLabels()).toEqual(expect.arrayContaining(Object.keys(overrides)));
    });

    it('applying the top folder applies one autoscaler: the HPA lives in a subfolder', () => {
      // kubectl apply -f <dir> does not recurse; KEDA's own HPA and a second one would fight over the replicas.
      const kinds = (where: (m: Manifest) => boolean) => MANIFESTS.filter(where).map((m) => String(m.doc['kind']));
      expect(kinds(topLevel)).toContain('ScaledObject');
      expect(kinds(topLevel)).not.toContain('HorizontalPodAutoscaler');
      expect(kinds((m) => m.file.startsWith('hpa-alternative/'))).not.toContain('ScaledObject');
    });
  });

  it('Ingress: streams unbuffered, with long timeouts, to the Service', () => {
    const ing = only<IIngress>('networking.k8s.io/v1/Ingress');
    const a = ing.metadata?.annotations ?? {};
    expect(a['nginx.ingress.kubernetes.io/proxy-buffering']).toBe('off');
    for (const key of ['proxy-read-timeout', 'proxy-send-timeout'])
      expect(Number(a[`nginx.ingress.kubernetes.io/${key}`]), key).toBeGreaterThanOrEqual(600);
    const svc = only<IService>('v1/Service');
    const backend = ing.spec?.rules?.[0]?.http?.paths[0]?.backend.service;
    expect(backend?.name).toBe(svc.metadata?.name);
    const port = svc.spec?.ports?.[0];
    expect(backend?.port?.name ?? backend?.port?.number).toBe(backend?.port?.name ? port?.name : port?.port);
  });

  it('Prometheus scrapes the annotated specd pods', () => {
    const job = scrapeJob();
    expect(job.kubernetes_sd_configs?.[0]?.role).toBe('pod');
    const keep = job.relabel_configs.find((r) => r.action === 'keep' && r.source_labels?.includes(ANNOTATION_SCRAPE));
    expect(keep?.regex).toBe('true');
    expect(job.kubernetes_sd_configs?.[0]?.namespaces?.names).toContain(deployment.metadata?.namespace);
  });
});

interface AdapterRule {
  seriesQuery: string;
  resources: { overrides?: Record<string, { resource: string }> };
  name: { matches: string; as?: string };
  metricsQuery: string;
}
interface RelabelConfig {
  source_labels?: string[];
  action?: string;
  regex?: string;
  target_label?: string;
}
interface ScrapeJob {
  job_name: string;
  kubernetes_sd_configs?: { role: string; namespaces?: { names: string[] } }[];
  relabel_configs: RelabelConfig[];
}
const ANNOTATION_SCRAPE = '__meta_kubernetes_pod_annotation_prometheus_io_scrape';
function scrapeJob(): ScrapeJob {
  const cm = only<IConfigMap>('v1/ConfigMap', (m) => m.file.startsWith('prometheus/'));
  const config = parseYaml(cm.data?.['prometheus.yml'] ?? '') as { scrape_configs: ScrapeJob[] };
  const job = config.scrape_configs.find((j) => j.job_name === 'specd');
  if (!job) throw new Error('prometheus.yml has no "specd" job');
  return job;
}
const scrapeTargetLabels = () => scrapeJob().relabel_configs.flatMap((r) => (r.target_label ? [r.target_label] : []));

describe('Grafana dashboard', () => {
  const dashboard = JSON.parse(read('deploy/kubernetes/grafana/specd-dashboard.json')) as {
    panels: { title: string; targets?: { expr: string }[] }[];
  };
  const exprs = dashboard.panels.flatMap((p) => (p.targets ?? []).map((t) => t.expr));
  const metricsSource = read('src/metrics/metrics.ts');
  const histograms = new Set([...metricsSource.matchAll(/new Histogram\(\{\s*name: '([^']+)'/g)].map((m) => m[1]));

  it('charts only metrics that specd exports', () => {
    expect(dashboard.panels.every((p) => (p.targets ?? []).length > 0)).toBe(true);
    const used = new Set(exprs.flatMap((e) => [...e.matchAll(/\bspecd_[a-z0-9_]+/g)].map((m) => m[0])));
    expect(used.size).toBeGreaterThan(0);
    for (const name of used) {
      const base = name.replace(/_(bucket|sum|count)$/, '');
      const defined = histograms.has(base) ? base : name;
      expect(metricsSource, `${name} is defined in src/metrics/metrics.ts`).toContain(`name: '${defined}'`);
    }
  });

  it('has the panels operators need', () => {
    const all = exprs.join('\n');
    for (const m of ['specd_time_to_first_token_seconds', 'specd_inter_token_latency_seconds'])
      for (const phi of ['0.5', '0.99'])
        expect(all, `${m} p${Number(phi) * 100}`).toMatch(new RegExp(`histogram_quantile\\(${phi},[^\\n]*\\b${m}_bucket\\b`));
    for (const m of [
      'specd_num_requests_running',
      'specd_num_requests_waiting',
      'specd_spec_decode_num_accepted_tokens_total',
      'specd_spec_decode_num_draft_tokens_total',
      'specd_worker_restarts_total',
    ])
      expect(all).toContain(m);
    expect(exprs.some((e) => /sum by \(finish_reason\)/.test(e) && e.includes('specd_requests_total'))).toBe(true);
    expect(exprs.some((e) => /sum by \(code\)/.test(e) && e.includes('specd_request_errors_total'))).toBe(true);
    expect(exprs.some((e) => /specd_spec_decode_num_accepted_tokens_total.*\/.*specd_spec_decode_num_draft_tokens_total/.test(e))).toBe(
      true,
    );
  });

  it('takes counters and buckets through rate() or increase(), never raw', () => {
    for (const e of exprs)
      for (const m of e.matchAll(/\bspecd_[a-z0-9_]+_(total|bucket)\b/g))
        expect(e.slice(0, m.index), `${m[0]} in ${e}`).toMatch(/\b(rate|increase)\(\s*$/);
  });
});

interface Instruction {
  op: string;
  args: string;
}
function dockerfile(): Instruction[] {
  return read('deploy/kubernetes/Dockerfile')
    .replace(/\\\r?\n/g, ' ')
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '' && !l.startsWith('#'))
    .map((l) => {
      const [op = '', ...rest] = l.split(/\s+/);
      return { op: op.toUpperCase(), args: rest.join(' ') };
    });
}
function dockerUid(): number {
  const users = dockerfile().filter((i) => i.op === 'USER');
  return Number(users.at(-1)?.args.split(':')[0]);
}

describe('Dockerfile', () => {
  const steps = dockerfile();
  const at = (op: string, pattern: RegExp) => steps.findIndex((i) => i.op === op && pattern.test(i.args));
  const pkg = JSON.parse(read('package.json')) as {
    scripts: Record<string, string>;
    dependencies: Record<string, string>;
    devDependencies: Record<string, string>;
  };

  it('builds on slim Node 20 and installs runtime dependencies only, after .npmrc', () => {
    expect(steps[0]).toEqual({ op: 'FROM', args: 'node:20-bookworm-slim' });
    const npmrc = at('COPY', /(^|\s)\.npmrc(\s|$)/);
    const ci = at('RUN', /\bnpm ci\b.*--omit=dev/);
    expect(npmrc).toBeGreaterThan(0);
    expect(ci).toBeGreaterThan(npmrc);
    // --omit=dev runs the server only because tsx is a runtime dependency.
    expect(pkg.scripts['start']).toMatch(/^tsx /);
    expect(pkg.dependencies['tsx']).toBeDefined();
    expect(pkg.devDependencies['tsx']).toBeUndefined();
  });

  it('carries the server and the bundled models', () => {
    for (const dir of ['src', DEFAULT_TARGET.split('/')[0]!, DEFAULT_DRAFT.split('/')[0]!])
      expect(at('COPY', new RegExp(`^${dir}\\s`)), dir).toBeGreaterThan(0);
  });

  it('runs as a numeric non-root user, listening on all interfaces on 8080', () => {
    const user = steps.findLastIndex((i) => i.op === 'USER');
    expect(user).toBeGreaterThan(at('RUN', /npm ci/));
    expect(user).toBeLessThan(at('CMD', /./));
    expect(dockerUid()).toBeGreaterThan(0);
    const env = steps.filter((i) => i.op === 'ENV').flatMap((i) => i.args.split(/\s+/));
    expect(env).toContain('SPECD_HOST=0.0.0.0');
    expect(steps.filter((i) => i.op === 'EXPOSE').map((i) => Number(i.args))).toEqual([containerPort?.containerPort]);
  });

  it('starts what npm start starts, in exec form so that node gets SIGTERM', () => {
    const cmd = steps.filter((i) => i.op === 'CMD');
    expect(cmd).toHaveLength(1);
    const argv = JSON.parse(cmd[0]!.args) as string[];
    const [, entry] = pkg.scripts['start']!.split(' ');
    expect(argv).toContain(entry);
    expect(argv).toContain('tsx');
    expect(argv[0]).toBe('node');
  });

  it('has a .dockerignore that keeps build junk out and the server in', () => {
    const patterns = read('.dockerignore')
      .split('\n')
      .map((l) => l.trim())
      .filter((l) => l !== '' && !l.startsWith('#'));
    expect(patterns).toEqual(expect.arrayContaining(['node_modules', '.git', 'results', 'load-tests/results', 'test-artifacts']));
    for (const needed of ['src', 'target-models', 'draft-models', '.npmrc', 'package.json', 'package-lock.json'])
      for (const p of patterns.filter((x) => !x.startsWith('!')))
        expect(p === '*' || p === '**' || p === needed || needed.startsWith(`${p}/`), `${p} excludes ${needed}`).toBe(false);
  });
});

/** Why the image cannot be built and run here, or null when it can. */
function imageTestBlocked(): string | null {
  if (modelsSwitchedOff) return modelsSwitchedOff;
  if (![DEFAULT_TARGET, DEFAULT_DRAFT].every((d) => existsSync(join(ROOT, d, 'onnx', 'model.onnx'))))
    return 'the bundled models are not in this checkout';
  const info = spawnSync('docker', ['info', '--format', '{{.ServerVersion}}'], { encoding: 'utf8', timeout: 15_000 });
  if (info.error) return `no container runtime (docker info: ${info.error.message})`;
  if (info.status !== 0) return `no container runtime (docker info: ${info.stderr.trim().split('\n').at(-1) ?? `exit ${info.status}`})`;
  return null;
}

function docker(args: string[], timeoutMs: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn('docker', args, { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (err = (err + d.toString()).slice(-8000)));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      if (code === 0) resolve(out.trim());
      else reject(new Error(`docker ${args.join(' ')} exited ${code}:\n${err}`));
    });
  });
}

const IMAGE_TEST_MS = 10 * 60_000;

describeUnless(imageTestBlocked(), 'deploy/kubernetes/Dockerfile image', () => {
  const tag = `specd-test:${process.pid}-${Date.now()}`;
  let container: string | undefined;

  afterAll(async () => {
    if (container) await docker(['rm', '-f', container], 60_000).catch(() => undefined);
    await docker(['rmi', '-f', tag], 60_000).catch(() => undefined);
  }, 120_000);

  it(
    'builds, loads the bundled models offline, serves a completion and exits 0 on SIGTERM',
    async () => {
      await docker(['build', '-f', 'deploy/kubernetes/Dockerfile', '-t', tag, '.'], 8 * 60_000);
      // As deployment.yaml runs it: read-only root, /tmp writable, no capabilities, no privilege escalation.
      container = await docker(
        [
          'run',
          '-d',
          '--read-only',
          '--tmpfs',
          '/tmp',
          '--cap-drop',
          'ALL',
          '--security-opt',
          'no-new-privileges',
          '-p',
          '127.0.0.1::8080',
          tag,
        ],
        60_000,
      );
      const hostPort = (await docker(['port', container, '8080/tcp'], 30_000)).split('\n')[0]!.split(':').at(-1);
      const base = `http://127.0.0.1:${hostPort}`;

      const deadline = Date.now() + 3 * 60_000;
      for (;;) {
        const status = await fetch(`${base}/ready`).then(
          (r) => r.status,
          () => 0,
        );
        if (status === 200) break;
        if (Date.now() > deadline) throw new Error(`/ready never 200:\n${await docker(['logs', container], 30_000)}`);
        const running = await docker(['inspect', '-f', '{{.State.Running}}', container], 30_000);
        if (running !== 'true') throw new Error(`the container exited while loading:\n${await docker(['logs', container], 30_000)}`);
        await new Promise((r) => setTimeout(r, 1000));
      }

      const res = await fetch(`${base}/v1/completions`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ prompt: 'Once upon a time', max_tokens: 4 }),
      });
      expect(res.status).toBe(200);
      const body = (await res.json()) as { choices: { text: string }[]; usage: { completion_tokens: number } };
      expect(typeof body.choices[0]?.text).toBe('string');
      expect(body.usage.completion_tokens).toBeGreaterThan(0);
      expect(body.usage.completion_tokens).toBeLessThanOrEqual(4);

      // docker stop sends SIGTERM to PID 1: exit 0 means node got it and drained, rather than being killed.
      await docker(['stop', '-t', '30', container], 60_000);
      expect(await docker(['inspect', '-f', '{{.State.ExitCode}}', container], 30_000)).toBe('0');
    },
    IMAGE_TEST_MS,
  );
});
