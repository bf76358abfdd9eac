/**
 * Gathers datums that arrive one by one (a worker's queue jobs) into batches that run together in one
 * scratch checkout, in the manner of Pachyderm's datum_set_spec: a batch starts when it is full or when its
 * first datum has waited `waitMs`, and at most `parallel` batches run at once; a closed batch that waits for
 * its turn still fills up to `size`. Datums of one group (dataset, origin, base commit) batch together.
 * Each submitter gets its own datum's outcome as soon as it ends.
 */

export interface BatcherOptions {
  /** The most datums one batch holds. */
  readonly size: number;
  /** How long the first datum of a batch waits for others, in milliseconds. */
  readonly waitMs: number;
  /** Batches running at once. */
  readonly parallel: number;
}

interface Pending<T, R> {
  readonly item: T;
  resolve(result: R): void;
  reject(error: unknown): void;
}

/** Runs a batch; calls `settle` once for each item, as it ends. */
export type BatchRunner<T, R> = (group: string, items: readonly T[], settle: (item: T, result: R) => void) => Promise<void>;

export class Batcher<T, R> {
  private readonly open = new Map<string, { pending: Pending<T, R>[]; timer?: NodeJS.Timeout }>();
  private readonly ready: { group: string; pending: Pending<T, R>[] }[] = [];
  private running = 0;

  constructor(private readonly opts: BatcherOptions, private readonly runBatch: BatchRunner<T, R>) {}

  submit(group: string, item: T): Promise<R> {
    return new Promise<R>((resolve, reject) => {
      // A batch that is closed but still waits for a free slot takes more datums of its group meanwhile:
      // otherwise a busy worker, whose jobs come one at a time as earlier ones end, would run batches of one.
      const waiting = this.ready.find((b) => b.group === group && b.pending.length < this.opts.size);
      if (waiting) {
        waiting.pending.push({ item, resolve, reject });
        return;
      }
      let batch = this.open.get(group);
      if (!batch) {
        batch = { pending: [] };
        this.open.set(group, batch);
        batch.timer = setTimeout(() => this.close(group), this.opts.waitMs);
      }
      batch.pending.push({ item, resolve, reject });
      if (batch.pending.length >= this.opts.size) this.close(group);
    });
  }

  private close(group: string): void {
    const batch = this.open.get(group);
    if (!batch) return;
    clearTimeout(batch.timer);
    this.open.delete(group);
    this.ready.push({ group, pending: batch.pending });
    this.drain();
  }

  private drain(): void {
    while (this.running < this.opts.parallel && this.ready.length) {
      const { group, pending } = this.ready.shift()!;
      this.running++;
      const byItem = new Map(pending.map((p) => [p.item, p]));
      const settled = new Set<T>();
      void this.runBatch(group, pending.map((p) => p.item), (item, result) => {
        settled.add(item);
        byItem.get(item)?.resolve(result);
      })
        .then(
          () => undefined,
          (e: unknown) => e,
        )
        .then((error) => {
          // Whatever the batch did not settle fails with its error (or for not having run).
          for (const p of pending) if (!settled.has(p.item)) p.reject(error ?? new Error('the batch ended without running this datum'));
          this.running--;
          this.drain();
        });
    }
  }
}
