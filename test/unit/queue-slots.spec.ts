import { describe, expect, it } from '@jest/globals';
import { QueueSlots } from '../../lib/backends/etcd/queue-slots.js';

describe('QueueSlots', () => {
  it('claims the smallest free number per lock name', () => {
    const slots = new QueueSlots();
    const a = slots.claim('order:1');
    const b = slots.claim('order:1');
    expect([a.number, b.number, slots.claim('order:2').number]).toEqual([0, 1, 0]);
    a.free();
    expect(slots.claim('order:1').number).toBe(0);
  });

  it('a slot is given back once: a second free never frees the next claim of the same number', () => {
    const slots = new QueueSlots();
    const first = slots.claim('order:1');
    first.free();
    const second = slots.claim('order:1'); // reuses 0
    first.free(); // late: a second discard of the first attempt
    expect(second.number).toBe(0);
    expect(slots.claim('order:1').number).toBe(1); // 0 is still the second attempt's
  });
});
