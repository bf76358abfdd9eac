import { gitBlobOid } from '../../daemon/core/hash.js';
import { markerContent, markerPath } from '../../daemon/core/identity.js';
import { loadSpec, type PipelineSpec } from '../../daemon/core/spec.js';
import { makeSnapshot, type TreeEntry, type TreeSnapshot } from '../../daemon/core/tree.js';
import { SpecError } from '../../daemon/core/errors.js';

/**
 * A snapshot from `path -> content key`; markers are given as `[pipeline, datum, key]`, written where
 * minipach writes them, or with a fourth element 'legacy' where it wrote them before the marker shards.
 */
export function fakeSnapshot(files: Record<string, string>, markers: [string, string, string, 'legacy'?][] = [], commit = 'c'.repeat(40)): TreeSnapshot {
  const entries: TreeEntry[] = Object.entries(files).map(([path, key]) => ({ path, mode: '120000', oid: gitBlobOid(path + key), contentKey: key, annexKey: key }));
  for (const [p, d, k, legacy] of markers) {
    const path = legacy && d !== '' ? `${p}/.minipach/datums/${d}.datum` : markerPath(p, d);
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
