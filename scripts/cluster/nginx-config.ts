import { accessSync, constants, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ROOT } from '../bench/cli.ts';

export const NGINX_TEMPLATE = join(ROOT, 'deploy', 'nginx', 'specd.conf.template');

export interface NginxConfigOptions {
  /** Directory for nginx's pid, error log and temp files. */
  prefix: string;
  /** host:port nginx listens on. */
  listen: string;
  /** host:port of each replica. */
  upstreams: readonly string[];
  maxFails?: number;
  failTimeout?: string;
  /** Longest silence on a stream (a WebSocket idles up to the server's heartbeat). */
  readTimeout?: string;
}

/** deploy/nginx/specd.conf.template with its placeholders filled; an unknown placeholder is an error, not a blank. */
export function renderNginxConfig(o: NginxConfigOptions): string {
  const maxFails = o.maxFails ?? 1;
  const failTimeout = o.failTimeout ?? '2s';
  const values: Record<string, string> = {
    prefix: o.prefix,
    listen: o.listen,
    maxFails: String(maxFails),
    failTimeout,
    readTimeout: o.readTimeout ?? '300s',
    tries: String(Math.max(1, o.upstreams.length)),
    servers: o.upstreams.map((u) => `    server ${u} max_fails=${maxFails} fail_timeout=${failTimeout};`).join('\n'),
  };
  return readFileSync(NGINX_TEMPLATE, 'utf8').replace(/\{\{(\w+)\}\}/g, (_, key: string) => {
    const v = values[key];
    if (v === undefined) throw new Error(`${NGINX_TEMPLATE}: unknown placeholder {{${key}}}`);
    return v;
  });
}

/** The nginx binary: $SPECD_NGINX, else nginx on PATH or in /usr/sbin; null when there is none. */
export function findNginx(): string | null {
  const candidates = [
    process.env['SPECD_NGINX'],
    ...(process.env['PATH'] ?? '').split(':').map((d) => join(d, 'nginx')),
    '/usr/sbin/nginx',
  ];
  for (const c of candidates) {
    if (!c) continue;
    try {
      accessSync(c, constants.X_OK);
      return c;
    } catch {
      // not there
    }
  }
  return null;
}

export const NGINX_MISSING = 'nginx was not found (set SPECD_NGINX, or install it: sudo apt-get install nginx)';
