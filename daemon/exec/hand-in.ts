/**
 * How a worker hands its results in: each result's run commit goes to a private ref of the origin
 * (`refs/minipach/runs/<datum key>`), and its outputs' annexed content to the origin's annex. Only then
 * does the datum count as done, so the daemon never integrates a result whose content it cannot reach.
 *
 * Results are handed in together: a hand-in starts at most every HAND_IN_EVERY_MS, and while one is on its
 * way the results finished meanwhile wait; then they go in one `git fast-import` (their run commits), one
 * `git push` (their refs) and one `git annex copy --batch-keys` (their content). A lone result goes at once;
 * a busy worker pays for a hand-in (a push costs the origin a receive-pack and its hooks) per handful of
 * datums, not per datum. With storage (a dataset whose content lives in an S3 bucket) the content goes to
 * the bucket instead, before the refs, and the worker keeps no copy. The price: a worker killed with
 * results waiting or on their way loses those too (at most half a second's worth; they run again), besides
 * the datum it was running.
 */
import { Annex } from '../adapters/annex.js';
import type { Dataset } from '../adapters/dataset.js';
import type { CommitSpec } from '../adapters/git-format.js';
import { runRef } from '../results/branch.js';
import { storageOf } from '../adapters/storage.js';

/** A computed result, ready to hand in. */
export interface ResultToHandIn {
  /** The run commit: made already (by `datalad run`), or to be written here. */
  readonly run: { readonly commit: string } | { readonly write: CommitSpec };
  /** The annex keys of its outputs, whose content goes with it. */
  readonly annexKeys: readonly string[];
}

interface Waiting {
  readonly datumKey: string;
  readonly result: ResultToHandIn;
  resolve(commit: string): void;
  reject(e: Error): void;
}

/** The least time between the starts of two hand-ins of one clone, in milliseconds. */
export const HAND_IN_EVERY_MS = 500;

/** Hands the results of one clone in to its origin, a handful at a time. */
export class HandIn {
  private waiting: Waiting[] = [];
  private busy = false;
  private lastStart = 0;
  private timer?: NodeJS.Timeout;

  constructor(
    private readonly ds: Dataset,
    private readonly remote = 'origin',
    /** Told when results wait for the storage to come back. */
    private readonly log?: (message: string) => void,
  ) {}

  /** Resolves with the run commit once it and the content are in the origin; rejects when they could not get there. */
  submit(datumKey: string, result: ResultToHandIn): Promise<string> {
    return new Promise<string>((resolve, reject) => {
      this.waiting.push({ datumKey, result, resolve, reject });
      this.next();
    });
  }

  private next(): void {
    if (this.busy || this.timer || !this.waiting.length) return;
    const wait = this.lastStart + HAND_IN_EVERY_MS - Date.now();
    if (wait > 0) {
      this.timer = setTimeout(() => {
        this.timer = undefined;
        this.next();
      }, wait);
      return;
    }
    this.busy = true;
    this.lastStart = Date.now();
    const group = this.waiting;
    this.waiting = [];
    void this.handIn(group).finally(() => {
      this.busy = false;
      this.next();
    });
  }

  private async handIn(group: readonly Waiting[]): Promise<void> {
    try {
      const toWrite = group.flatMap((w) => ('write' in w.result.run ? [w.result.run.write] : []));
      const written = await this.ds.repo.writeCommits(undefined, toWrite);
      const commits = group.map((w) => ('commit' in w.result.run ? w.result.run.commit : written.shift()!));
      const keys = [...new Set(group.flatMap((w) => w.result.annexKeys))];
      const pushRefs = () =>
        withRetries(`hand the results in to ${this.remote}`, async () => {
          const r = await this.ds.repo.push(this.remote, group.map((w, i) => `+${commits[i]}:${runRef(w.datumKey)}`));
          return { ok: r.status === 'ok', message: r.status === 'ok' ? '' : r.message };
        });
      const storage = storageOf(this.ds);
      if (storage) {
        // Content first: a run ref in the origin promises that its content is in the bucket. The copy here
        // is then of no use to anyone (a worker shares nothing), so it goes.
        const s = await storage;
        await s.patiently(() => s.put(keys), (e) => this.log?.(`${e.message}; ${group.length} result(s) wait for it`));
        await pushRefs();
        await s.dropHere(keys);
      } else {
        // Files kept in git travel with the commits; annexed ones are copied by key (the native executor
        // leaves them out of any index, so paths would not do).
        await Promise.all([pushRefs(), withRetries(`copy the outputs' content to ${this.remote}`, () => new Annex(this.ds.dir).copyKeysTo(this.remote, keys))]);
      }
      group.forEach((w, i) => w.resolve(commits[i]!));
    } catch (e) {
      for (const w of group) w.reject(e as Error);
    }
  }
}

/**
 * Pushes of several workers (and people) into one repository can collide on its ref locks, and a collision
 * is no reason to compute a datum again: a few tries, a little apart.
 */
async function withRetries(what: string, attempt: () => Promise<{ ok: boolean; message: string }>): Promise<void> {
  for (let i = 1; ; i++) {
    const r = await attempt();
    if (r.ok) return;
    if (i === 4) throw new Error(`could not ${what}: ${r.message}`);
    await new Promise((res) => setTimeout(res, 200 * i));
  }
}
