/**
 * Golden values: the datum key and transform key of fixed inputs, and the exact text of a run record, a
 * link record and a recorded command, as the landed code wrote them (test/fixtures/golden/README.md). A
 * refactor must never change them: a changed key silently recomputes every user's results, and a changed
 * record is one `datalad rerun` or the result index may no longer read.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { buildCommand } from '../../daemon/core/command.js';
import { gitBlobOid } from '../../daemon/core/hash.js';
import { inputFingerprints } from '../../daemon/core/identity.js';
import { planDataset, type Plan } from '../../daemon/core/plan.js';
import { formatBatchMessage, formatRunMessage, parseRecords, transformFields } from '../../daemon/core/record.js';
import { EMPTY_INDEX } from '../../daemon/core/result-index.js';
import { makeSnapshot } from '../../daemon/core/tree.js';
import { specOf } from '../helpers/fake-tree.js';

const golden = (name: string) => readFileSync(new URL(`../fixtures/golden/${name}`, import.meta.url), 'utf8');

const FILES = [
  ['raw/sub-01/a.txt', 'MD5E-s6--0123456789abcdef0123456789abcdef'],
  ['raw/sub-01/b.txt', 'GIT-1111111111111111111111111111111111111111'],
  ['raw/sub-02/a.txt', 'MD5E-s6--fedcba9876543210fedcba9876543210'],
  ['code/run.sh', 'GIT-2222222222222222222222222222222222222222'],
] as const;
const SNAPSHOT = makeSnapshot('c'.repeat(40), FILES.map(([path, key]) => ({ path, mode: '100644', oid: gitBlobOid(path + key), contentKey: key })));
const SPEC = `input: { pfs: { repo: raw, glob: "/sub-*" } }
transform:
  cmd: [sh, -c]
  stdin: ['bash code/run.sh "$MINIPACH_IN_raw" > "$MINIPACH_OUT/n.txt"']
  env: { THREADS: "2" }
  code: [code/run.sh]
`;

const planOf = (yaml: string): Plan => planDataset({ snapshot: SNAPSHOT, specs: new Map([['count', specOf('count', yaml)]]), index: EMPTY_INDEX });

describe('golden keys', () => {
  const plan = planOf(SPEC);
  const count = plan.pipelines[0]!;

  it('the transform key of a fixed spec and code file', () => {
    expect(count.transform!.key).toBe('0718a89bbf8ef04bb67b13e3fae2e3f89adc919fa411b568a4bc6b6f8155944f');
  });

  it('the datum keys of fixed inputs, by content', () => {
    expect(count.datums.map((d) => [d.name, d.key])).toEqual([
      ['sub-01', '9d4978947ae165e216ed3ef767067e5add8a0fd0f8133e33d2646a61db2422f4'],
      ['sub-02', 'c08a4bea3039a5b3bc7a495078779564883fcb21ef0d8d027e70cfcc946ac85e'],
    ]);
  });

  it('the datum keys of fixed inputs, with identity: path', () => {
    expect(planOf(SPEC + 'identity: path\n').pipelines[0]!.datums.map((d) => [d.name, d.key])).toEqual([
      ['sub-01', '021a428407127310d3df5467563a2a455cb274b9ffba2380c90bebaf239ae2ce'],
      ['sub-02', '3523aeb58022274b48f05883eefa8d8a382702827325a203ab589ebf0baf3402'],
    ]);
  });
});

describe('golden records', () => {
  const plan = planOf(SPEC);
  const count = plan.pipelines[0]!;
  const [d1, d2] = count.datums;
  const spec = count.spec!;
  const command = buildCommand(spec, d1!.datum!, d1!.outputDir);
  const fields = {
    version: 1 as const,
    pipeline: 'count',
    datum: 'sub-01',
    key: d1!.key,
    transform_key: count.transform!.key,
    transform: transformFields(count.transform!),
    inputs: inputFingerprints(d1!.datum!),
    resources: { wall: 1.25, commandWall: 0.5, cpu: 0.25, maxRssKiB: 2048 },
  };
  const record = { cmd: command, chain: [], dsid: 'd5a1f0c2-0000-4000-8000-000000000000', exit: 0, inputs: ['raw/sub-01', 'code/run.sh'], extra_inputs: [], outputs: ['count/sub-01'], pwd: '.' };
  const links = [{ pipeline: 'count', datum: 'sub-02', key: d2!.key, source: { pipeline: 'count', datum: 'sub-01' }, run_commit: 'a'.repeat(40), transform_key: count.transform!.key, inputs: inputFingerprints(d2!.datum!) }];
  const removals = [{ pipeline: 'summary', datum: '', key: 'b'.repeat(64) }];

  it('the recorded command', () => {
    expect(command + '\n').toBe(golden('command.txt'));
  });

  it('the run record', () => {
    expect(formatRunMessage(record, fields)).toBe(golden('run-record.txt'));
  });

  it('the link record', () => {
    expect(formatBatchMessage(links, removals)).toBe(golden('link-record.txt'));
  });

  it('the golden records parse back into the result index', () => {
    expect(parseRecords('r'.repeat(40), golden('run-record.txt'))).toEqual([
      expect.objectContaining({ key: d1!.key, pipeline: 'count', datum: 'sub-01', kind: 'computed', runCommit: 'r'.repeat(40), transformKey: count.transform!.key }),
    ]);
    expect(parseRecords('l'.repeat(40), golden('link-record.txt'))).toEqual([
      expect.objectContaining({ key: d2!.key, pipeline: 'count', datum: 'sub-02', kind: 'linked', runCommit: 'a'.repeat(40), source: { pipeline: 'count', datum: 'sub-01' } }),
    ]);
  });
});
