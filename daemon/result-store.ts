/**
 * The result index of a dataset. Durable in git: rebuilt from the commit messages the committer writes
 * (record.ts). A cache in the state dir remembers how far history was read, so a new commit costs one
 * `git log old..new`. Failures are local bookkeeping (nothing is committed for them).
 */
import { readFile, writeFile, rename } from 'node:fs/promises';
import path from 'node:path';
import { runUnchecked } from './adapters/process.js';
import { BATCH_TITLE_PREFIX, parseRecords, RUN_TITLE_PREFIX } from './core/record.js';
import { buildIndex, type FailureRecord, type ResultIndex, type ResultRecord } from './core/results.js';
import type { Dataset } from './dataset.js';

interface IndexCache {
  readonly version: 1;
  readonly head: string;
  readonly records: ResultRecord[];
}

async function readJson<T>(file: string): Promise<T | undefined> {
  try {
    return JSON.parse(await readFile(file, 'utf8')) as T;
  } catch {
    return undefined;
  }
}

async function writeJsonAtomic(file: string, value: unknown): Promise<void> {
  const tmp = `${file}.${process.pid}.tmp`;
  await writeFile(tmp, JSON.stringify(value));
  await rename(tmp, file);
}

export class ResultStore {
  private readonly cacheFile: string;
  private readonly failuresFile: string;
  /** Failure updates are read-modify-write of one file: concurrent jobs must not interleave them. */
  private failureWrites: Promise<unknown> = Promise.resolve();

  constructor(private readonly ds: Dataset) {
    this.cacheFile = path.join(ds.stateDir, `index-${ds.branch.replace(/\//g, '_')}.json`);
    this.failuresFile = path.join(ds.stateDir, 'failures.json');
  }

  /** The index as of `head`: every result recorded in its history, plus local failures. */
  async load(head: string): Promise<ResultIndex> {
    const records = await this.records(head);
    return buildIndex(records, Object.values(await this.failures()));
  }

  /** Rebuilds the cache from history alone. */
  async reindex(head: string): Promise<ResultIndex> {
    const records = await this.scan(head);
    await writeJsonAtomic(this.cacheFile, { version: 1, head, records } satisfies IndexCache);
    return buildIndex(records, Object.values(await this.failures()));
  }

  private async records(head: string): Promise<ResultRecord[]> {
    const cache = await readJson<IndexCache>(this.cacheFile);
    if (cache?.version === 1 && cache.head === head) return cache.records;
    let records: ResultRecord[];
    if (cache?.version === 1 && (await this.isAncestor(cache.head, head))) {
      records = [...cache.records, ...(await this.scan(`${cache.head}..${head}`))];
    } else records = await this.scan(head);
    await writeJsonAtomic(this.cacheFile, { version: 1, head, records } satisfies IndexCache);
    return records;
  }

  private async scan(range: string): Promise<ResultRecord[]> {
    const msgs = await this.ds.repo.commitMessages(range, [RUN_TITLE_PREFIX, BATCH_TITLE_PREFIX]);
    return msgs.flatMap((m) => parseRecords(m.commit, m.message));
  }

  private async isAncestor(a: string, b: string): Promise<boolean> {
    const r = await runUnchecked(['git', 'merge-base', '--is-ancestor', a, b], { cwd: this.ds.dir });
    return r.exitCode === 0;
  }

  async failures(): Promise<Record<string, FailureRecord>> {
    return (await readJson<Record<string, FailureRecord>>(this.failuresFile)) ?? {};
  }

  recordFailure(f: Omit<FailureRecord, 'tries' | 'at'>): Promise<FailureRecord> {
    return this.updateFailures((all) => {
      const rec: FailureRecord = { ...f, tries: (all[f.key]?.tries ?? 0) + 1, at: new Date().toISOString() };
      all[f.key] = rec;
      return rec;
    });
  }

  clearFailures(keys: readonly string[]): Promise<void> {
    return this.updateFailures((all) => {
      for (const k of keys) delete all[k];
    });
  }

  private updateFailures<T>(change: (all: Record<string, FailureRecord>) => T): Promise<T> {
    const next = this.failureWrites.then(async () => {
      const all = await this.failures();
      const result = change(all);
      await writeJsonAtomic(this.failuresFile, all);
      return result;
    });
    this.failureWrites = next.catch(() => undefined);
    return next;
  }
}
