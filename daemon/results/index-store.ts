/**
 * The result index of a dataset. Durable in git, in two places: the commit messages the committer writes on
 * the branch (core/record.ts), and the shared results refs (shared-ref.ts) fetched from remotes. A cache in the
 * state dir remembers how far history was read, so a new commit costs one `git log old..new`; Redis never
 * holds it. Failures are local bookkeeping (nothing is committed for them).
 */
import { readFile, writeFile, rename } from 'node:fs/promises';
import path from 'node:path';
import { BATCH_TITLE_PREFIX, parseRecords, RUN_TITLE_PREFIX } from '../core/record.js';
import { buildIndex, type FailureRecord, type ResultIndex, type ResultRecord } from '../core/result-index.js';
import { datumOutputs, outputDir } from '../core/identity.js';
import type { LsTreeEntry } from '../adapters/git.js';
import type { Dataset } from '../adapters/dataset.js';
import type { SnapshotReader } from '../adapters/snapshot-reader.js';
import { addSharedResults, readSharedRecords, resultRefs, RESULTS_REF, type SharedResult } from './shared-ref.js';

interface IndexCache {
  readonly version: 1;
  readonly head: string;
  readonly records: ResultRecord[];
}

interface SharedCache {
  readonly version: 1;
  /** Results ref -> the commit it was read at, and its records. */
  readonly refs: Record<string, { commit: string; records: ResultRecord[] }>;
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

  private readonly sharedCacheFile: string;

  constructor(private readonly ds: Dataset) {
    this.cacheFile = path.join(ds.stateDir, `index-${ds.branch.replace(/\//g, '_')}.json`);
    this.sharedCacheFile = path.join(ds.stateDir, 'index-shared.json');
    this.failuresFile = path.join(ds.stateDir, 'failures.json');
  }

  /**
   * The index as of `head`: every result recorded in its history, then those of the results refs (a result
   * of this branch is the link source of choice), plus local failures. Which results cannot be reused is
   * the caller's to add (see unavailableResults and withUnavailable).
   */
  async load(head: string): Promise<ResultIndex> {
    const own = await this.records(head);
    const ownKeys = new Set(own.filter((r) => r.kind === 'computed').map((r) => r.key));
    const records = [...own, ...(await this.sharedRecords()).filter((r) => !ownKeys.has(r.key))];
    return buildIndex(records, Object.values(await this.failures()));
  }

  /**
   * Rebuilds the index from git alone (the branch's history and the results refs), as after a wiped state
   * dir or Redis, and adds every computed result of the history that the local results ref lacks, so the
   * ref can be shared. Returns the index and how many results were added to the ref.
   */
  async reindex(head: string): Promise<{ index: ResultIndex; added: number }> {
    const records = await this.scan(head);
    await writeJsonAtomic(this.cacheFile, { version: 1, head, records } satisfies IndexCache);
    await writeJsonAtomic(this.sharedCacheFile, { version: 1, refs: {} } satisfies SharedCache);
    // Read once here, in full; the load below then reads only what was added.
    const inRef = new Set(((await this.sharedByRef()).get(RESULTS_REF) ?? []).map((r) => r.key));
    const missing = [...new Map(records.filter((r) => r.kind === 'computed' && !inRef.has(r.key)).map((r) => [r.key, r])).values()];
    await addSharedResults(this.ds, await this.sharedForm(missing));
    return { index: await this.load(head), added: missing.length };
  }

  /** Computed records as the results ref stores them, with their outputs read from their run commits. */
  private async sharedForm(records: readonly ResultRecord[]): Promise<SharedResult[]> {
    const outputs = await resultOutputs(this.ds, records);
    return records.map((r) => ({
      record: { version: 1, key: r.key, pipeline: r.pipeline, datum: r.datum, run_commit: r.runCommit, transform_key: r.transformKey ?? '', transform: r.transform, inputs: r.inputs ?? [], resources: r.resources },
      outputs: outputs.get(r)!.entries,
      outputDir: outputs.get(r)!.dir,
    }));
  }

  /** The records of every results ref, one result per key (results of one key are interchangeable). */
  private async sharedRecords(): Promise<ResultRecord[]> {
    const seen = new Set<string>();
    return [...(await this.sharedByRef()).values()].flat().filter((r) => !seen.has(r.key) && seen.add(r.key));
  }

  /** Results ref -> its records, read incrementally from the cache. */
  private async sharedByRef(): Promise<Map<string, ResultRecord[]>> {
    const refs = await resultRefs(this.ds);
    if (!refs.length) return new Map();
    const cache = (await readJson<SharedCache>(this.sharedCacheFile)) ?? { version: 1, refs: {} };
    const next: SharedCache = { version: 1, refs: {} };
    for (const { ref, commit } of refs) {
      const known = cache.refs?.[ref];
      let records: ResultRecord[];
      if (known?.commit === commit) records = known.records;
      else if (known && (await this.ds.repo.isAncestor(known.commit, commit))) records = [...known.records, ...(await readSharedRecords(this.ds, commit, known.commit))];
      else records = await readSharedRecords(this.ds, commit);
      next.refs[ref] = { commit, records };
    }
    if (refs.some(({ ref, commit }) => cache.refs?.[ref]?.commit !== commit) || Object.keys(cache.refs ?? {}).length !== refs.length) {
      await writeJsonAtomic(this.sharedCacheFile, next);
    }
    return new Map(Object.entries(next.refs).map(([ref, r]) => [ref, r.records]));
  }

  private async records(head: string): Promise<ResultRecord[]> {
    const cache = await readJson<IndexCache>(this.cacheFile);
    if (cache?.version === 1 && cache.head === head) return cache.records;
    let records: ResultRecord[];
    if (cache?.version === 1 && (await this.ds.repo.isAncestor(cache.head, head))) {
      records = [...cache.records, ...(await this.scan(`${cache.head}..${head}`))];
    } else records = await this.scan(head);
    await writeJsonAtomic(this.cacheFile, { version: 1, head, records } satisfies IndexCache);
    return records;
  }

  private async scan(range: string): Promise<ResultRecord[]> {
    const msgs = await this.ds.repo.commitMessages(range, [RUN_TITLE_PREFIX, BATCH_TITLE_PREFIX]);
    return msgs.flatMap((m) => parseRecords(m.commit, m.message));
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

/** The output files of results, read in one `ls-tree` per commit. */
export async function resultOutputs(ds: Dataset, records: readonly ResultRecord[]): Promise<Map<ResultRecord, { entries: LsTreeEntry[]; dir: string }>> {
  const where = (r: ResultRecord) => r.outputsAt ?? { commit: r.commit, dir: outputDir(r.pipeline, r.datum) };
  const byCommit = new Map<string, ResultRecord[]>();
  for (const r of records) byCommit.set(where(r).commit, [...(byCommit.get(where(r).commit) ?? []), r]);
  const out = new Map<ResultRecord, { entries: LsTreeEntry[]; dir: string }>();
  for (const [commit, rs] of byCommit) {
    const dirs = [...new Set(rs.map((r) => where(r).dir))];
    const entries = await ds.repo.lsTree(commit, dirs.length > 1000 ? undefined : dirs);
    for (const r of rs) out.set(r, { entries: datumOutputs(entries, r.pipeline, where(r).dir), dir: where(r).dir });
  }
  return out;
}

/**
 * Of the results a plan would link, those with annexed content that neither this clone nor any of its
 * remotes has (see reachableCopies): datum key -> why. Linking them would put keys on the branch that
 * nobody here can get, so they are computed again instead.
 */
export async function unavailableResults(ds: Dataset, sources: readonly ResultRecord[], reader: SnapshotReader): Promise<Map<string, string>> {
  const unique = [...new Map(sources.map((s) => [s.key, s])).values()];
  if (!unique.length) return new Map();
  const outputs = await resultOutputs(ds, unique);
  const keys = await reader.keysOf([...outputs.values()].flatMap((o) => o.entries));
  const annexKeys = new Map(unique.map((r) => [r, outputs.get(r)!.entries.flatMap((e) => keys.get(e)?.annexKey ?? [])]));
  const copies = await ds.annex.reachableCopies([...new Set([...annexKeys.values()].flat())]);
  const out = new Map<string, string>();
  for (const [r, rKeys] of annexKeys) {
    const lost = rKeys.filter((k) => !copies.get(k));
    if (lost.length) out.set(r.key, `its content (${lost[0]}${lost.length > 1 ? ` and ${lost.length - 1} more` : ''}) cannot be retrieved from this clone or any of its remotes`);
  }
  return out;
}
