/**
 * `npm run cluster -- --replicas N --port P [-- server flags…]`: N specd processes on loopback ports behind a real
 * nginx on P (config rendered from deploy/nginx/specd.conf.template). Prints one JSON line
 * `{"front": URL, "replicas": [{"pid", "url"}, …]}` once everything is up, then one JSON line per replica event
 * (`replica-exited`, `replica-started`): a replica that exits for any reason (crash, kill -9, SIGTERM of a rolling
 * restart) is started again on the same port, and nginx sends it traffic again once it answers. Ctrl-C / SIGTERM
 * drains every replica and stops nginx.
 *
 * `--netns` (root only) puts each replica on its own network host: a network namespace joined to this one by a
 * veth pair (10.251.<i>.2 behind the link named in the replica's `link` field), so a test can cut one host's
 * link (`ip link set <link> down`) instead of killing a process. `--proxy-read-timeout` and `--fail-timeout` set
 * nginx's timeouts (how long a silent stream lasts, how long a failed replica rests).
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { findModels } from '../../load-tests/lib/models.ts';
import { type ServerHandle, startServer } from '../../load-tests/lib/server.ts';
import { findNginx, NGINX_MISSING, renderNginxConfig } from './nginx-config.ts';

const argv = process.argv.slice(2);
const dd = argv.indexOf('--');
const { values } = parseArgs({
  args: dd >= 0 ? argv.slice(0, dd) : argv,
  options: {
    replicas: { type: 'string', default: '2' },
    port: { type: 'string', default: '8080' },
    host: { type: 'string', default: '127.0.0.1' },
    netns: { type: 'boolean', default: false },
    'proxy-read-timeout': { type: 'string', default: '300s' },
    'fail-timeout': { type: 'string', default: '2s' },
    help: { type: 'boolean', short: 'h' },
  },
});
const serverFlags = dd >= 0 ? argv.slice(dd + 1) : [];
if (values.help) {
  process.stdout.write(
    'Usage: npm run cluster -- --replicas N --port P [--host H] [--netns] [--proxy-read-timeout 300s] [--fail-timeout 2s] [-- specd flags…]\n',
  );
  process.exit(0);
}
const replicaCount = Number(values.replicas);
if (!Number.isInteger(replicaCount) || replicaCount < 1) fail(`--replicas must be a positive integer (got ${values.replicas})`, 2);
const nginx = findNginx() ?? fail(NGINX_MISSING, 2);
const models = findModels({}) ?? fail('no models: the bundled model folders are missing', 2);

function fail(message: string, code: number): never {
  process.stderr.write(`cluster: ${message}\n`);
  process.exit(code);
}

const emit = (event: Record<string, unknown>) => process.stdout.write(`${JSON.stringify(event)}\n`);

async function freePort(host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, host, () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

/** A network namespace with a veth pair to this one: the replica's own host. */
class NetHost {
  readonly ns: string;
  readonly link: string;
  readonly ip: string;

  constructor(index: number) {
    const tag = `${process.pid % 100_000}x${index}`;
    this.ns = `specd-${tag}`;
    this.link = `sv${tag}`; // ≤ 15 characters, the kernel's limit
    this.ip = `10.251.${index}.2`;
    const ip = (...args: string[]) => execFileSync('ip', args, { stdio: ['ignore', 'ignore', 'pipe'] });
    ip('netns', 'add', this.ns);
    ip('link', 'add', this.link, 'type', 'veth', 'peer', 'name', `${this.link}n`);
    ip('link', 'set', `${this.link}n`, 'netns', this.ns);
    ip('addr', 'add', `10.251.${index}.1/24`, 'dev', this.link);
    ip('link', 'set', this.link, 'up');
    ip('netns', 'exec', this.ns, 'ip', 'addr', 'add', `${this.ip}/24`, 'dev', `${this.link}n`);
    ip('netns', 'exec', this.ns, 'ip', 'link', 'set', `${this.link}n`, 'up');
    ip('netns', 'exec', this.ns, 'ip', 'link', 'set', 'lo', 'up');
  }

  remove(): void {
    try {
      execFileSync('ip', ['netns', 'del', this.ns], { stdio: 'ignore' }); // takes the veth pair with it
    } catch {
      // already gone
    }
  }
}

class Replica {
  handle: ServerHandle | null = null;
  constructor(
    readonly index: number,
    readonly port: number,
    readonly net: NetHost | null,
  ) {}

  get host(): string {
    return this.net?.ip ?? '127.0.0.1';
  }

  get url(): string {
    return `http://${this.host}:${this.port}`;
  }

  get info(): Record<string, unknown> {
    return { pid: this.handle?.pid, url: this.url, ...(this.net ? { netns: this.net.ns, link: this.net.link } : {}) };
  }

  async start(): Promise<void> {
    this.handle = await startServer({
      models,
      flags: ['--host', this.host, '--port', String(this.port), ...serverFlags],
      ...(this.net ? { wrap: ['ip', 'netns', 'exec', this.net.ns] } : {}),
    });
    const h = this.handle;
    void h.exited!.then((e) => {
      if (stopping || this.handle !== h) return;
      emit({ event: 'replica-exited', index: this.index, pid: h.pid, code: e.code, signal: e.signal });
      void this.restart();
    });
  }

  /** Back on the same port, so nginx's upstream entry finds it again (passive health lets it back in). */
  private async restart(): Promise<void> {
    for (let attempt = 0; !stopping; attempt++) {
      await new Promise((r) => setTimeout(r, Math.min(5_000, 250 * 2 ** attempt)));
      try {
        await this.start();
        emit({ event: 'replica-started', index: this.index, ...this.info });
        return;
      } catch (e) {
        emit({ event: 'replica-restart-failed', index: this.index, message: e instanceof Error ? e.message.split('\n')[0] : String(e) });
      }
    }
  }
}

let stopping = false;
let nginxProc: ChildProcess | null = null;
const prefix = mkdtempSync(join(tmpdir(), 'specd-cluster-'));

async function stopAll(code: number): Promise<never> {
  if (!stopping) {
    stopping = true;
    await Promise.all(replicas.map((r) => r.handle?.stop()));
    if (nginxProc && nginxProc.exitCode === null) {
      const exited = new Promise((r) => nginxProc!.once('exit', r));
      nginxProc.kill('SIGQUIT'); // graceful: finish what it is proxying (the replicas have drained already)
      await Promise.race([exited, new Promise((r) => setTimeout(r, 5_000))]);
      nginxProc.kill('SIGKILL');
    }
    rmSync(prefix, { recursive: true, force: true });
    for (const r of replicas) r.net?.remove();
  }
  process.exit(code);
}

const replicas: Replica[] = [];
if (values.netns && process.getuid?.() !== 0) fail('--netns needs root (it creates network namespaces)', 2);
for (let i = 0; i < replicaCount; i++) {
  const net = values.netns ? new NetHost(i) : null;
  replicas.push(new Replica(i, net ? 8080 : await freePort('127.0.0.1'), net));
}
process.on('SIGINT', () => void stopAll(0));
process.on('SIGTERM', () => void stopAll(0));
try {
  await Promise.all(replicas.map((r) => r.start()));
} catch (e) {
  process.stderr.write(`cluster: a replica did not start: ${e instanceof Error ? e.message : String(e)}\n`);
  await stopAll(1);
}

const frontPort = values.port === '0' ? await freePort(values.host) : Number(values.port);
mkdirSync(prefix, { recursive: true });
const conf = join(prefix, 'nginx.conf');
writeFileSync(
  conf,
  renderNginxConfig({
    prefix,
    listen: `${values.host}:${frontPort}`,
    upstreams: replicas.map((r) => `${r.host}:${r.port}`),
    readTimeout: values['proxy-read-timeout'],
    failTimeout: values['fail-timeout'],
  }),
);
nginxProc = spawn(nginx, ['-p', prefix, '-c', conf, '-g', 'daemon off;'], { stdio: ['ignore', 'inherit', 'inherit'] });
nginxProc.once('exit', (code, signal) => {
  if (stopping) return;
  process.stderr.write(`cluster: nginx exited (code ${code}, signal ${signal}); stopping\n`);
  void stopAll(1);
});
const front = `http://${values.host}:${frontPort}`;
for (const deadline = Date.now() + 10_000; ;) {
  const ok = await fetch(`${front}/ready`).then(
    (r) => r.ok,
    () => false,
  );
  if (ok) break;
  if (Date.now() > deadline) {
    process.stderr.write(`cluster: nginx did not answer on ${front} within 10 s\n`);
    await stopAll(1);
  }
  await new Promise((r) => setTimeout(r, 100));
}
emit({ front, replicas: replicas.map((r) => r.info) });
