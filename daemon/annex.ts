/**
 * git-annex access beyond what the tree says: where content is, and whether this clone can get it. Keys
 * are asked in one batch process.
 */
import { runUnchecked } from './adapters/process.js';
import type { Dataset } from './dataset.js';

/** git-annex's uuid for content on the web (URLs recorded with addurl / registerurl). */
const WEB_UUID = '00000000-0000-0000-0000-000000000001';

/** The annex uuids of this clone's remotes (git remotes and enabled special remotes). */
async function remoteUuids(ds: Dataset): Promise<Set<string>> {
  const out = (await runUnchecked(['git', 'config', '--get-regexp', '^remote\\..*\\.annex-uuid$'], { cwd: ds.dir })).stdout;
  return new Set(out.split('\n').filter(Boolean).map((l) => l.split(' ')[1]!));
}

/**
 * Annex key -> how many places this clone can get its content from: itself, its remotes, the web.
 * By git-annex's location log (dead repositories excluded). A copy in a repository that is not one of this
 * clone's remotes (a colleague's laptop) does not count: `datalad get` could not reach it.
 */
export async function reachableCopies(ds: Dataset, keys: readonly string[]): Promise<Map<string, number>> {
  const out = new Map<string, number>();
  if (!keys.length) return out;
  const remotes = await remoteUuids(ds);
  const r = await runUnchecked(['git', 'annex', 'whereis', '--json', '--batch-keys'], { cwd: ds.dir, input: keys.join('\n') + '\n' });
  for (const line of r.stdout.split('\n')) {
    if (!line.startsWith('{')) continue;
    type Copy = { uuid: string; here: boolean; urls?: string[] };
    const j = JSON.parse(line) as { key?: string; whereis?: Copy[]; untrusted?: Copy[] };
    const copies = [...(j.whereis ?? []), ...(j.untrusted ?? [])].filter((c) => c.here || remotes.has(c.uuid) || (c.uuid === WEB_UUID && c.urls?.length));
    if (j.key) out.set(j.key, copies.length);
  }
  return out;
}
