import { describe, expect, it } from 'vitest';
import type { DatumPlan } from '../../daemon/core/datum-plan.js';
import { PendingKeys } from '../../daemon/core/pending-keys.js';

const plan = (key: string) => ({ key }) as unknown as DatumPlan;

describe('the keys a plan computes', () => {
  it('finds a key once set, and only that key, also among keys that share their first characters', () => {
    const pending = new PendingKeys();
    const a = plan('abcde' + '1'.repeat(59));
    expect(pending.get(a.key)).toBeUndefined();
    pending.set(a.key, a);
    expect(pending.get(a.key)).toBe(a);
    // Same prefix bit, another key: not found until set.
    const b = plan('abcde' + '2'.repeat(59));
    expect(pending.get(b.key)).toBeUndefined();
    pending.set(b.key, b);
    expect(pending.get(b.key)).toBe(b);
    expect(pending.get(a.key)).toBe(a);
    expect(pending.get('')).toBeUndefined();
    pending.set('', plan(''));
    expect(pending.get('')?.key).toBe('');
  });
});
