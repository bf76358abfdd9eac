import { describe, expect, it } from 'vitest';
import { toProv, type ExplainedDatum, type Explanation } from '../../daemon/core/provenance.js';

const RUN = 'a'.repeat(40);
const upstream: ExplainedDatum = {
  id: 'count/sub-01@aaaaaaaaaaaa',
  pipeline: 'count',
  datum: 'sub-01',
  key: 'k1',
  kind: 'computed',
  output_dir: 'count/sub-01',
  commit: RUN,
  run_commit: RUN,
  rerun: `datalad rerun ${RUN}`,
  transform: { key: 't1' },
  command: 'wc -c raw/sub-01/a',
  resources: { wall: 1, cpu: 0.5, maxRssKiB: 100 },
  inputs: [{ name: 'raw', path: 'raw/sub-01', files: [{ path: 'raw/sub-01/a', key: 'MD5E-s1--r', added_in: 'b'.repeat(40) }] }],
  upstream: [],
};
const linked: ExplainedDatum = {
  ...upstream,
  id: 'summary/.@cccccccccccc',
  pipeline: 'summary',
  datum: '',
  key: 'k2',
  kind: 'linked',
  output_dir: 'summary',
  commit: 'c'.repeat(40),
  linked_from: { pipeline: 'summary', datum: '', run_commit: 'd'.repeat(40) },
  inputs: [{ name: 'count', path: 'count', files: [{ path: 'count/sub-01/n', key: 'GIT-n', made_by: upstream.id }] }],
  upstream: [upstream.id],
};
const x: Explanation = { path: 'summary/total', commit: 'e'.repeat(40), file: { path: 'summary/total', key: 'GIT-t', made_by: linked.id }, datums: [linked, upstream] };

describe('toProv', () => {
  const doc = toProv(x);
  const rels = (kind: 'used' | 'wasGeneratedBy' | 'wasInformedBy' | 'wasAssociatedWith') => Object.values(doc[kind]);

  it('one entity per file and content key, raw data typed as such', () => {
    expect(Object.keys(doc.entity).sort()).toEqual(['minipach:file/count/sub-01/n@GIT-n', 'minipach:file/raw/sub-01/a@MD5E-s1--r', 'minipach:file/summary/total@GIT-t']);
    expect(doc.entity['minipach:file/raw/sub-01/a@MD5E-s1--r']).toMatchObject({ 'minipach:addedInCommit': 'b'.repeat(40), 'prov:type': { $: 'minipach:RawData', type: 'prov:QUALIFIED_NAME' } });
  });

  it('a run and a link are activities; the link was informed by the run it reuses', () => {
    const run = `minipach:run/${RUN}/count/sub-01`;
    const link = `minipach:link/${'c'.repeat(40)}/summary/.`;
    expect(doc.activity[run]).toMatchObject({ 'minipach:datumKey': 'k1', 'minipach:cpuSeconds': 0.5, 'minipach:rerun': `datalad rerun ${RUN}` });
    expect(doc.activity[link]).toMatchObject({ 'prov:type': { $: 'minipach:Link', type: 'prov:QUALIFIED_NAME' } });
    expect(rels('wasInformedBy')).toEqual([{ 'prov:informed': link, 'prov:informant': `minipach:run/${'d'.repeat(40)}/summary/.` }]);
  });

  it('every relation connects what the document declares', () => {
    const ids = new Set([...Object.keys(doc.entity), ...Object.keys(doc.activity), ...Object.keys(doc.agent)]);
    for (const kind of ['used', 'wasGeneratedBy', 'wasInformedBy', 'wasAssociatedWith'] as const) {
      for (const r of rels(kind)) for (const v of Object.values(r)) if (typeof v === 'string' && v.startsWith('minipach:') && !v.startsWith('minipach:input/')) expect(ids).toContain(v);
    }
    expect(rels('used')).toContainEqual({ 'prov:activity': `minipach:run/${RUN}/count/sub-01`, 'prov:entity': 'minipach:file/raw/sub-01/a@MD5E-s1--r', 'prov:role': 'minipach:input/raw' });
    expect(rels('wasGeneratedBy')).toEqual(
      expect.arrayContaining([
        { 'prov:entity': 'minipach:file/count/sub-01/n@GIT-n', 'prov:activity': `minipach:run/${RUN}/count/sub-01` },
        { 'prov:entity': 'minipach:file/summary/total@GIT-t', 'prov:activity': `minipach:link/${'c'.repeat(40)}/summary/.` },
      ]),
    );
    expect(rels('wasAssociatedWith')).toHaveLength(2);
  });
});
