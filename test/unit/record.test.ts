import { describe, expect, it } from 'vitest';
import { BATCH_TITLE_PREFIX, formatBatchMessage, formatRunMessage, parseDataladRecord, parseRecords, RUN_TITLE_PREFIX, type MinipachRunFields } from '../../daemon/core/record.js';

const RECORD = { cmd: 'echo {{x}} > out/a', chain: [], dsid: 'ds-1', exit: 0, inputs: ['raw/a'], extra_inputs: [], outputs: ['out'], pwd: '.' };
const FIELDS: MinipachRunFields = { version: 1, pipeline: 'out', datum: '', key: 'k'.repeat(64), transform_key: 't'.repeat(64), inputs: [{ name: 'raw', path: 'raw', files: [['a', 'MD5E-s1--x']] }] };

describe('run records', () => {
  it('are datalad run records: title, sorted JSON between datalad markers, read back by datalad`s own pattern', () => {
    const msg = formatRunMessage(RECORD, FIELDS);
    expect(msg.startsWith(`${RUN_TITLE_PREFIX}out/.\n\n=== Do not change lines below ===\n{\n "chain"`)).toBe(true);
    expect(msg.endsWith('\n^^^ Do not change lines above ^^^\n')).toBe(true);
    const back = parseDataladRecord(msg)!;
    expect(back).toMatchObject(RECORD);
    expect(Object.keys(back)).toEqual([...Object.keys(back)].sort());
  });

  it('parse into one computed result whose run commit is the commit itself', () => {
    expect(parseRecords('c1', formatRunMessage(RECORD, FIELDS))).toEqual([
      { key: FIELDS.key, pipeline: 'out', datum: '', kind: 'computed', commit: 'c1', runCommit: 'c1', transformKey: FIELDS.transform_key, transform: undefined, inputs: FIELDS.inputs, resources: undefined },
    ]);
  });

  it('without minipach fields, of another version, or broken, give no result (never a guess)', () => {
    const plain = formatRunMessage(RECORD, FIELDS).replace(/,\n "minipach": \{[\s\S]*?\n \}/, '');
    expect(parseRecords('c', plain)).toEqual([]);
    expect(parseRecords('c', formatRunMessage(RECORD, { ...FIELDS, version: 2 as 1 }))).toEqual([]);
    expect(parseRecords('c', `${RUN_TITLE_PREFIX}x\n\n=== Do not change lines below ===\n{oops\n^^^ Do not change lines above ^^^\n`)).toEqual([]);
    expect(parseRecords('c', 'a commit somebody wrote\n')).toEqual([]);
  });
});

describe('batch records', () => {
  it('list links and removals, and only links become results (naming their source and run commit)', () => {
    const msg = formatBatchMessage(
      [{ pipeline: 'b', datum: 's2', key: 'k2', source: { pipeline: 'b', datum: 's1' }, run_commit: 'r'.repeat(40) }],
      [{ pipeline: 'b', datum: 'gone', key: 'k3' }],
    );
    expect(msg.split('\n')[0]).toBe(`${BATCH_TITLE_PREFIX}link 1, remove 1 datums`);
    expect(msg).toContain('  link   b/s2 <- b/s1 (rrrrrrrrrr)\n  remove b/gone\n');
    expect(parseRecords('c2', msg)).toEqual([{ key: 'k2', pipeline: 'b', datum: 's2', kind: 'linked', commit: 'c2', runCommit: 'r'.repeat(40), source: { pipeline: 'b', datum: 's1' }, transformKey: undefined, inputs: undefined }]);
  });

  it('a single entry is "datum", not "datums"', () => {
    expect(formatBatchMessage([], [{ pipeline: 'b', datum: 'x', key: 'k' }]).split('\n')[0]).toBe(`${BATCH_TITLE_PREFIX}remove 1 datum`);
  });
});
