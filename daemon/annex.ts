/**
 * git-annex access beyond what the tree says: where content is. Keys are asked in one batch process.
 */
import { runUnchecked } from './adapters/process.js';
import type { Dataset } from './dataset.js';

/**
 * Annex key -> how many repositories hold its content (this one included, dead ones not), by git-annex's
 * location log. A key no repository has maps to 0.
 */
export async function whereis(ds: Dataset, keys: readonly string[]): Promise<Map<string, number>> {
  const out = new Map<string, number>();
  if (!keys.length) return out;
  const r = await runUnchecked(['git', 'annex', 'whereis', '--json', '--batch-keys'], { cwd: ds.dir, input: keys.join('\n') + '\n' });
  for (const line of r.stdout.split('\n')) {
    if (!line.startsWith('{')) continue;
    const j = JSON.parse(line) as { key?: string; whereis?: unknown[]; untrusted?: unknown[] };
    if (j.key) out.set(j.key, (j.whereis?.length ?? 0) + (j.untrusted?.length ?? 0));
  }
  return out;
}
