/**
 * Events in, schedules out. Every source ends here as "dataset D, ref R moved" (git hooks, Gitea, the
 * HTTP endpoint) or "these objects changed" (MinIO). Events are spooled before they are acknowledged
 * (spool.ts); this processor reads the spools (at start: the replay; then as files appear), asks the
 * followers for schedules, and deletes an event's file only when a schedule that started after it has
 * finished. Schedules coalesce in the followers, so a storm of events gives few plans.
 */
import { watch, type FSWatcher } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import type { Logger } from 'pino';
import { remoteLocation } from '../results/branch.js';
import type { Follower, RunInfo } from '../schedule/follower.js';
import { ingestObjects, minioClient, type MinioConnection, type PathChange } from './minio-ingest.js';
import { dropSpooled, readSpool, type GitEvent, type SpooledEvent } from './spool.js';
import { isZeroOid } from '../core/tree.js';
import type { DatumQueue, FailedTry } from '../queue/datum-queue.js';

/** An object-store event, routed and checked when it was received. */
export interface ObjectsEvent {
  readonly kind: 'objects';
  readonly dataset: string;
  readonly changes: readonly PathChange[];
}

/** `via`: the webhook that brought a git event (its runs' trigger); none: a git hook or `POST /hooks/git`. */
export type DaemonEvent = (GitEvent & { readonly dataset?: string; readonly via?: string }) | ObjectsEvent;

interface Spool {
  readonly dir: string;
  /** The followers a hook-written event in this spool is about (its repository is theirs). */
  readonly followers: readonly Follower[];
}

/** How often spools are scanned besides their watch (a missed inotify event costs at most this). */
const RESCAN_MS = 2000;

export class EventProcessor {
  private readonly spools: Spool[] = [];
  private readonly inFlight = new Set<string>();
  private readonly watchers: FSWatcher[] = [];
  private timer?: NodeJS.Timeout;
  private stopped = false;
  /** Events handled (for tests and /metrics): by source kind. */
  readonly handled = new Map<string, number>();

  constructor(
    private readonly followers: readonly Follower[],
    private readonly queue: DatumQueue,
    private readonly log: Logger,
    private readonly minio?: MinioConnection,
  ) {}

  /** The daemon's own spool (HTTP sources), then each dataset's and its local remote's (git hooks). */
  async start(daemonSpool: string): Promise<void> {
    this.spools.push({ dir: daemonSpool, followers: [] });
    const byDir = new Map<string, Follower[]>();
    for (const f of this.followers) {
      for (const gitDir of [f.ds.gitDir, (await remoteLocation(f.ds))?.localGitDir]) {
        if (!gitDir) continue;
        const dir = path.join(gitDir, 'minipach', 'spool');
        byDir.set(dir, [...(byDir.get(dir) ?? []), f]);
      }
    }
    for (const [dir, followers] of byDir) this.spools.push({ dir, followers });
    for (const s of this.spools) {
      await mkdir(s.dir, { recursive: true });
      try {
        const w = watch(s.dir, () => void this.scan(s));
        w.on('error', () => undefined);
        this.watchers.push(w);
      } catch {
        /* the rescan below still finds its files */
      }
    }
    const rescan = () => {
      for (const s of this.spools) void this.scan(s);
    };
    rescan();
    this.timer = setInterval(rescan, RESCAN_MS);
  }

  stop(): void {
    this.stopped = true;
    clearInterval(this.timer);
    for (const w of this.watchers) w.close();
  }

  private async scan(spool: Spool): Promise<void> {
    if (this.stopped) return;
    for (const ev of await readSpool(spool.dir)) {
      if (this.inFlight.has(ev.file)) continue;
      this.inFlight.add(ev.file);
      this.process(ev, spool)
        .then(() => dropSpooled(ev.file))
        .catch((e: Error) => this.log.warn({ event: ev.file, err: e.message }, 'event not processed yet; it stays spooled and is tried again'))
        // Kept in flight a little after failing, so the rescan does not retry it in a tight loop.
        .finally(() => setTimeout(() => this.inFlight.delete(ev.file), 1000));
    }
  }

  private async process(ev: SpooledEvent, spool: Spool): Promise<void> {
    const body = ev.body as DaemonEvent;
    this.handled.set(body.kind, (this.handled.get(body.kind) ?? 0) + 1);
    if (body.kind === 'objects') return this.objects(body);
    const followers = body.dataset ? this.followers.filter((f) => f.name === body.dataset) : spool.followers;
    const runs: [Follower, RunInfo][] = [];
    const annexChanged = body.annex || body.updates.some((u) => u.ref === 'refs/heads/git-annex');
    for (const f of followers) {
      const mine = body.updates.filter((u) => u.ref === f.ds.ref);
      if (mine.some((u) => isZeroOid(u.after))) {
        this.log.warn({ dataset: f.name, branch: f.ds.branch }, 'the followed branch was deleted upstream; nothing to schedule');
        continue;
      }
      if (annexChanged) await this.queue.retryFailed(f.name, { matches: lackedContent });
      if (!mine.length && !annexChanged) continue;
      const what = mine.map((u) => `${u.ref.replace('refs/heads/', '')} ${u.before?.slice(0, 8) ?? '?'}..${u.after.slice(0, 8) || 'head'}`).join(', ');
      runs.push([f, f.request(`${body.via ? `webhook ${body.via} ` : ''}push ${what || '(content)'}`)]);
    }
    if (!runs.length) this.log.info({ repo: body.repo, refs: body.updates.map((u) => u.ref) }, 'event names no followed branch; ignored');
    await Promise.all(runs.map(([f, r]) => f.whenServed(r)));
  }

  private async objects(ev: ObjectsEvent): Promise<void> {
    const followers = this.followers.filter((f) => f.name === ev.dataset);
    if (!followers.length) return;
    if (!this.minio) throw new Error('MinIO events arrived but no minio endpoint is configured (config key minio)');
    const client = minioClient(this.minio);
    // Objects land on the first followed branch; the others see them when it is merged there.
    const [first] = followers;
    const head = await ingestObjects(first!.ds, client, ev.changes);
    if (!head) return;
    const run = first!.request(`objects: ${ev.changes.map((c) => `${c.op} ${c.path}`).join(', ')}`);
    await first!.whenServed(run);
  }
}

/**
 * Whether a failed try failed because an input's content was nowhere to be got: worth another try once
 * content arrives after its refs (`post-update-annex`, or a pushed git-annex branch).
 */
function lackedContent(t: FailedTry | undefined): boolean {
  return /not available|no known copies|could not get|unable to access/i.test(`${t?.reason ?? ''}\n${t?.stderrTail ?? ''}`);
}
