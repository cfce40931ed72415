import { describe, expect, it } from 'vitest';
import type { ToWorker } from '../../src/engine/ipc/messages.ts';
import { StreamClock, takeNext } from '../../src/engine/scheduler/deadlines.ts';

const step = (sid: number, deadline: number): ToWorker => ({ type: 'step', sid, k: 4, deadline });

describe('worker inbox order', () => {
  it('takes opens and closes first in arrival order, then the earliest deadline', () => {
    const inbox: ToWorker[] = [step(1, 30), step(2, 10), { type: 'close', sid: 3 }, step(1, 40), step(4, 20)];
    inbox.push({ type: 'close', sid: 5 });
    const order = Array.from({ length: 6 }, () => takeNext(inbox)).map(
      (m) => `${m.type}${m.sid}${m.type === 'step' ? `@${m.deadline}` : ''}`,
    );
    expect(order).toEqual(['close3', 'close5', 'step2@10', 'step4@20', 'step1@30', 'step1@40']);
    expect(inbox).toHaveLength(0);
  });

  it('keeps arrival order between equal deadlines', () => {
    const inbox = [step(1, 5), step(2, 5), step(3, 5)];
    expect([takeNext(inbox), takeNext(inbox), takeNext(inbox)].map((m) => m.sid)).toEqual([1, 2, 3]);
  });
});

describe('stream clocks', () => {
  it('a tight allowance gets earlier deadlines: it is stepped several times per step of a relaxed stream', () => {
    const tight = new StreamClock(2, 1, 1),
      relaxed = new StreamClock(50, 3, 1);
    const inbox: ToWorker[] = [];
    for (let i = 0; i < 10; i++) inbox.push(step(1, tight.nextDeadline(1)));
    for (let i = 0; i < 2; i++) inbox.push(step(2, relaxed.nextDeadline(1)));
    const first = Array.from({ length: 10 }, () => takeNext(inbox).sid);
    expect(first.filter((s) => s === 1)).toHaveLength(10); // 10 tight steps fit before the relaxed stream's first deadline
  });

  it('charges a step that makes several tokens for all of them', () => {
    const a = new StreamClock(10, 1, 1),
      b = new StreamClock(10, 1, 1);
    const d1 = a.nextDeadline(1),
      d3 = b.nextDeadline(3);
    expect(d3 - d1).toBeGreaterThan(19);
  });

  it('corrects the clock to the tokens a step made, not the tokens it was charged for', () => {
    const a = new StreamClock(10, 1, 1),
      b = new StreamClock(10, 1, 1);
    a.nextDeadline(4);
    b.nextDeadline(4);
    a.observe(1, 1); // made 1 of the 4 charged: 30 ms back
    b.observe(1, 4);
    expect(b.nextDeadline(1) - a.nextDeadline(1)).toBeCloseTo(30, 0);
  });

  it('demand is step time over allowance × tokens per step, following observed steps', () => {
    const c = new StreamClock(10, 4, 2);
    expect(c.demand()).toBeCloseTo(0.2, 6);
    for (let i = 0; i < 100; i++) c.observe(2, 1);
    expect(c.demand()).toBeCloseTo(0.2, 2);
  });
});
