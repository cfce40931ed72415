import { cpus } from 'node:os';
import { describe, expect, it } from 'vitest';
import { machine, machineLine } from '../../src/lib/machine.ts';

describe('machine', () => {
  it('names the CPU, its cores and its L3 (or says it is unknown)', () => {
    const m = machine();
    expect(m.cores).toBe(cpus().length);
    expect(m.cpuModel.length).toBeGreaterThan(0);
    if (m.l3 !== null) expect(m.l3).toMatch(/^\d+[KMG]?$/); // as sysfs writes it
    const line = machineLine(m);
    expect(line).toContain(m.cpuModel);
    expect(line).toContain(`L3 ${m.l3 ?? 'unknown'}`);
    expect(machineLine({ ...m, l3: null })).toContain('L3 unknown');
  });
});
