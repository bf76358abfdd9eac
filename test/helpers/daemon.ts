/** The real daemon and real workers as child processes, as a user starts them. */
import { mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { execa, type ResultPromise } from 'execa';
import { BIN, ENV } from './dataset.js';

export interface Proc {
  readonly proc: ResultPromise;
  /** Everything it printed so far (stdout + stderr). */
  output(): string;
  /** Resolves when its output matches `re`. */
  waitFor(re: RegExp, timeoutMs?: number): Promise<RegExpMatchArray>;
  /** SIGTERM, then the exit code. */
  stop(): Promise<number | undefined>;
  kill9(): Promise<void>;
}

export function spawnMinipach(args: string[], opts: { cwd: string; env?: Record<string, string> }): Proc {
  const proc = execa('node', [BIN, ...args], { cwd: opts.cwd, env: { ...ENV, ...opts.env }, reject: false, all: true, buffer: false });
  let text = '';
  const waiters: (() => void)[] = [];
  proc.all!.on('data', (b: Buffer) => {
    text += b.toString();
    for (const w of waiters.splice(0)) w();
  });
  const exited = proc.then((r) => r.exitCode);
  return {
    proc,
    output: () => text,
    async waitFor(re, timeoutMs = 60_000) {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const m = text.match(re);
        if (m) return m;
        if (Date.now() > deadline) throw new Error(`timed out waiting for ${re} in:\n${text}`);
        await Promise.race([new Promise<void>((r) => waiters.push(r)), new Promise((r) => setTimeout(r, 200)), exited]);
        if (proc.exitCode !== null && proc.exitCode !== undefined && !text.match(re)) throw new Error(`exited (${proc.exitCode}) before ${re}:\n${text}`);
      }
    },
    async stop() {
      proc.kill('SIGTERM');
      return exited;
    },
    async kill9() {
      proc.kill('SIGKILL');
      await exited;
    },
  };
}

export interface RunningDaemon extends Proc {
  readonly url: string;
  readonly redisUrl: string;
}

export async function startDaemon(dir: string, args: string[] = [], env: Record<string, string> = {}): Promise<RunningDaemon> {
  // With --config the datasets come from the file; otherwise the daemon serves `dir`.
  const target = args.includes('--config') ? [] : [dir];
  const p = spawnMinipach(['up', ...target, '--port', '0', '--workers', '0', ...args], { cwd: dir, env });
  const m = await p.waitFor(/minipach daemon at (\S+) serving .* \(redis (\S+)\)/);
  return { ...p, url: m[1]!, redisUrl: m[2]! };
}

export async function startWorker(dir: string, redisUrl: string, args: string[] = []): Promise<Proc> {
  const state = mkdtempSync(path.join(os.tmpdir(), 'minipach-worker-'));
  const p = spawnMinipach(['worker', '--redis', redisUrl, '--state', state, '--lock-ms', '3000', ...args], { cwd: dir });
  await p.waitFor(/taking jobs/);
  return p;
}

export interface StatusJson {
  jobs: Record<string, number>;
  datasets: { name: string; state: string; last_run?: { counts: Record<string, number> }; recent_runs: { id: number; reason: string; state: string }[] }[];
}

export async function status(url: string, token?: string): Promise<StatusJson> {
  return (await (await fetch(`${url}/api/status`, { headers: token ? { authorization: `Bearer ${token}` } : {} })).json()) as StatusJson;
}

/** Waits until the daemon has nothing queued, running or waiting. */
export async function waitIdle(url: string, timeoutMs = 120_000, token?: string): Promise<StatusJson> {
  const deadline = Date.now() + timeoutMs;
  let idleSince = 0;
  for (;;) {
    const s = await status(url, token).catch(() => undefined);
    const idle = s && s.datasets.every((d) => d.state === 'idle') && !s.jobs['waiting'] && !s.jobs['active'] && !s.jobs['delayed'];
    if (idle) {
      // Idle twice in a row, half a second apart: a chained round may start right after one ends.
      if (idleSince && Date.now() - idleSince > 500) return s;
      idleSince ||= Date.now();
    } else idleSince = 0;
    if (Date.now() > deadline) throw new Error(`daemon not idle after ${timeoutMs} ms: ${JSON.stringify(s)}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

/** How many times workers started computing each datum, from their logs. */
export function tries(...workers: Proc[]): Map<string, number> {
  const counts = new Map<string, number>();
  for (const w of workers) for (const m of w.output().matchAll(/ (\S+): try \d+ \(/g)) counts.set(m[1]!, (counts.get(m[1]!) ?? 0) + 1);
  return counts;
}

/** How many times workers finished computing each datum (successful tries), from their logs. */
export function dones(...workers: Proc[]): Map<string, number> {
  const counts = new Map<string, number>();
  for (const w of workers) for (const m of w.output().matchAll(/ (\S+): done$/gm)) counts.set(m[1]!, (counts.get(m[1]!) ?? 0) + 1);
  return counts;
}

export async function runCommits(dir: string, rev = 'HEAD'): Promise<string[]> {
  const out = (await execa('git', ['log', '--format=%s', rev], { cwd: dir })).stdout;
  return out.split('\n').filter((s) => s.startsWith('[DATALAD RUNCMD] minipach '));
}

/** A plain redis-server of the test's own (REDIS_URL mode), with AOF, restartable. */
export async function startRedis(): Promise<{ url: string; stop(): Promise<void>; start(): Promise<void> }> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'minipach-redis-'));
  const port = 20000 + Math.floor(Math.random() * 20000);
  let proc: ResultPromise | undefined;
  const start = async () => {
    proc = execa('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--dir', dir, '--appendonly', 'yes', '--appendfsync', 'always', '--save', ''], { reject: false });
    for (let i = 0; i < 100; i++) {
      const r = await execa('redis-cli', ['-p', String(port), 'ping'], { reject: false });
      if (r.stdout.trim() === 'PONG') return;
      await new Promise((res) => setTimeout(res, 50));
    }
    throw new Error('redis-server did not start');
  };
  await start();
  return {
    url: `redis://127.0.0.1:${port}`,
    start,
    async stop() {
      await execa('redis-cli', ['-p', String(port), 'shutdown'], { reject: false });
      await proc;
    },
  };
}
