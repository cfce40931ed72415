/** The server's own records of finished streams (GET /v1/streams/recent), matched to the client's results. */
import type { StreamResult } from './ws.ts';

export interface ServerRecord {
  id: string;
  client_id?: string;
  transport: 'http' | 'ws';
  finish_reason: string;
  timings: { queue_ms: number; ttft_ms: number; e2e_ms: number };
  itl_ms_series: number[];
}

export async function fetchRecent(url: string, limit: number): Promise<ServerRecord[]> {
  const res = await fetch(`${url}/v1/streams/recent?limit=${limit}`);
  if (!res.ok) throw new Error(`GET /v1/streams/recent: ${res.status}`);
  return ((await res.json()) as { data: ServerRecord[] }).data;
}

/** The record of each result: WebSocket streams by client id (unique per run), HTTP streams by response id. */
export function matchRecords(results: readonly StreamResult[], records: readonly ServerRecord[]): Map<StreamResult, ServerRecord> {
  const ws = new Map<string, ServerRecord>();
  const http = new Map<string, ServerRecord>();
  for (const r of records) {
    if (r.transport === 'ws' && r.client_id !== undefined) ws.set(r.client_id, r);
    else if (r.transport === 'http') http.set(r.id, r);
  }
  const out = new Map<StreamResult, ServerRecord>();
  for (const r of results) {
    const rec = r.transport === 'ws' ? ws.get(r.id) : r.serverId !== undefined ? http.get(r.serverId) : undefined;
    if (rec) out.set(r, rec);
  }
  return out;
}
