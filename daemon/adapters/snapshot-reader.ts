/**
 * Reads a commit into a TreeSnapshot, and the pipeline specs it holds, from git objects alone (no checkout):
 * one `ls-tree -r`, then one `cat-file --batch` for the symlink and small blobs not yet in the key cache.
 */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { SpecError } from '../core/errors.js';
import { GitRepo, type LsTreeEntry } from './git.js';
import { Annex } from './annex.js';
import { annexKeyFromLinkTarget, annexKeyFromPointer, comparableAnnexKey, gitContentKey, MAX_POINTER_SIZE } from '../core/content-key.js';
import { loadSpec, SPEC_FILE, type PipelineSpec } from '../core/spec.js';
import { makeSnapshot, MODE_GITLINK, MODE_SYMLINK, type SubdatasetRef, type TreeEntry, type TreeSnapshot } from '../core/tree.js';

export class SnapshotReader {
  /** Blob id -> the annex key it names, or null when it is not an annex link/pointer. Blob ids never change meaning. */
  private readonly annexKeys = new Map<string, string | null>();
  /** Subdataset commit -> its root tree id (undefined when the subdataset is not installed here). */
  private readonly subdatasetTrees = new Map<string, string | undefined>();

  constructor(readonly repo: GitRepo) {}

  async read(commit: string): Promise<TreeSnapshot> {
    return makeSnapshot(commit, await this.readTree(this.repo, commit, '', undefined));
  }

  /**
   * The files of `commit` in `repo`, paths prefixed with `prefix`. Installed subdatasets are descended into
   * at their recorded commit, so globs see their files too; those entries name their subdataset.
   */
  private async readTree(repo: GitRepo, commit: string, prefix: string, subdatasets: readonly SubdatasetRef[] | undefined): Promise<TreeEntry[]> {
    const listing = await repo.lsTree(commit);
    await this.learnAnnexKeys(listing, repo);
    const entries: TreeEntry[] = [];
    for (const e of listing) {
      if (e.type === 'tree') continue;
      const p = prefix + e.path;
      if (e.mode === MODE_GITLINK) {
        const tree = await this.subdatasetTree(repo, e.path, e.oid);
        entries.push({ path: p, mode: e.mode, oid: e.oid, contentKey: tree ? `TREE-${tree}` : `GITLINK-${e.oid}`, subdatasets });
        if (tree) entries.push(...(await this.readTree(new GitRepo(path.join(repo.dir, e.path)), e.oid, p + '/', [...(subdatasets ?? []), { path: p, commit: e.oid }])));
        continue;
      }
      const annexKey = this.annexKeys.get(e.oid) ?? undefined;
      entries.push({ path: p, mode: e.mode, oid: e.oid, contentKey: annexKey ? comparableAnnexKey(annexKey) : gitContentKey(e.oid), annexKey, subdatasets });
    }
    return entries;
  }

  /** Reads the blobs that may name an annex key (symlinks, small files that may be pointers), once per blob id. */
  private async learnAnnexKeys(listing: readonly LsTreeEntry[], repo: GitRepo): Promise<void> {
    const unknown: string[] = [];
    for (const e of listing) {
      if (e.type !== 'blob' || this.annexKeys.has(e.oid)) continue;
      if (e.mode === MODE_SYMLINK || (e.size !== undefined && e.size <= MAX_POINTER_SIZE)) unknown.push(e.oid);
      else this.annexKeys.set(e.oid, null);
    }
    if (!unknown.length) return;
    const blobs = await repo.readBlobs([...new Set(unknown)]);
    for (const oid of unknown) {
      const text = blobs.get(oid)?.toString('utf8') ?? '';
      this.annexKeys.set(oid, annexKeyFromLinkTarget(text) ?? annexKeyFromPointer(text) ?? null);
    }
  }

  /**
   * The keys of some files, as a snapshot would give them (without reading the whole tree): `annexKey` for
   * annexed files (locked or unlocked), `contentKey` as datum keys record it.
   */
  async keysOf(entries: readonly LsTreeEntry[]): Promise<Map<LsTreeEntry, { contentKey: string; annexKey?: string }>> {
    await this.learnAnnexKeys(entries, this.repo);
    return new Map(
      entries.map((e) => {
        const annexKey = this.annexKeys.get(e.oid) ?? undefined;
        return [e, { contentKey: annexKey ? comparableAnnexKey(annexKey) : gitContentKey(e.oid), annexKey }];
      }),
    );
  }

  /**
   * A subdataset's identity is its content: the root tree of its recorded commit, so a re-commit of the
   * same files, or the same dataset installed under two names, is the same content. When the subdataset
   * is not installed here its tree cannot be read; the caller then keys it by commit (`GITLINK-<sha>`).
   */
  private async subdatasetTree(repo: GitRepo, subPath: string, commit: string): Promise<string | undefined> {
    if (!this.subdatasetTrees.has(commit)) {
      const sub = path.join(repo.dir, subPath);
      this.subdatasetTrees.set(commit, await new GitRepo(sub, path.join(sub, '.git')).treeOf(commit));
    }
    return this.subdatasetTrees.get(commit);
  }

  /**
   * Finds `*\/spec.yml` at the root of the snapshot and loads each. An annexed spec is read from the annex
   * object store; one whose content is not present is reported as a SpecError for that pipeline.
   */
  async readSpecs(snapshot: TreeSnapshot): Promise<Map<string, PipelineSpec | SpecError>> {
    const files = snapshot.entries.filter((e) => /^[^/]+\/spec\.yml$/.test(e.path));
    const texts = await this.readTexts(files);
    const specs = new Map<string, PipelineSpec | SpecError>();
    for (const f of files) {
      const name = f.path.slice(0, -SPEC_FILE.length - 1);
      const text = texts.get(f.path);
      specs.set(
        name,
        typeof text === 'string'
          ? loadSpec(f.path, text)
          : new SpecError(f.path, undefined, undefined, `is annexed and its content is neither here nor on any remote`, `run: datalad get ${f.path} (or keep specs in git: datalad create -c text2git)`),
      );
    }
    return specs;
  }

  /** Text of files in the snapshot: git blobs in one batch, annexed files from the object store. */
  async readTexts(files: readonly TreeEntry[]): Promise<Map<string, string | undefined>> {
    const out = new Map<string, string | undefined>();
    const blobs = await this.repo.readBlobs(files.filter((f) => !f.annexKey).map((f) => f.oid));
    for (const f of files) {
      if (f.annexKey) out.set(f.path, await this.readAnnexed(f.annexKey));
      else out.set(f.path, blobs.get(f.oid)?.toString('utf8'));
    }
    return out;
  }

  /** An annexed file's text; not here (a clone that fetched only git, like a daemon's), it is got first: specs are small. */
  private async readAnnexed(key: string): Promise<string | undefined> {
    const file = await new Annex(this.repo.dir).contentFile(key);
    return file === undefined ? undefined : readFile(file, 'utf8');
  }
}
