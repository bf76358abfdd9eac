import { gitBlobOid } from '../../daemon/core/hash.js';
import { markerContent } from '../../daemon/core/identity.js';
import { loadSpec, type PipelineSpec } from '../../daemon/core/spec.js';
import { makeSnapshot, type TreeEntry, type TreeSnapshot } from '../../daemon/core/tree.js';
import { SpecError } from '../../daemon/core/errors.js';

/** A snapshot from `path -> content key`; markers are given as `{ marker: [pipeline, datum, key] }`. */
export function fakeSnapshot(files: Record<string, string>, markers: [string, string, string][] = [], commit = 'c'.repeat(40)): TreeSnapshot {
  const entries: TreeEntry[] = Object.entries(files).map(([path, key]) => ({ path, mode: '120000', oid: gitBlobOid(path + key), contentKey: key, annexKey: key }));
  for (const [p, d, k] of markers) {
    const path = d === '' ? `${p}/.minipach/root.datum` : `${p}/.minipach/datums/${d}.datum`;
    entries.push({ path, mode: '100644', oid: gitBlobOid(markerContent(p, d, k)), contentKey: 'GIT-x' });
  }
  return makeSnapshot(commit, entries);
}

export function specOf(name: string, yaml: string): PipelineSpec {
  const s = loadSpec(`${name}/spec.yml`, yaml);
  if (s instanceof SpecError) throw s;
  return s;
}

export function specs(map: Record<string, string>): Map<string, PipelineSpec | SpecError> {
  return new Map(Object.entries(map).map(([n, y]) => [n, loadSpec(`${n}/spec.yml`, y)]));
}
