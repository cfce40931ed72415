import { readFileSync } from 'node:fs';
import { Hono } from 'hono';
import type { AppEnv } from '../http/types.ts';

/**
 * GET / (the playground page) and GET /playground/<asset>: plain files from this folder, read once, served
 * as they are (no build step, nothing from a CDN). Only the files listed here are served.
 */
const ASSETS: Record<string, string> = {
  'index.html': 'text/html; charset=utf-8',
  'app.js': 'text/javascript; charset=utf-8',
  'stream.js': 'text/javascript; charset=utf-8',
  'run.js': 'text/javascript; charset=utf-8',
  'style.css': 'text/css; charset=utf-8',
};

/** Same-origin everything: the page's scripts, styles and its WebSocket / fetch calls. */
const CSP =
  "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self'; " +
  "base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

export function playgroundRoutes(): Hono<AppEnv> {
  const app = new Hono<AppEnv>();
  for (const [name, type] of Object.entries(ASSETS)) {
    const body = readFileSync(new URL(name, import.meta.url), 'utf8');
    const headers = { 'content-type': type, 'cache-control': 'no-cache', 'x-content-type-options': 'nosniff' };
    if (name === 'index.html') app.get('/', (c) => c.body(body, 200, { ...headers, 'content-security-policy': CSP }));
    else app.get(`/playground/${name}`, (c) => c.body(body, 200, headers));
  }
  return app;
}
