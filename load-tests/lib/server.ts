/**
 * The server under test: the real `src/main.ts` in a child process on 127.0.0.1 with an ephemeral port (its
 * "specd ready at URL" line is read from stdout once the models are loaded), or an already running one (--url).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { ModelPair } from './models.ts';
import { ROOT } from './models.ts';

export interface ServerHandle {
  /** http://127.0.0.1:PORT */
  readonly url: string;
  /** ws://127.0.0.1:PORT/v1/stream */
  readonly wsUrl: string;
  /** Whether this handle started the process (SIGTERM and exit checks need that). */
  readonly spawned: boolean;
  readonly pid: number | null;
  /** The flags the process was started with (null for --url). */
  readonly flags: readonly string[] | null;
  /** True while the process runs (always true for --url: the check then is GET /health). */
  alive(): boolean;
  /** Resolves with the exit of a spawned process. */
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null; at: number }> | null;
  /** Sends a signal to a spawned process. */
  kill(signal: NodeJS.Signals): void;
  /** Server log lines at level error or fatal seen so far (pino JSON on stdout), newest last, at most 50. */
  errorLogs(): string[];
  /** The last lines of stdout / stderr, for failure messages. */
  tail(): string;
  /** SIGTERM and wait (then SIGKILL after 20 s); a no-op for --url. */
  stop(): Promise<void>;
}

const live = new Set<ChildProcess>();
let exitHook = false;
function registerExitHook(): void {
  if (exitHook) return;
  exitHook = true;
  process.on('exit', () => {
    for (const c of live) c.kill('SIGKILL');
  });
}

export interface StartOptions {
  models: ModelPair;
  /** Extra server flags (`--max-running 2`, …); they come after the defaults below, so they win. */
  flags?: readonly string[];
  readyTimeoutMs?: number;
  logLevel?: string;
  /** Run the server under this command prefix (e.g. `ip netns exec NS`: a replica on its own network host). */
  wrap?: readonly string[];
}

/** Starts `node --import tsx src/main.ts` on 127.0.0.1:0 and resolves once it printed its ready line. */
export async function startServer(opts: StartOptions): Promise<ServerHandle> {
  registerExitHook();
  const flags = [
    '--host',
    '127.0.0.1',
    '--port',
    '0',
    '--target',
    opts.models.target,
    ...(opts.models.draft === null ? ['--no-draft'] : ['--draft', opts.models.draft]),
    '--log-level',
    opts.logLevel ?? 'warn',
    ...(opts.flags ?? []),
  ];
  // The scenario's flags define the configuration: no SPECD_* variable of the caller's shell leaks in.
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('SPECD_')));
  const argv = [process.execPath, '--import', 'tsx', join(ROOT, 'src', 'main.ts'), ...flags];
  const [cmd, ...args] = [...(opts.wrap ?? []), ...argv];
  const child = spawn(cmd!, args, {
    cwd: ROOT,
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  live.add(child);
  const lines: string[] = [];
  const errors: string[] = [];
  const keep = (line: string) => {
    lines.push(line);
    if (lines.length > 40) lines.shift();
    if (/"level":(50|60)\b/.test(line)) {
      errors.push(line);
      if (errors.length > 50) errors.shift();
    }
  };
  let onReady: ((url: string) => void) | null = null;
  const lineReader = (stream: NodeJS.ReadableStream) => {
    let buf = '';
    stream.setEncoding('utf8');
    stream.on('data', (chunk: string) => {
      buf += chunk;
      let nl;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        keep(line);
        const m = /specd ready at (http:\/\/\S+)/.exec(line);
        if (m && onReady) onReady(m[1]!);
      }
    });
  };
  lineReader(child.stdout!);
  lineReader(child.stderr!);
  let running = true;
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null; at: number }>((resolve) => {
    child.once('exit', (code, signal) => {
      running = false;
      live.delete(child);
      resolve({ code, signal, at: performance.now() });
    });
  });
  const tail = () => lines.slice(-20).join('\n');
  const timeoutMs = opts.readyTimeoutMs ?? 180_000;
  let timer: NodeJS.Timeout | undefined;
  const url = await Promise.race([
    new Promise<string>((resolve) => {
      onReady = resolve;
    }),
    exited.then((e) => {
      throw new Error(`the server exited (code ${e.code}, signal ${e.signal}) before it was ready:\n${tail()}`);
    }),
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`the server was not ready within ${timeoutMs} ms:\n${tail()}`)), timeoutMs);
    }),
  ])
    .catch((e: unknown) => {
      child.kill('SIGKILL');
      throw e;
    })
    .finally(() => clearTimeout(timer));

  const stop = async () => {
    if (!running) return;
    child.kill('SIGTERM');
    const ac = new AbortController();
    const done = await Promise.race([exited.then(() => true), sleep(20_000, false, { signal: ac.signal }).catch(() => false)]);
    ac.abort();
    if (!done) {
      child.kill('SIGKILL');
      await exited;
    }
  };
  return {
    url,
    wsUrl: `${url.replace(/^http/, 'ws')}/v1/stream`,
    spawned: true,
    pid: child.pid ?? null,
    flags,
    alive: () => running,
    exited,
    kill: (s) => {
      if (running) child.kill(s);
    },
    errorLogs: () => [...errors],
    tail,
    stop,
  };
}

/** A server someone else started (--url): only 127.0.0.1 / localhost are accepted. */
export async function attachServer(url: string, readyTimeoutMs = 30_000): Promise<ServerHandle> {
  const u = new URL(url);
  if (!['127.0.0.1', 'localhost', '[::1]'].includes(u.hostname)) {
    throw new Error(`--url must point at this machine (127.0.0.1), not ${u.hostname}: the load tests only drive a local server`);
  }
  const base = `${u.protocol}//${u.host}`;
  const deadline = Date.now() + readyTimeoutMs;
  for (;;) {
    const ok = await fetch(`${base}/ready`).then(
      (r) => r.ok,
      () => false,
    );
    if (ok) break;
    if (Date.now() > deadline) throw new Error(`${base}/ready did not answer 200 within ${readyTimeoutMs} ms`);
    await sleep(250);
  }
  return {
    url: base,
    wsUrl: `${base.replace(/^http/, 'ws')}/v1/stream`,
    spawned: false,
    pid: null,
    flags: null,
    alive: () => true,
    exited: null,
    kill: () => {
      throw new Error('cannot signal a server started elsewhere (--url)');
    },
    errorLogs: () => [],
    tail: () => '',
    stop: async () => {},
  };
}
