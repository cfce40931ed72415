import { readFileSync } from 'node:fs';
import { z } from 'zod';
import { describe, expect, it } from 'vitest';
import { createMetrics } from '../../src/metrics/index.ts';
import {
  CancelFrameSchema,
  DoneFrameSchema,
  ErrorFrameSchema,
  FinishReasonSchema,
  generateFrameSchema,
  ItlSummarySchema,
  limitsFor,
  SpeculativeSchema,
  StartFrameSchema,
  TimingsSchema,
  TokenFrameSchema,
  TokenSourceSchema,
  UsageSchema,
  WireTokenSchema,
} from '../../src/protocol/index.ts';
import { ERROR_TABLE } from '../../src/server/index.ts';

const doc = readFileSync(new URL('../../docs/protocol.md', import.meta.url), 'utf8');
const limits = limitsFor({ maxCompletionTokens: 512, maxK: 8, maxPromptTokens: 896 });

describe('docs/protocol.md stays in step with the schemas', () => {
  const objects: [string, z.AnyZodObject][] = [
    ['generate', generateFrameSchema(limits)],
    ['cancel', CancelFrameSchema],
    ['start', StartFrameSchema],
    ['token', TokenFrameSchema],
    ['token.tokens[]', WireTokenSchema],
    ['done', DoneFrameSchema],
    ['error', ErrorFrameSchema],
    ['usage', UsageSchema],
    ['timings', TimingsSchema],
    ['itl_ms', ItlSummarySchema],
    ['speculative', SpeculativeSchema],
  ];
  it.each(objects)('every field of %s is documented', (name, schema) => {
    const prefix = name === 'token.tokens[]' ? 'tokens[].' : '';
    for (const key of Object.keys(schema.shape)) expect(doc, key).toContain(`\`${prefix}${key}\``);
  });

  it('every frame type, finish reason, token source and error code is documented', () => {
    for (const type of ['generate', 'cancel', 'start', 'token', 'done', 'error']) expect(doc).toContain(`"type": "${type}"`);
    for (const v of [...FinishReasonSchema.options, ...TokenSourceSchema.options]) expect(doc).toContain(`\`${v}\``);
    for (const [code, spec] of Object.entries(ERROR_TABLE)) {
      expect(doc).toMatch(new RegExp(`\\| \`${code}\` \\| ${spec.status}`));
    }
  });

  it('every metric is documented', async () => {
    const m = createMetrics({ stats: () => ({ running: 0, queued: 0 }) });
    const names = (await m.registry.getMetricsAsJSON()).map((x) => x.name);
    expect(names.length).toBeGreaterThan(10);
    for (const name of names) expect(doc, name).toContain(`\`${name}\``);
  });
});
