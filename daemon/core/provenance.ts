/**
 * Provenance of a file as minipach explains it (results/explain.ts reads it from git), and the same graph as a
 * W3C PROV-JSON document (https://www.w3.org/submission/prov-json/), so other
 * provenance tools can read it. Files are entities (one per path and content key), each datum's run is an
 * activity that used its input files and generated its output files, and a linked datum is an activity of
 * its own that was informed by the run it reused. minipach is the software agent associated with each.
 */
import type { ResourceUsage, TransformFields } from './result-index.js';
import { datumLabel } from './datum-label.js';

export interface ExplainedFile {
  readonly path: string;
  /** Annex key, or git blob id for a file in git. */
  readonly key: string;
  /** The datum whose output it is (an id into `datums`). */
  readonly made_by?: string;
  /** For a file that is not a minipach output: the last commit that changed it (where this content came in). */
  readonly added_in?: string;
}

export interface ExplainedDatum {
  readonly id: string;
  readonly pipeline: string;
  readonly datum: string;
  readonly key: string;
  readonly kind: 'computed' | 'linked';
  readonly output_dir: string;
  /** The commit that put these outputs on the branch. */
  readonly commit: string;
  /** The run commit whose outputs these are (the same as `commit` when computed). */
  readonly run_commit: string;
  /** Replays the run on a plain clone, without minipach. */
  readonly rerun: string;
  /** For a linked result: the datum whose result was reused. */
  readonly linked_from?: { readonly pipeline: string; readonly datum: string; readonly run_commit: string };
  readonly transform?: { readonly key: string } & Partial<TransformFields>;
  /** The concrete shell command of the run record. */
  readonly command?: string;
  readonly resources?: ResourceUsage;
  readonly inputs: readonly { readonly name: string; readonly path: string; readonly files: readonly ExplainedFile[] }[];
  /** Ids of the datums whose outputs this one read. */
  readonly upstream: readonly string[];
}

export interface Explanation {
  readonly path: string;
  readonly commit: string;
  readonly file: ExplainedFile;
  /** The datum that made the file (first) and everything upstream of it, each once. */
  readonly datums: readonly ExplainedDatum[];
}


type Attrs = Record<string, unknown>;

export interface ProvDocument {
  prefix: Record<string, string>;
  entity: Record<string, Attrs>;
  activity: Record<string, Attrs>;
  agent: Record<string, Attrs>;
  used: Record<string, Attrs>;
  wasGeneratedBy: Record<string, Attrs>;
  wasAssociatedWith: Record<string, Attrs>;
  wasInformedBy: Record<string, Attrs>;
}

const AGENT = 'minipach:minipach';

/** A PROV-JSON typed literal naming a qualified name (a plain string would be read as a string). */
const qname = (q: string) => ({ $: q, type: 'prov:QUALIFIED_NAME' });

export function toProv(x: Explanation): ProvDocument {
  const doc: ProvDocument = {
    prefix: { minipach: 'https://github.com/minipach/minipach/ns#', git: 'https://git-scm.com/ns#', annex: 'https://git-annex.branchable.com/key#' },
    entity: {},
    activity: {},
    agent: { [AGENT]: { 'prov:type': qname('prov:SoftwareAgent'), 'prov:label': 'minipach' } },
    used: {},
    wasGeneratedBy: {},
    wasAssociatedWith: {},
    wasInformedBy: {},
  };
  let n = 0;
  const rel = (kind: keyof ProvDocument, attrs: Attrs) => void ((doc[kind] as Record<string, Attrs>)[`_:${kind}${++n}`] = attrs);
  const activityId = (d: ExplainedDatum) => `minipach:${d.kind === 'computed' ? 'run' : 'link'}/${d.commit}/${datumLabel(d.pipeline, d.datum)}`;
  const entity = (f: ExplainedFile) => {
    const id = `minipach:file/${f.path}@${f.key}`;
    doc.entity[id] ??= {
      'prov:label': f.path,
      'minipach:path': f.path,
      'minipach:contentKey': f.key,
      ...(f.added_in ? { 'minipach:addedInCommit': f.added_in, 'prov:type': qname('minipach:RawData') } : {}),
    };
    return id;
  };
  const byId = new Map(x.datums.map((d) => [d.id, d]));
  const generated = new Set<string>();
  const generatedBy = (file: ExplainedFile) => {
    const e = entity(file);
    const d = file.made_by ? byId.get(file.made_by) : undefined;
    if (d && !generated.has(e)) {
      generated.add(e);
      rel('wasGeneratedBy', { 'prov:entity': e, 'prov:activity': activityId(d) });
    }
  };
  for (const d of x.datums) {
    const a = activityId(d);
    doc.activity[a] = {
      'prov:label': `${datumLabel(d.pipeline, d.datum)}`,
      'prov:type': qname(d.kind === 'computed' ? 'minipach:Run' : 'minipach:Link'),
      'minipach:pipeline': d.pipeline,
      'minipach:datum': d.datum,
      'minipach:datumKey': d.key,
      'minipach:commit': d.commit,
      'minipach:runCommit': d.run_commit,
      ...(d.transform ? { 'minipach:transformKey': d.transform.key } : {}),
      ...(d.command ? { 'minipach:command': d.command } : {}),
      ...(d.resources ? { 'minipach:wallSeconds': d.resources.wall, ...(d.resources.cpu !== undefined ? { 'minipach:cpuSeconds': d.resources.cpu } : {}), ...(d.resources.maxRssKiB !== undefined ? { 'minipach:maxRssKiB': d.resources.maxRssKiB } : {}) } : {}),
      'minipach:rerun': d.rerun,
    };
    rel('wasAssociatedWith', { 'prov:activity': a, 'prov:agent': AGENT });
    if (d.linked_from) {
      const source = `minipach:run/${d.linked_from.run_commit}/${datumLabel(d.linked_from.pipeline, d.linked_from.datum)}`;
      doc.activity[source] ??= { 'prov:label': `${datumLabel(d.linked_from.pipeline, d.linked_from.datum)}`, 'prov:type': qname('minipach:Run'), 'minipach:runCommit': d.linked_from.run_commit };
      rel('wasInformedBy', { 'prov:informed': a, 'prov:informant': source });
    }
    for (const i of d.inputs) {
      for (const f of i.files) {
        rel('used', { 'prov:activity': a, 'prov:entity': entity(f), 'prov:role': `minipach:input/${i.name}` });
        generatedBy(f);
      }
    }
  }
  generatedBy(x.file);
  return doc;
}
