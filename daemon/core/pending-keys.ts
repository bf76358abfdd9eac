/**
 * The datums a plan computes, by datum key: a later datum with the same key links to the first instead of
 * computing it again. Nearly every key of a plan is new, and a probe of a map of 10^5 keys misses the
 * processor's caches; a bit per key prefix (one megabit) answers most of those "not seen" without one.
 */
import type { DatumPlan } from './datum-plan.js';

const BITS = 1 << 20;

export class PendingKeys {
  private readonly seen = new Uint8Array(BITS / 8);
  private readonly byKey = new Map<string, DatumPlan>();

  get(key: string): DatumPlan | undefined {
    const b = bitOf(key);
    return this.seen[b >>> 3]! & (1 << (b & 7)) ? this.byKey.get(key) : undefined;
  }

  set(key: string, plan: DatumPlan): void {
    const b = bitOf(key);
    this.seen[b >>> 3]! |= 1 << (b & 7);
    this.byKey.set(key, plan);
  }
}

/** 20 bits of a key: its first five characters, four bits each (a key is hex; any string works). */
function bitOf(key: string): number {
  let b = 0;
  for (let i = 0; i < 5 && i < key.length; i++) b = (b << 4) | (key.charCodeAt(i) & 0xf);
  return b;
}
