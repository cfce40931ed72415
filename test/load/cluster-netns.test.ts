/**
 * A network fault, not a process fault: `npm run cluster -- --netns` puts each replica on its own network host
 * (a namespace joined by a veth pair), and cutting one host's link during load must end the streams it was
 * serving within nginx's timeouts, move new requests to the other hosts, and bring traffic back to it when the
 * link returns. Needs root (namespaces) and nginx; skips with the reason where either is missing.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { afterAll, expect, it } from 'vitest';
import { type ClusterHandle, startCluster } from '../../load-tests/lib/cluster.ts';
import { completion } from '../../load-tests/lib/http.ts';
import { scrape } from '../../load-tests/lib/metrics.ts';
import { findModels } from '../../load-tests/lib/models.ts';
import { prompt, sleep } from '../../load-tests/lib/requests.ts';
import { newResult, type StreamResult, WsConn } from '../../load-tests/lib/ws.ts';
import { findNginx, NGINX_MISSING } from '../../scripts/cluster/nginx-config.ts';
import { modelsSwitchedOff } from '../helpers/models.ts';
import { describeUnless } from '../helpers/skip.ts';

/** Why this machine cannot run the test, or null. */
function unavailable(): string | null {
  if (modelsSwitchedOff) return modelsSwitchedOff;
  if (!findModels()) return 'no models';
  if (!findNginx()) return NGINX_MISSING;
  if (process.getuid?.() !== 0) return 'network namespaces need root';
  // What the cluster's --netns does, on a small scale: a namespace and a veth pair with one end moved into it.
  const probe = `specd-probe-${process.pid % 100_000}`;
  const ip = (...args: string[]) => spawnSync('ip', args, { stdio: 'ignore' }).status === 0;
  try {
    if (!ip('netns', 'add', probe)) return 'network namespaces cannot be made here (ip netns add failed)';
    if (!ip('link', 'add', `${probe}a`.slice(-15), 'type', 'veth', 'peer', 'name', `${probe}b`.slice(-15)))
      return 'veth pairs cannot be made here';
    if (!ip('link', 'set', `${probe}b`.slice(-15), 'netns', probe)) return 'a link cannot be moved into a namespace here';
    return null;
  } finally {
    ip('link', 'del', `${probe}a`.slice(-15));
    ip('netns', 'del', probe);
  }
}

const READ_TIMEOUT_S = 4;
const FAIL_TIMEOUT_S = 3;
const TOKENS = 48;

interface Sent {
  r: StreamResult;
  startedAt: number;
  endedAt: number;
}

describeUnless(unavailable(), 'cluster: a replica host loses its network', () => {
  let cluster: ClusterHandle | null = null;
  afterAll(async () => {
    await cluster?.stop();
    for (const r of cluster?.replicas ?? []) if (r.netns) spawnSync('ip', ['netns', 'del', r.netns], { stdio: 'ignore' });
  });

  it('streams on the cut host end within the proxy timeouts, new requests go elsewhere, traffic returns with the link', async () => {
    cluster = await startCluster({
      models: findModels()!,
      replicas: 3,
      flags: ['--threads', '1', '--max-running', '8'],
      clusterFlags: ['--netns', '--proxy-read-timeout', `${READ_TIMEOUT_S}s`, '--fail-timeout', `${FAIL_TIMEOUT_S}s`],
    });
    const front = cluster;
    const victim = front.replicas[1]!;
    expect(victim.link).toBeTruthy();
    const sent: Sent[] = [];
    let stop = false;
    let i = 0;
    const worker = async () => {
      while (!stop) {
        const n = i++;
        const startedAt = performance.now();
        const body = { prompt: prompt(n), max_tokens: TOKENS, ignore_eos: true };
        let r: StreamResult;
        if (n % 2 === 0)
          r = await completion(front.url, { ...body, stream: true, stream_options: { include_usage: true } }, { timeoutMs: 60_000 });
        else {
          try {
            const conn = await WsConn.open(front.wsUrl);
            r = await conn.generate(`n-${n}`, body, { timeoutMs: 60_000 });
            await conn.close();
          } catch (e) {
            // A refused or dropped upgrade is a failed request like any other, not a crash of the load loop.
            r = { ...newResult(`n-${n}`, 'ws', startedAt), status: 'closed', errorMessage: e instanceof Error ? e.message : String(e) };
          }
        }
        sent.push({ r, startedAt, endedAt: performance.now() });
      }
    };
    const load = Promise.all(Array.from({ length: 6 }, worker));

    await sleep(3_000);
    const servedBefore = (await scrape(victim.url)).sum('specd_requests_total');
    expect(servedBefore).toBeGreaterThan(0); // it was taking traffic
    // Pull the cable on the replica's side: this end of the link stays up (no carrier), so its route stays and
    // packets to the host are simply lost. Downing this end instead would drop the route, and the machine's
    // default route would then carry them somewhere else.
    const cable = (state: 'up' | 'down') =>
      execFileSync('ip', ['netns', 'exec', victim.netns!, 'ip', 'link', 'set', `${victim.link!}n`, state]);
    cable('down');
    const cutAt = performance.now();
    await sleep(10_000);
    cable('up');
    const upAt = performance.now();
    // Back in after its fail_timeout, once nginx tries it again.
    let servedAfter = servedBefore;
    for (const until = performance.now() + 30_000; performance.now() < until && servedAfter <= servedBefore + 2;) {
      await sleep(500);
      servedAfter = await scrape(victim.url).then(
        (s) => s.sum('specd_requests_total'),
        () => servedAfter,
      );
    }
    stop = true;
    await load;

    const ok = (s: Sent) => s.r.status === 'done' && s.r.tokens === TOKENS;
    const t = (at: number) => Math.round(at - cutAt);
    const failed = sent
      .filter((s) => !ok(s))
      .map((s) => `${t(s.startedAt)}..${t(s.endedAt)} ms ${s.r.transport} ${s.r.status} ${s.r.errorMessage ?? ''}`);
    if (failed.length > 0) console.warn(`requests that failed (times from the cut):\n  ${failed.join('\n  ')}`);
    const inFlightAtCut = sent.filter((s) => s.startedAt < cutAt && s.endedAt > cutAt && !ok(s));
    // Every stream the cut caught ended (error or close), within the read timeout plus connect and retry slack.
    for (const s of inFlightAtCut) expect(s.endedAt - cutAt, JSON.stringify(s.r.status)).toBeLessThan((READ_TIMEOUT_S + 6) * 1000);
    expect(sent.filter((s) => s.r.status === 'timeout')).toEqual([]);
    // Once nginx has seen the host fail, requests go to the others: every request started well after the cut succeeds.
    const late = sent.filter((s) => s.startedAt > cutAt + (READ_TIMEOUT_S + 1) * 1000 && s.startedAt < upAt);
    expect(late.length).toBeGreaterThan(0);
    expect(
      late.filter((s) => !ok(s)).map((s) => `${s.r.transport} ${s.r.status} ${s.r.errorCode ?? ''} ${s.r.errorMessage ?? ''}`),
    ).toEqual([]);
    // And the host takes traffic again once its link is back.
    expect(servedAfter).toBeGreaterThan(servedBefore + 2);
  }, 240_000);
});
