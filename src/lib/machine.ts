/**
 * The machine a figure was measured on, as every benchmark prints and records it: ratios from one run are
 * comparable across machines only when the reader knows the CPU and its last-level cache (a draft whose weights
 * fit in L3 next to the target's runs several times faster per pass than one that streams from memory).
 */
import { readdirSync, readFileSync } from 'node:fs';
import { cpus } from 'node:os';

export interface Machine {
  cpuModel: string;
  cores: number;
  /** Size of the level-3 cache as the kernel reports it ("32768K"), or null where it does not. */
  l3: string | null;
  node: string;
  platform: string;
}

function l3Size(): string | null {
  const dir = '/sys/devices/system/cpu/cpu0/cache';
  try {
    for (const index of readdirSync(dir).filter((d) => d.startsWith('index'))) {
      const read = (f: string) => readFileSync(`${dir}/${index}/${f}`, 'utf8').trim();
      if (read('level') === '3') return read('size');
    }
  } catch {
    // not Linux, or no sysfs: say unknown rather than guess
  }
  return null;
}

export function machine(): Machine {
  return {
    cpuModel: cpus()[0]?.model.trim() ?? 'unknown',
    cores: cpus().length,
    l3: l3Size(),
    node: process.version,
    platform: `${process.platform}-${process.arch}`,
  };
}

/** One line for a benchmark's output: `machine: AMD EPYC, 2 cores, L3 32768K, node v20.20.2 (linux-x64)`. */
export function machineLine(m: Machine = machine()): string {
  return `machine: ${m.cpuModel}, ${m.cores} cores, L3 ${m.l3 ?? 'unknown'}, node ${m.node} (${m.platform})`;
}
