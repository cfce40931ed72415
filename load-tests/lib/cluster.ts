/**
 * The cluster under test: `scripts/cluster/cluster.ts` (what `npm run cluster` runs) in a child process, read
 * through its JSON lines: the first names the front door and the replicas, later ones report replica exits and
 * restarts. Exposed as a ServerHandle for the front door, plus the replicas for the scenario to watch and kill.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { join } from 'node:path';
import type { ModelPair } from './models.ts';
import { ROOT } from './models.ts';
import type { ServerHandle } from './server.ts';

export interface ReplicaInfo {
  index: number;
  pid: number;
  url: string;
  /** With --netns: the replica's namespace and the name of its link in this one. */
  netns?: string;
  link?: string;
}

export interface ClusterEvent {
  event: string;
  index?: number;
  pid?: number;
  url?: string;
  at: number;
  [k: string]: unknown;
}

export interface ClusterHandle extends ServerHandle {
  readonly replicas: ReplicaInfo[];
  readonly events: ClusterEvent[];
  /** The first event (already seen or future) matching pred. */
  waitForEvent(pred: (e: ClusterEvent) => boolean, timeoutMs: number): Promise<ClusterEvent>;
}

export function isCluster(s: ServerHandle): s is ClusterHandle {
  return 'replicas' in s;
}

export async function startCluster(opts: {
  models: ModelPair;
  replicas: number;
  /** specd flags for every replica. */
  flags?: readonly string[];
  /** The cluster script's own flags (--netns, --proxy-read-timeout …). */
  clusterFlags?: readonly string[];
  readyTimeoutMs?: number;
}): Promise<ClusterHandle> {
  const args = [
    '--import',
    'tsx',
    join(ROOT, 'scripts', 'cluster', 'cluster.ts'),
    '--replicas',
    String(opts.replicas),
    '--port',
    '0',
    ...(opts.clusterFlags ?? []),
    '--',
    '--target',
    opts.models.target,
    ...(opts.models.draft === null ? ['--no-draft'] : ['--draft', opts.models.draft]),
    ...(opts.flags ?? []),
  ];
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('SPECD_') || k === 'SPECD_NGINX'));
  const child: ChildProcess = spawn(process.execPath, args, { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
  process.once('exit', () => child.kill('SIGKILL'));
  const lines: string[] = [];
  const events: ClusterEvent[] = [];
  const waiters: { pred: (e: ClusterEvent) => boolean; resolve: (e: ClusterEvent) => void }[] = [];
  const replicas: ReplicaInfo[] = [];
  let front: ((url: string) => void) | null = null;
  let buf = '';
  child.stdout!.setEncoding('utf8');
  child.stdout!.on('data', (chunk: string) => {
    buf += chunk;
    for (let nl; (nl = buf.indexOf('\n')) >= 0;) {
      const line = buf.slice(0, nl);
      buf = buf.slice(nl + 1);
      lines.push(line);
      if (lines.length > 40) lines.shift();
      let msg: Record<string, unknown>;
      try {
        msg = JSON.parse(line) as Record<string, unknown>;
      } catch {
        continue;
      }
      if (typeof msg['front'] === 'string') {
        (msg['replicas'] as Omit<ReplicaInfo, 'index'>[]).forEach((r, index) => replicas.push({ index, ...r }));
        front?.(msg['front']);
        continue;
      }
      const ev = { ...msg, at: performance.now() } as ClusterEvent;
      if (ev.event === 'replica-started' && ev.index !== undefined)
        replicas[ev.index] = { ...replicas[ev.index], index: ev.index, pid: ev.pid!, url: ev.url! };
      events.push(ev);
      for (const w of [...waiters]) {
        if (w.pred(ev)) {
          waiters.splice(waiters.indexOf(w), 1);
          w.resolve(ev);
        }
      }
    }
  });
  child.stderr!.setEncoding('utf8');
  child.stderr!.on('data', (chunk: string) => {
    lines.push(...chunk.split('\n').filter(Boolean));
    while (lines.length > 40) lines.shift();
  });
  let running = true;
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null; at: number }>((resolve) => {
    child.once('exit', (code, signal) => {
      running = false;
      resolve({ code, signal, at: performance.now() });
    });
  });
  const tail = () => lines.slice(-20).join('\n');
  const timeoutMs = opts.readyTimeoutMs ?? 300_000;
  let timer: NodeJS.Timeout | undefined;
  const url = await Promise.race([
    new Promise<string>((resolve) => (front = resolve)),
    exited.then((e) => {
      throw new Error(`the cluster exited (code ${e.code}) before it was up:\n${tail()}`);
    }),
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`the cluster was not up within ${timeoutMs} ms:\n${tail()}`)), timeoutMs);
    }),
  ]).finally(() => clearTimeout(timer));
  return {
    url,
    wsUrl: `${url.replace(/^http/, 'ws')}/v1/stream`,
    spawned: true,
    pid: child.pid ?? null,
    flags: args.slice(3),
    alive: () => running,
    exited,
    kill: (s) => {
      if (running) child.kill(s);
    },
    errorLogs: () => [],
    tail,
    stop: async () => {
      if (!running) return;
      child.kill('SIGTERM');
      const done = await Promise.race([exited.then(() => true), new Promise<boolean>((r) => setTimeout(() => r(false), 30_000).unref())]);
      if (!done) child.kill('SIGKILL');
    },
    replicas,
    events,
    waitForEvent(pred, ms) {
      const seen = events.find(pred);
      if (seen) return Promise.resolve(seen);
      return new Promise((resolve, reject) => {
        const t = setTimeout(() => reject(new Error(`no matching cluster event within ${ms} ms; events: ${JSON.stringify(events)}`)), ms);
        waiters.push({
          pred,
          resolve: (e) => {
            clearTimeout(t);
            resolve(e);
          },
        });
      });
    },
  };
}
