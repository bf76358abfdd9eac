/**
 * `plan --json` writes each datum field by field (10^5 of them); this holds that text to what JSON.stringify
 * gives the same datum as an object, for names that need escaping, several inputs, a linked result and a
 * removal (no inputs).
 */
import { describe, expect, it } from 'vitest';
import { datumJson } from '../../daemon/cli/printers.js';
import type { DatumPlan } from '../../daemon/core/plan.js';
import type { ResultRecord } from '../../daemon/core/result-index.js';

const entry = { path: 'raw/x', mode: '120000', oid: 'a'.repeat(40), contentKey: 'MD5E-s1--x' };

function asObject(d: DatumPlan): unknown {
  return {
    name: d.name,
    key: d.key,
    action: d.action,
    reason: d.reason,
    output: d.outputDir,
    inputs: d.datum?.inputs.map((x) => ({ name: x.name, path: x.path, files: x.files.length })),
    source: d.source && !('pending' in d.source) ? { pipeline: d.source.pipeline, datum: d.source.datum, commit: d.source.runCommit } : undefined,
  };
}

describe('plan --json datums', () => {
  it('are the text JSON.stringify gives them as objects', () => {
    const names = ['s000001', 'a "quoted"/name', 'back\\slash', 'line\nbreak', 'ünï 🧠', '\u2028', ''];
    const datums: DatumPlan[] = names.flatMap((name, i) => {
      const datum = {
        name,
        inputs: Array.from({ length: (i % 3) + 1 }, (_, k) => ({ name: `in${k}${name}`, repo: 'raw', path: `raw/${name}`, matched: name, files: Array.from({ length: k }, () => ({ rel: name, entry })) })),
      };
      const source = { pipeline: 'p', datum: name, runCommit: 'c'.repeat(40), key: 'k' } as unknown as ResultRecord;
      return [
        { pipeline: 'p', name, key: 'f'.repeat(64), action: 'compute', reason: `new datum ${name}`, outputDir: `p/${name}`, marker: `p/.minipach/datums/${name}.datum`, datum },
        { pipeline: 'p', name, key: 'e'.repeat(64), action: 'link', reason: 'same key', outputDir: `p/${name}`, marker: 'm', datum, source },
        { pipeline: 'p', name, key: '', action: 'remove', reason: 'the input no longer produces this datum', outputDir: `p/${name}`, marker: 'm' },
      ] satisfies DatumPlan[];
    });
    for (const d of datums) expect(datumJson(d)).toBe(JSON.stringify(asObject(d)));
  });
});
