/**
 * The CLI's side of the daemon's JSON API (server/http.ts). Errors come back as MinipachError with the
 * daemon's own message.
 */
import { MinipachError } from '../core/errors.js';
import type { RunInfo } from '../schedule/follower.js';

export class DaemonClient {
  constructor(readonly url: string, private readonly token?: string) {}

  private async call<T>(method: 'GET' | 'POST', route: string, body?: unknown): Promise<T> {
    let res: Response;
    try {
      res = await fetch(`${this.url}${route}`, {
        method,
        headers: { ...(body === undefined ? {} : { 'content-type': 'application/json' }), ...(this.token ? { authorization: `Bearer ${this.token}` } : {}) },
        body: body === undefined ? undefined : JSON.stringify(body),
      });
    } catch (e) {
      throw new MinipachError(`the daemon at ${this.url} does not answer (${(e as Error).message}); is "minipach up" running?`);
    }
    const json = (await res.json().catch(() => ({}))) as T & { error?: string };
    if (!res.ok) throw new MinipachError(`daemon: ${json.error ?? `HTTP ${res.status}`}`);
    return json;
  }

  schedule(target: DatasetSelector, reason?: string): Promise<RunInfo> {
    return this.call('POST', '/api/schedule', { ...target, reason });
  }

  run(id: number): Promise<RunInfo> {
    return this.call('GET', `/api/runs/${id}`);
  }

  status(): Promise<Record<string, unknown>> {
    return this.call('GET', '/api/status');
  }

  jobs(state?: string): Promise<Record<string, unknown>[]> {
    return this.call('GET', `/api/jobs${state ? `?state=${encodeURIComponent(state)}` : ''}`);
  }

  logs(target: DatasetSelector, datum: string): Promise<{ datum: string; source: string; log: string }> {
    const q = new URLSearchParams({ ...(target as Record<string, string>), datum });
    return this.call('GET', `/api/logs?${q}`);
  }

  retry(target: DatasetSelector, what: { datum?: string; failed?: boolean }): Promise<{ retried: string[]; run: RunInfo }> {
    return this.call('POST', '/api/retry', { ...target, ...what });
  }

  /**
   * Polls a run until it is done, or with `untilEnqueued` until its jobs are on the queue (or it waits
   * behind a running schedule of the same branch, which has queued the jobs of the branch as it was).
   */
  async waitFor(id: number, opts: { untilEnqueued?: boolean; onProgress?: (run: RunInfo) => void } = {}): Promise<RunInfo> {
    for (;;) {
      const run = await this.run(id);
      opts.onProgress?.(run);
      if (run.state === 'done' || run.state === 'failed' || (opts.untilEnqueued && (run.enqueued || run.state === 'queued'))) return run;
      await new Promise((r) => setTimeout(r, 300));
    }
  }
}

export interface DatasetSelector {
  readonly dir?: string;
  readonly branch?: string;
  readonly dataset?: string;
}
