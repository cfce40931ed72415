/** Every scenario, in the order `all` runs them. */
import type { Scenario } from '../lib/result.ts';
import { budget } from './budget.ts';
import { cluster } from './cluster.ts';
import { disconnects } from './disconnects.ts';
import { fuzz } from './fuzz.ts';
import { overload } from './overload.ts';
import { shutdown } from './shutdown.ts';
import { soak } from './soak.ts';
import { steady } from './steady.ts';

export const SCENARIOS: readonly Scenario[] = [steady, overload, disconnects, fuzz, soak, shutdown, budget, cluster];

export function scenarioByName(name: string): Scenario | undefined {
  return SCENARIOS.find((s) => s.name === name);
}
