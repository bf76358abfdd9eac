/**
 * datumKey writes its canonical JSON piece by piece. This holds it to the definition it replaced (the
 * nested arrays through JSON.stringify) over datums with several inputs, several files, and names that
 * need escaping, beside the golden keys (golden.test.ts) that hold single-input datums.
 */
import { describe, expect, it } from 'vitest';
import type { Datum, DatumInput } from '../../daemon/core/datums.js';
import { hashCanonical } from '../../daemon/core/hash.js';
import { datumKey } from '../../daemon/core/identity.js';

/** The definition as it landed (stop 21). */
function definedKey(transformKey: string, datum: Datum, identity: 'content' | 'path'): string {
  const inputs = datum.inputs.map((i) => [i.name, identity === 'path' ? i.path : '', i.files.map((f) => [f.rel, f.entry.contentKey])]);
  if (inputs.length > 1) inputs.sort((a, b) => (JSON.stringify(a) < JSON.stringify(b) ? -1 : 1));
  return hashCanonical(JSON.stringify(['Datum', transformKey, inputs, identity === 'path' ? datum.name : '']));
}

const NAMES = ['raw', 'sub-01', 'a "quoted" name', 'back\\slash', 'tab\there', 'line\nbreak', 'ünïcödé', 'emoji 🧠', '\u2028sep', '', 'z'];

function randomDatum(seed: number): Datum {
  let x = seed;
  const next = (n: number) => ((x = Math.imul(x ^ (x >>> 15), 2246822519) + 374761393), (x >>> 7) % n);
  const pick = () => NAMES[next(NAMES.length)]!;
  const inputs: DatumInput[] = Array.from({ length: 1 + next(4) }, () => {
    const path = `${pick()}/${pick()}`;
    return {
      name: pick(),
      repo: 'raw',
      path,
      matched: path,
      files: Array.from({ length: next(4) }, () => {
        const rel = next(3) ? `${pick()}/${pick()}.txt` : '';
        return { rel, entry: { path: `${path}/${rel}`, mode: '120000', oid: 'a'.repeat(40), contentKey: next(2) ? `MD5E-s${next(99)}--${pick()}` : `GIT-${'b'.repeat(40)}` } };
      }),
    };
  });
  return { name: inputs.map((i) => i.path).join('+'), inputs };
}

describe('datum keys', () => {
  it('are the keys of the landed definition, for any inputs, files and names', () => {
    for (let seed = 1; seed <= 500; seed++) {
      const d = randomDatum(seed);
      for (const identity of ['content', 'path'] as const) expect(datumKey('t'.repeat(64), d, identity)).toBe(definedKey('t'.repeat(64), d, identity));
    }
  });
  it('do not depend on the order of the inputs', () => {
    const d = Array.from({ length: 50 }, (_, i) => randomDatum(i + 1)).find((x) => x.inputs.length > 2)!;
    const reversed = { ...d, inputs: [...d.inputs].reverse() };
    expect(d.inputs.length).toBeGreaterThan(1);
    expect(datumKey('t', reversed, 'content')).toBe(datumKey('t', d, 'content'));
  });
});
