import { describe, expect, it } from 'vitest';
import { Batcher } from '../../daemon/exec/batcher.js';

const tick = (ms = 0) => new Promise((r) => setTimeout(r, ms));

describe('Batcher', () => {
  it('gathers items of one group into batches of at most `size`, starting a partial one after `waitMs`', async () => {
    const seen: string[][] = [];
    const b = new Batcher<string, string>({ size: 3, waitMs: 30, parallel: 1 }, async (group, items, settle) => {
      seen.push([group, ...items]);
      for (const i of items) settle(i, `${i}!`);
    });
    const results = await Promise.all(['a', 'b', 'c', 'd'].map((x) => b.submit('g', x)));
    expect(results).toEqual(['a!', 'b!', 'c!', 'd!']);
    expect(seen).toEqual([['g', 'a', 'b', 'c'], ['g', 'd']]);
  });

  it('keeps groups apart, runs at most `parallel` batches at once, and fails what a batch left unsettled', async () => {
    let running = 0;
    let most = 0;
    const b = new Batcher<string, string>({ size: 2, waitMs: 5, parallel: 2 }, async (_g, items, settle) => {
      most = Math.max(most, ++running);
      await tick(20);
      running--;
      if (items.includes('boom')) throw new Error('set-up failed');
      settle(items[0]!, 'first only');
    });
    const out = await Promise.allSettled([b.submit('x', 'p'), b.submit('y', 'q'), b.submit('z', 'r'), b.submit('x', 'p2'), b.submit('w', 'boom')]);
    expect(most).toBe(2);
    expect(out.map((o) => (o.status === 'fulfilled' ? o.value : (o.reason as Error).message))).toEqual([
      'first only',
      'first only',
      'first only',
      'the batch ended without running this datum',
      'set-up failed',
    ]);
  });

  it('a batch waiting for a free slot fills up with datums that come one at a time meanwhile', async () => {
    const seen: string[][] = [];
    let release!: () => void;
    const b = new Batcher<string, string>({ size: 3, waitMs: 5, parallel: 1 }, async (_g, items, settle) => {
      seen.push([...items]);
      if (items[0] === 'a') await new Promise<void>((r) => (release = r));
      for (const i of items) settle(i, i);
    });
    const all = [b.submit('g', 'a')];
    await tick(20); // 'a' runs alone, holding the only slot
    for (const x of ['b', 'c', 'd', 'e']) {
      all.push(b.submit('g', x));
      await tick(15); // each comes after the wait of the one before has run out
    }
    release();
    await Promise.all(all);
    expect(seen).toEqual([['a'], ['b', 'c', 'd'], ['e']]);
  });
});
