/**
 * git-annex in minipach's verbs: get content, copy it to a remote, find where content is, and put a file
 * into the object store under its key. Keys are asked about in one batch process, never one by one.
 */
import { GitRepo } from './git.js';
import { run, runUnchecked, startLineProcess, type LineProcess } from './process.js';

/** git-annex's uuid for content on the web (URLs recorded with addurl / registerurl). */
const WEB_UUID = '00000000-0000-0000-0000-000000000001';

/** How an annex operation that may fail for reasons outside our control ended. */
export interface AnnexOutcome {
  readonly ok: boolean;
  /** git-annex's own words when it failed (the last lines of stderr). */
  readonly message: string;
}

const outcome = (r: { exitCode?: number; stderr: string }): AnnexOutcome => ({ ok: r.exitCode === 0, message: r.stderr.trim().split('\n').slice(-3).join(' ') });

export class Annex {
  readonly repo: GitRepo;

  constructor(readonly dir: string) {
    this.repo = new GitRepo(dir);
  }

  private annex(args: readonly string[], input?: string) {
    return runUnchecked(['git', 'annex', ...args], { cwd: this.dir, input });
  }

  /** Merges the git-annex branches fetched from remotes (refs/remotes/REMOTE/git-annex) into this one. */
  async mergeBranches(): Promise<void> {
    await this.annex(['merge', '-q']);
  }

  /** Whether `git annex init` has run in this repository. */
  async initialised(): Promise<boolean> {
    return (await this.repo.config('annex.uuid')) !== undefined;
  }

  /** `git annex init`, with hard links from a local origin (annex objects are read-only, so safe to share). */
  async init(description: string, { hardlink = false } = {}): Promise<void> {
    const r = await this.annex(['init', '-q', description]);
    if (r.exitCode !== 0) throw new Error(`git annex init failed in ${this.dir}: ${r.stderr.trim()}`);
    if (hardlink) await this.repo.setConfig('annex.hardlink', 'true');
  }

  /**
   * Gets the content of paths (files or directories) from wherever a copy is. When some cannot be got,
   * `message` holds git-annex's own words for each, as `get <file>: error: <why>` lines.
   */
  async get(paths: readonly string[]): Promise<AnnexOutcome> {
    const r = await this.annex(['get', '--json', '--json-error-messages', '--', ...paths]);
    if (r.exitCode === 0) return { ok: true, message: '' };
    const failed = r.stdout
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l) as { file?: string; success?: boolean; 'error-messages'?: string[]; note?: string })
      .filter((j) => j.success === false)
      .map((j) => `get ${j.file ?? '?'}: error: ${[...(j['error-messages'] ?? []), j.note ?? ''].join(' ').replace(/\s+/g, ' ').trim()}`);
    return { ok: false, message: failed.length ? failed.join('\n') : outcome(r).message };
  }

  /** Copies the content of keys to a remote. */
  async copyKeysTo(remote: string, keys: readonly string[]): Promise<AnnexOutcome> {
    if (!keys.length) return { ok: true, message: '' };
    // One process for every key (`--key` takes one key only); --json says which key failed, and why.
    const r = await this.annex(['copy', '--to', remote, '--batch-keys', '--json', '--json-error-messages'], keys.join('\n') + '\n');
    const failed = r.stdout.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as { success?: boolean; key?: string; 'error-messages'?: string[] }).filter((j) => j.success === false);
    if (r.exitCode === 0 && !failed.length) return { ok: true, message: '' };
    const why = failed.map((j) => `${j.key}: ${(j['error-messages'] ?? []).join(' ').trim() || 'failed'}`);
    return { ok: false, message: [...why, r.stderr.trim()].filter(Boolean).join('\n') || `git annex copy exited with ${r.exitCode}` };
  }

  /** The absolute path of a key's content here, getting it from a remote first when it is not here. */
  async contentFile(key: string): Promise<string | undefined> {
    const where = async () => {
      const r = await this.annex(['contentlocation', key]);
      return r.exitCode === 0 && r.stdout.trim() ? `${this.dir}/${r.stdout.trim()}` : undefined;
    };
    const here = await where();
    if (here) return here;
    await this.annex(['get', '-q', '--key', key]);
    return where();
  }

  /** The keys among `keys` whose content is not in this repository's object store (one batch process). */
  async missingContent(keys: readonly string[]): Promise<string[]> {
    if (!keys.length) return [];
    const r = await this.annex(['contentlocation', '--batch'], keys.join('\n') + '\n');
    const lines = r.stdout.split('\n');
    return keys.filter((_, i) => !lines[i]?.trim());
  }

  /**
   * Moves a file into the object store under the key the dataset's backend gives it (`backend`: the
   * `annex.backend` attribute of its path, if any). Returns the key and the object's path below
   * `.git/annex/objects/`.
   */
  async store(file: string, backend?: string): Promise<{ key: string; objectPath: string }> {
    const key = (await run(['git', 'annex', 'calckey', ...(backend ? [`--backend=${backend}`] : []), file], { cwd: this.dir })).trim();
    await run(['git', 'annex', 'setkey', key, file], { cwd: this.dir });
    const objectPath = (await run(['git', 'annex', 'examinekey', '--format=${hashdirmixed}${key}/${key}', key], { cwd: this.dir })).trim();
    return { key, objectPath };
  }

  /**
   * Annex key -> how many places this clone can get its content from: itself, its remotes, the web.
   * By git-annex's location log (dead repositories excluded). A copy in a repository that is not one of this
   * clone's remotes (a colleague's laptop) does not count: `datalad get` could not reach it.
   */
  async reachableCopies(keys: readonly string[]): Promise<Map<string, number>> {
    const out = new Map<string, number>();
    if (!keys.length) return out;
    const remotes = new Set((await this.repo.configMatching('^remote\\..*\\.annex-uuid$')).values());
    const r = await this.annex(['whereis', '--json', '--batch-keys'], keys.join('\n') + '\n');
    for (const line of r.stdout.split('\n')) {
      if (!line.startsWith('{')) continue;
      type Copy = { uuid: string; here: boolean; urls?: string[] };
      const j = JSON.parse(line) as { key?: string; whereis?: Copy[]; untrusted?: Copy[] };
      const copies = [...(j.whereis ?? []), ...(j.untrusted ?? [])].filter((c) => c.here || remotes.has(c.uuid) || (c.uuid === WEB_UUID && c.urls?.length));
      if (j.key) out.set(j.key, copies.length);
    }
    return out;
  }
}

/** What `git annex add` did with one file: annexed it under `key`, or (no key) put it in git. */
export interface AddedFile {
  readonly file: string;
  readonly key?: string;
  readonly error?: string;
}

/**
 * One `git annex add --batch --json` for many files: git-annex decides, by the dataset's `.gitattributes`
 * (annex.largefiles, annex.backend), whether a file is annexed (it becomes a symlink into the object store)
 * or stays a regular file for git. Its staging in the index is deferred; callers take the symlink targets
 * and file contents themselves.
 */
export class AnnexAdder {
  private readonly proc: LineProcess;

  constructor(readonly dir: string) {
    this.proc = startLineProcess(['git', 'annex', 'add', '--batch', '--json', '--json-error-messages'], { cwd: dir });
  }

  async add(file: string): Promise<AddedFile> {
    const line = await this.proc.ask(file);
    // An empty answer: nothing to do (a file git already has as it is).
    if (!line.trim()) return { file };
    let j: { file?: string; key?: string; success?: boolean; 'error-messages'?: string[] };
    try {
      j = JSON.parse(line) as typeof j;
    } catch {
      return { file, error: `git annex add said: ${line}` };
    }
    if (j.success === false) return { file, error: (j['error-messages'] ?? []).join(' ') || 'git annex add failed' };
    return { file, key: j.key };
  }

  close(): Promise<void> {
    return this.proc.close();
  }
}
