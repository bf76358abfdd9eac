/**
 * The one place that starts processes. Commands are data (argv built by pure functions elsewhere); this
 * module runs them and turns failures into ProcessError.
 */
import { execFileSync, spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { mkdtemp, open, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { shellQuote } from '../core/command.js';
import { ProcessError } from '../core/errors.js';

export interface RunOptions {
  readonly cwd?: string;
  readonly env?: Readonly<Record<string, string | undefined>>;
  readonly input?: string | Buffer;
  /** Kill the process (group, when `detached`) after this many milliseconds. */
  readonly timeoutMs?: number;
  /** Start in its own process group, so a timeout kills the whole tree. */
  readonly detached?: boolean;
  /** Called with the child's pid once it has started. */
  readonly onSpawn?: (pid: number) => void;
  /** Work of the caller's to do while the command runs, once it has started (runBuffer without a timeout). */
  readonly whileRunning?: () => void;
}

export interface RunResult<T> {
  readonly stdout: T;
  readonly stderr: string;
  readonly exitCode: number | undefined;
  readonly timedOut: boolean;
}

/** Fallback identity so commits work on machines where git has no user configured. */
const IDENTITY_ENV: Record<string, string> = {
  GIT_AUTHOR_NAME: process.env['GIT_AUTHOR_NAME'] ?? 'minipach',
  GIT_AUTHOR_EMAIL: process.env['GIT_AUTHOR_EMAIL'] ?? 'minipach@localhost',
  GIT_COMMITTER_NAME: process.env['GIT_COMMITTER_NAME'] ?? 'minipach',
  GIT_COMMITTER_EMAIL: process.env['GIT_COMMITTER_EMAIL'] ?? 'minipach@localhost',
};
let identityEnv: Record<string, string> | undefined;

/** execa, loaded when the first process starts (its hundred modules cost every command's start-up 30 ms). */
let loadedExeca: typeof import('execa').execa | undefined;
const execa = async () => (loadedExeca ??= (await import('execa')).execa);

/** git commands that never commit, so never need an identity to fall back on (asking whether one is configured is a process). */
const GIT_READS = new Set(['rev-parse', 'ls-tree', 'cat-file', 'for-each-ref', 'log', 'diff-tree', 'symbolic-ref', 'merge-base', 'show', 'config', 'ls-files', 'show-ref']);

/** The identity fallback `argv` needs: none for git's reads (`git [--opt...] <read> ...`). */
function identityFor(argv: readonly string[]): Promise<Record<string, string>> | Record<string, string> {
  if (argv[0] === 'git' && GIT_READS.has(argv.slice(1).find((a) => !a.startsWith('-')) ?? '')) return {};
  return defaultEnv();
}

async function defaultEnv(): Promise<Record<string, string>> {
  if (!identityEnv) {
    const r = await collect(['git', 'config', '--get', 'user.email'], {}, 'utf8');
    identityEnv = r.exitCode === 0 && String(r.stdout).trim() ? {} : IDENTITY_ENV;
  }
  return identityEnv;
}

/**
 * A short command without a timeout, a process group or a pid to report (git's queries, mostly): started with
 * node's spawn, its output collected. execa stays for the commands that need its care (jobs: timeouts,
 * process groups); loading it costs 90 ms here, which a `plan` or `status` would otherwise pay for nothing.
 */
function collect(argv: readonly string[], opts: RunOptions, encoding: 'utf8' | 'buffer'): Promise<{ stdout: string | Buffer; stderr: string; exitCode: number | undefined }> {
  const [file, ...args] = argv;
  return new Promise((resolve, reject) => {
    const child = spawn(file!, args, { cwd: opts.cwd, env: { ...process.env, ...opts.env }, stdio: ['pipe', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on('data', (b: Buffer) => out.push(b));
    child.stderr.on('data', (b: Buffer) => err.push(b));
    // A command that exits without reading its input closes the pipe under us: not an error of ours.
    child.stdin.on('error', () => undefined);
    child.stdin.end(opts.input ?? '');
    child.on('error', (e) => reject(new ProcessError(argv, undefined, e.message)));
    child.on('close', (code) => {
      const bytes = Buffer.concat(out);
      resolve({ stdout: encoding === 'utf8' ? bytes.toString('utf8') : bytes, stderr: Buffer.concat(err).toString('utf8'), exitCode: code ?? undefined });
    });
  });
}

async function exec(argv: readonly string[], opts: RunOptions, encoding: 'utf8' | 'buffer') {
  const [file, ...args] = argv;
  const env = { ...(await defaultEnv()), ...opts.env };
  const child = (await execa())(file!, args, {
    cwd: opts.cwd,
    env,
    input: opts.input,
    reject: false,
    encoding,
    stripFinalNewline: false,
    maxBuffer: 1024 * 1024 * 1024,
    detached: opts.detached,
    // With `detached`, kill the whole process group on timeout (a negative pid), not just the leader.
    ...(opts.timeoutMs && !opts.detached ? { timeout: opts.timeoutMs } : {}),
  });
  if (child.pid && opts.onSpawn) opts.onSpawn(child.pid);
  let timedOut = false;
  let timer: NodeJS.Timeout | undefined;
  if (opts.timeoutMs && opts.detached) {
    timer = setTimeout(() => {
      timedOut = true;
      try {
        if (child.pid) process.kill(-child.pid, 'SIGKILL');
      } catch {
        /* already gone */
      }
    }, opts.timeoutMs);
  }
  const r = await child;
  if (timer) clearTimeout(timer);
  if (r.failed && r.exitCode === undefined && !r.signal && !timedOut && !r.timedOut) {
    throw new ProcessError(argv, undefined, `${r.shortMessage}`);
  }
  return { r, timedOut: timedOut || Boolean(r.timedOut) };
}

/** Whether a process with this pid exists (signal 0 checks without sending anything). */
export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** Runs a command; throws ProcessError on a non-zero exit. */
export async function run(argv: readonly string[], opts: RunOptions = {}): Promise<string> {
  const res = await runUnchecked(argv, opts);
  if (res.exitCode !== 0) throw new ProcessError(argv, res.exitCode, res.stderr);
  return res.stdout;
}

/** Runs a command and returns its result whatever the exit code. */
export async function runUnchecked(argv: readonly string[], opts: RunOptions = {}): Promise<RunResult<string>> {
  if (!opts.timeoutMs && !opts.detached && !opts.onSpawn) {
    const r = await collect(argv, { ...opts, env: { ...(await identityFor(argv)), ...opts.env } }, 'utf8');
    return { stdout: String(r.stdout), stderr: r.stderr, exitCode: r.exitCode, timedOut: false };
  }
  const { r, timedOut } = await exec(argv, opts, 'utf8');
  return { stdout: String(r.stdout), stderr: String(r.stderr), exitCode: r.exitCode, timedOut };
}

/**
 * Runs a command whose output is binary; throws ProcessError on a non-zero exit. Without a timeout or a
 * process group to watch, its input and output go through temporary files rather than pipes: git's bulk
 * reads (ls-tree, cat-file of 10^5 blobs, tens of megabytes) take half the time that way on these machines.
 */
export async function runBuffer(argv: readonly string[], opts: RunOptions = {}): Promise<Buffer> {
  if (!opts.timeoutMs && !opts.detached && !opts.onSpawn) return throughFiles(argv, { ...(await identityFor(argv)), ...opts.env }, opts);
  const { r } = await exec(argv, opts, 'buffer');
  if (r.exitCode !== 0) throw new ProcessError(argv, r.exitCode, Buffer.from(r.stderr as unknown as Uint8Array).toString());
  return Buffer.from(r.stdout as unknown as Uint8Array);
}

async function throughFiles(argv: readonly string[], env: Readonly<Record<string, string | undefined>>, opts: RunOptions): Promise<Buffer> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'minipach-io-'));
  try {
    const input = path.join(dir, 'in');
    const output = path.join(dir, 'out');
    await writeFile(input, opts.input ?? '');
    const fin = await open(input, 'r');
    const fout = await open(output, 'w');
    const { code, stderr } = await new Promise<{ code: number | null; stderr: string }>((resolve, reject) => {
      const child = spawn(argv[0]!, argv.slice(1), { cwd: opts.cwd, env: { ...process.env, ...env }, stdio: [fin.fd, fout.fd, 'pipe'] });
      const err: Buffer[] = [];
      child.stderr!.on('data', (b: Buffer) => err.push(b));
      child.on('error', (e) => reject(new ProcessError(argv, undefined, e.message)));
      child.on('close', (c) => resolve({ code: c, stderr: Buffer.concat(err).toString() }));
      opts.whileRunning?.();
    }).finally(async () => {
      await fin.close();
      await fout.close();
    });
    if (code !== 0) throw new ProcessError(argv, code ?? undefined, stderr);
    return await readFile(output);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** A kernel setting (`sysctl -n NAME`), or undefined when it cannot be read. */
export async function sysctl(name: string): Promise<string | undefined> {
  const r = await runUnchecked(['sysctl', '-n', name]).catch(() => undefined);
  return r?.exitCode === 0 ? r.stdout.trim() || undefined : undefined;
}

/** A system configuration value (`getconf NAME`), read once at start-up; `fallback` when it cannot be. */
export function getconf(name: string, fallback: number): number {
  try {
    return Number(execFileSync('getconf', [name], { encoding: 'utf8' }).trim()) || fallback;
  } catch {
    return fallback;
  }
}

/** The exit code of the read-only wrappers when they could not protect a path (never the command's own). */
export const READ_ONLY_SETUP_FAILED = 97;

/**
 * The shell that makes paths read-only inside a private mount namespace, then runs the real command. The
 * paths come one per line in the file named by its first argument.
 */
const READ_ONLY_SCRIPT = `list=$1; shift; while IFS= read -r p; do mount --bind -o ro -- "$p" "$p" || { echo "minipach: cannot make $p read-only" >&2; exit ${READ_ONLY_SETUP_FAILED}; }; done < "$list"; exec "$@"`;

let mountSandbox: Promise<boolean> | undefined;

/**
 * Whether this process may make paths read-only in a private mount namespace (root, or CAP_SYS_ADMIN).
 * `MINIPACH_READ_ONLY_INPUTS=off` says no (to test the fallback, or where mounts are unwelcome).
 */
export function canMountReadOnly(): Promise<boolean> {
  if (process.env['MINIPACH_READ_ONLY_INPUTS'] === 'off') return Promise.resolve(false);
  mountSandbox ??= runUnchecked(['unshare', '--mount', '--propagation', 'private', '--', 'mount', '--bind', '-o', 'ro', '/', '/'])
    .then((r) => r.exitCode === 0)
    .catch(() => false);
  return mountSandbox;
}

/**
 * `argv`, run in a private mount namespace in which the paths listed in `listFile` (one per line) are
 * read-only bind mounts: a write to them fails with EROFS, even as root. Nothing changes outside.
 */
export function readOnlyArgv(argv: readonly string[], listFile: string): string[] {
  return ['unshare', '--mount', '--propagation', 'private', '--', 'sh', '-c', READ_ONLY_SCRIPT, 'minipach-read-only', listFile, ...argv];
}

/** A long-running process asked one line at a time, answering one line each, in order (git's and git-annex's `--batch`). */
export interface LineProcess {
  /** Sends a line and resolves with the answer's line. */
  ask(line: string): Promise<string>;
  /** Closes its input and waits for it to end; rejects with its stderr when it failed. */
  close(): Promise<void>;
}

export function startLineProcess(argv: readonly string[], opts: { cwd: string }): LineProcess {
  const [file, ...args] = argv;
  const child = spawn(file!, args, { cwd: opts.cwd, stdio: ['pipe', 'pipe', 'pipe'] });
  const waiting: { resolve: (l: string) => void; reject: (e: Error) => void }[] = [];
  let buffered = '';
  let stderr = '';
  let failure: Error | undefined;
  const fail = (e: Error) => {
    failure ??= e;
    for (const w of waiting.splice(0)) w.reject(failure);
  };
  child.stdout.setEncoding('utf8');
  child.stdout.on('data', (chunk: string) => {
    buffered += chunk;
    for (let nl = buffered.indexOf('\n'); nl >= 0; nl = buffered.indexOf('\n')) {
      const line = buffered.slice(0, nl);
      buffered = buffered.slice(nl + 1);
      waiting.shift()?.resolve(line);
    }
  });
  child.stderr.setEncoding('utf8');
  child.stderr.on('data', (chunk: string) => void (stderr = (stderr + chunk).slice(-8192)));
  child.on('error', (e) => fail(new ProcessError(argv, undefined, e.message)));
  const exited = new Promise<number | null>((res) => child.on('close', (code) => res(code)));
  void exited.then((code) => fail(new ProcessError(argv, code ?? undefined, stderr || 'ended before answering')));
  return {
    ask(line) {
      if (failure) return Promise.reject(failure);
      return new Promise((resolve, reject) => {
        waiting.push({ resolve, reject });
        child.stdin.write(line + '\n');
      });
    },
    async close() {
      child.stdin.end();
      const code = await exited;
      if (code !== 0) throw new ProcessError(argv, code ?? undefined, stderr);
    },
  };
}

/** A private mount namespace, held open by a small process, in which commands run with some paths read-only. */
export interface MountSandbox {
  /** The argv that runs a shell script inside the namespace, from `cwd`: one shell, no exec in between. */
  wrapScript(script: string, cwd: string): string[];
  close(): void;
}

/**
 * Starts a namespace in which `readOnly` paths (directories or files) are read-only, for a whole batch: one
 * namespace and its mounts, then one `nsenter` per command. The holder ends with this process (it checks,
 * every second, that we are alive).
 */
export async function startMountSandbox(readOnly: readonly string[]): Promise<MountSandbox> {
  const script = [
    'owner=$1; shift',
    `for p in "$@"; do mount --bind -- "$p" "$p" && mount -o remount,bind,ro -- "$p" || exit ${READ_ONLY_SETUP_FAILED}; done`,
    'echo ready',
    'while kill -0 "$owner" 2>/dev/null; do sleep 1; done',
  ].join('\n');
  const child = spawn('unshare', ['--mount', '--propagation', 'private', '--', 'sh', '-c', script, 'minipach-sandbox', String(process.pid), ...readOnly], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (b: Buffer) => void (stderr += b.toString()));
  await new Promise<void>((resolve, reject) => {
    child.stdout.on('data', (b: Buffer) => b.toString().includes('ready') && resolve());
    child.on('error', reject);
    child.on('exit', (code) => reject(new ProcessError(['unshare', '--mount'], code ?? undefined, stderr || 'the sandbox ended before it was ready')));
  });
  const pid = child.pid!;
  return {
    // Entering the namespace puts us at its root; `cd` then resolves the directory through its mounts
    // (nsenter's --wd would keep a directory of the old namespace, whose mounts are writable).
    wrapScript: (script, cwd) => ['nsenter', `--mount=/proc/${pid}/ns/mnt`, '--', '/bin/sh', '-c', `cd -- ${shellQuote(cwd)} || exit ${READ_ONLY_SETUP_FAILED}\n${script}`],
    close: () => void child.kill('SIGKILL'),
  };
}

let orphanWatch: { file: string; groups: Set<number> } | undefined;

/**
 * A watchdog for the detached process groups of this process's commands: should this process die (a worker
 * or CLI killed with -9, which cannot clean up), every group listed is killed within about half a second.
 * One tiny shell for the whole process, reading the list from a file. Returns a function that takes the
 * group off the list.
 */
export function watchGroup(group: number): () => void {
  if (!orphanWatch) {
    const file = path.join(os.tmpdir(), `minipach-groups-${process.pid}`);
    writeFileSync(file, '');
    const script = `while kill -0 ${process.pid} 2>/dev/null; do sleep 0.5; done; for g in $(cat '${file}'); do kill -KILL -$g 2>/dev/null; done; rm -f '${file}'`;
    const child = spawn('sh', ['-c', script], { detached: true, stdio: 'ignore' });
    child.on('error', () => undefined);
    child.unref();
    orphanWatch = { file, groups: new Set() };
  }
  const w = orphanWatch;
  w.groups.add(group);
  writeFileSync(w.file, [...w.groups].join('\n') + '\n');
  return () => {
    w.groups.delete(group);
    writeFileSync(w.file, [...w.groups].join('\n') + '\n');
  };
}
