/**
 * Prometheus metrics of the daemon (prom-client), one registry per daemon. Job counts by state are read
 * from the queue when scraped; the rest is counted as schedules end.
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { RunInfo } from '../schedule/follower.js';

export class Metrics {
  readonly registry = new Registry();
  private readonly datums = new Counter({
    name: 'minipach_datums_total',
    help: 'Datums handled by schedules, by dataset and what was done (computed, linked, removed, failed, blocked)',
    labelNames: ['dataset', 'outcome'] as const,
    registers: [this.registry],
  });
  private readonly runs = new Counter({ name: 'minipach_schedules_total', help: 'Schedules run, by dataset and result', labelNames: ['dataset', 'result'] as const, registers: [this.registry] });
  private readonly seconds = new Histogram({
    name: 'minipach_schedule_seconds',
    help: 'Wall time of a schedule, from start to settled',
    labelNames: ['dataset'] as const,
    buckets: [0.5, 1, 2, 5, 10, 30, 60, 300, 900, 3600],
    registers: [this.registry],
  });
  readonly jobs: Gauge<'state'>;

  constructor() {
    collectDefaultMetrics({ register: this.registry, prefix: 'minipach_' });
    this.jobs = new Gauge({
      name: 'minipach_jobs',
      help: 'Datum jobs on the queue, by state',
      labelNames: ['state'] as const,
      registers: [this.registry],
      collect: async () => {
        if (!this.jobCounts) return;
        for (const [state, n] of Object.entries(await this.jobCounts().catch(() => ({})))) this.jobs.set({ state }, n);
      },
    });
  }

  /** Set by the daemon once its queue exists. */
  jobCounts?: () => Promise<Record<string, number>>;

  recordRun(run: RunInfo): void {
    this.runs.inc({ dataset: run.dataset, result: run.state });
    const c = run.report?.counts;
    if (c) {
      for (const [outcome, n] of Object.entries(c)) if (outcome !== 'skipped' && n) this.datums.inc({ dataset: run.dataset, outcome }, n);
      this.seconds.observe({ dataset: run.dataset }, run.report!.seconds);
    }
  }
}
