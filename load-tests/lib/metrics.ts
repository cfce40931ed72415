/** Reads the server's Prometheus text (GET /metrics): gauges, counters and the process RSS. */

export interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

export class Scrape {
  constructor(
    readonly samples: Sample[],
    readonly at: number,
  ) {}

  /** Sum of every series of `name` whose labels include `match`. */
  sum(name: string, match: Record<string, string> = {}): number {
    let total = 0;
    for (const s of this.samples) {
      if (s.name !== name) continue;
      if (Object.entries(match).every(([k, v]) => s.labels[k] === v)) total += s.value;
    }
    return total;
  }

  /** The value of a label-less series (gauges such as specd_num_requests_running). */
  value(name: string): number {
    const s = this.samples.find((x) => x.name === name);
    if (!s) throw new Error(`metric ${name} is not exported`);
    return s.value;
  }

  get running(): number {
    return this.value('specd_num_requests_running');
  }
  get waiting(): number {
    return this.value('specd_num_requests_waiting');
  }
  /** Resident set size of the server process, bytes (prom-client's process metrics). */
  get rss(): number {
    return this.value('process_resident_memory_bytes');
  }
  get heapUsed(): number {
    return this.value('nodejs_heap_size_used_bytes');
  }
  /** Mark-compact collections so far (prom-client's nodejs_gc_duration_seconds{kind="major"}). */
  get majorGcs(): number {
    return this.sum('nodejs_gc_duration_seconds_count', { kind: 'major' });
  }
}

const LINE = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)/;
const LABEL = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g;

export function parsePrometheus(text: string): Sample[] {
  const out: Sample[] = [];
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const m = LINE.exec(line);
    if (!m) continue;
    const labels: Record<string, string> = {};
    for (const l of (m[2] ?? '').matchAll(LABEL)) labels[l[1]!] = l[2]!.replace(/\\(.)/g, (_, c: string) => (c === 'n' ? '\n' : c));
    out.push({ name: m[1]!, labels, value: Number(m[3]) });
  }
  return out;
}

export async function scrape(url: string): Promise<Scrape> {
  const res = await fetch(`${url}/metrics`);
  if (!res.ok) throw new Error(`GET /metrics: ${res.status}`);
  return new Scrape(parsePrometheus(await res.text()), performance.now());
}

/** Polls /metrics every `everyMs` until `cond` holds or `timeoutMs` passes; returns the last scrape and whether it held. */
export async function pollMetrics(
  url: string,
  cond: (s: Scrape) => boolean,
  timeoutMs: number,
  everyMs = 25,
): Promise<{ ok: boolean; scrape: Scrape; elapsedMs: number; samples: Scrape[] }> {
  const t0 = performance.now();
  const samples: Scrape[] = [];
  for (;;) {
    const s = await scrape(url);
    samples.push(s);
    if (cond(s)) return { ok: true, scrape: s, elapsedMs: s.at - t0, samples };
    if (performance.now() - t0 > timeoutMs) return { ok: false, scrape: s, elapsedMs: s.at - t0, samples };
    await new Promise((r) => setTimeout(r, everyMs));
  }
}
