/** Real DataLad datasets in temporary directories, and the real CLI run against them. */
import { mkdtempSync, mkdirSync, rmSync, writeFileSync, unlinkSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { execa } from 'execa';

const BIN = new URL('../../bin/minipach.js', import.meta.url).pathname;
const ENV = {
  GIT_AUTHOR_NAME: 'minipach test',
  GIT_AUTHOR_EMAIL: 'test@minipach.invalid',
  GIT_COMMITTER_NAME: 'minipach test',
  GIT_COMMITTER_EMAIL: 'test@minipach.invalid',
  DATALAD_LOG_LEVEL: 'warning',
};

export class TestDataset {
  constructor(readonly dir: string) {}

  static async create(opts: { text2git?: boolean } = {}): Promise<TestDataset> {
    const root = mkdtempSync(path.join(os.tmpdir(), 'minipach-test-'));
    const dir = path.join(root, 'ds');
    await execa('datalad', ['create', ...(opts.text2git ? ['-c', 'text2git'] : []), dir], { env: ENV });
    return new TestDataset(dir);
  }

  write(files: Record<string, string>): this {
    for (const [p, content] of Object.entries(files)) {
      const full = path.join(this.dir, p);
      mkdirSync(path.dirname(full), { recursive: true });
      rmSync(full, { force: true });
      writeFileSync(full, content);
    }
    return this;
  }

  remove(...paths: string[]): this {
    for (const p of paths) rmSync(path.join(this.dir, p), { recursive: true, force: true });
    return this;
  }

  async save(message = 'update'): Promise<string> {
    await execa('datalad', ['save', '-m', message], { cwd: this.dir, env: ENV });
    return this.head();
  }

  async git(...args: string[]): Promise<string> {
    return (await execa('git', args, { cwd: this.dir, env: ENV })).stdout;
  }

  async head(): Promise<string> {
    return (await this.git('rev-parse', 'HEAD')).trim();
  }

  /** `path -> annex key or blob id` of the files under `dir` at HEAD. */
  async keysUnder(dir: string, rev = 'HEAD'): Promise<Record<string, string>> {
    return treeKeys(this.dir, rev, dir);
  }

  async minipach(...args: string[]): Promise<{ exitCode: number; stdout: string; stderr: string }> {
    return this.minipachWith({}, ...args);
  }

  /** The CLI with extra environment variables. */
  async minipachWith(env: Record<string, string>, ...args: string[]): Promise<{ exitCode: number; stdout: string; stderr: string }> {
    const r = await execa('node', [BIN, ...args], { cwd: this.dir, env: { ...ENV, ...env }, reject: false });
    return { exitCode: r.exitCode ?? -1, stdout: r.stdout, stderr: r.stderr };
  }

  /** `plan --json`, without what it says about how it planned (cache hits differ between equal plans). */
  async planJson(...args: string[]): Promise<Record<string, unknown>> {
    const r = await this.minipach('plan', '--json', ...args);
    const { planning: _how, ...plan } = JSON.parse(r.stdout) as Record<string, unknown>;
    return plan;
  }

  async scheduleJson(...args: string[]): Promise<{ exitCode: number; report: ScheduleJson; stderr: string }> {
    const r = await this.minipach('schedule', '--json', ...args);
    let report: ScheduleJson;
    try {
      report = JSON.parse(r.stdout) as ScheduleJson;
    } catch {
      throw new Error(`schedule printed no JSON (exit ${r.exitCode}):\n${r.stdout}\n${r.stderr}`);
    }
    return { exitCode: r.exitCode, report, stderr: r.stderr };
  }

  /** `git fsck` and `git annex fsck` must both be clean. */
  async fsck(): Promise<void> {
    await execa('git', ['fsck', '--no-progress', '--strict'], { cwd: this.dir, env: ENV });
    const annex = await execa('git', ['annex', 'fsck', '--fast', '--quiet'], { cwd: this.dir, env: ENV, reject: false, all: true });
    if (annex.exitCode !== 0) throw new Error(`git annex fsck failed in ${this.dir}:\n${annex.all}`);
  }

  cleanup(): void {
    rmSync(path.dirname(this.dir), { recursive: true, force: true });
  }
}

export async function treeKeys(repoDir: string, rev: string, dir: string): Promise<Record<string, string>> {
  const out = (await execa('git', ['ls-tree', '-r', rev, '--', dir], { cwd: repoDir })).stdout;
  const res: Record<string, string> = {};
  for (const line of out.split('\n').filter(Boolean)) {
    const [meta, p] = line.split('\t');
    const [mode, , oid] = meta!.split(' ');
    if (mode === '120000') {
      const target = (await execa('git', ['cat-file', 'blob', oid!], { cwd: repoDir })).stdout;
      res[p!] = target.slice(target.lastIndexOf('/') + 1);
    } else res[p!] = oid!;
  }
  return res;
}

export interface DatumJson {
  pipeline: string;
  name: string;
  key: string;
  action: string;
  status: string;
  reason: string;
  commit?: string;
  exit?: number;
  stderrTail?: string;
}

export interface ScheduleJson {
  head: string;
  seconds: number;
  counts: { computed: number; linked: number; skipped: number; removed: number; failed: number; blocked: number };
  pipelines: { name: string; status: string; error?: string; datums: DatumJson[] }[];
  errors: string[];
  warnings: string[];
}

/** The failed datums of a report with their reasons, for assertion messages. */
export function failures(r: ScheduleJson): string {
  return JSON.stringify(r.pipelines.flatMap((p) => p.datums.filter((d) => d.status === 'failed').map((d) => `${p.name}/${d.name}: ${d.reason} ${d.stderrTail ?? ''}`)));
}

export function datum(r: ScheduleJson, pipeline: string, name: string): DatumJson {
  const d = r.pipelines.find((p) => p.name === pipeline)?.datums.find((x) => x.name === name);
  if (!d) throw new Error(`no datum ${pipeline}/${name} in ${JSON.stringify(r.pipelines.map((p) => [p.name, p.datums.map((x) => x.name)]))}`);
  return d;
}

export { ENV, BIN, unlinkSync };
