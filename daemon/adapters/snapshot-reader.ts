/**
 * Reads a commit into a TreeSnapshot, and the pipeline specs it holds, from git objects alone (no checkout):
 * one `ls-tree -r`, then one `cat-file --batch` for the symlink and small blobs not yet in the key cache.
 */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { SpecError } from '../core/errors.js';
import { GitRepo, type LsTreeEntry } from './git.js';
import type { Dataset } from './dataset.js';
import { SnapshotCache } from './snapshot-cache.js';
import type { KeyMemo, MemoPipeline } from '../core/key-memo.js';
import { Annex } from './annex.js';
import { annexKeyInBlob, contentKeyOf, MAX_POINTER_SIZE } from '../core/content-key.js';
import { loadSpec, loadSpecParsers, SPEC_FILE, type PipelineSpec } from '../core/spec.js';
import { CONTAINER_KEYS, containersOfConfig, DATALAD_CONFIG, type ContainerDef } from '../core/container.js';
import { makeSnapshot, MODE_GITLINK, MODE_SYMLINK, treeEntry, type SubdatasetRef, type TreeEntry, type TreeSnapshot } from '../core/tree.js';
import { parseLsTree } from './git-format.js';

/** Blob ids whose keys a read keeps, at most (see annexKeysOf). */
const KEEP_KEYS = 10_000;

export class SnapshotReader {
  /** Blob id -> the annex key it names, or null when it is not an annex link/pointer. Blob ids never change meaning. */
  private readonly annexKeys = new Map<string, string | null>();
  /** Subdataset commit -> its root tree id (undefined when the subdataset is not installed here). */
  private readonly subdatasetTrees = new Map<string, string | undefined>();
  /** The last snapshot read: a daemon plans the same commit several times. */
  private last?: TreeSnapshot;

  constructor(readonly repo: GitRepo, private readonly cache?: SnapshotCache) {}

  /** A reader of a dataset, with its snapshots cached in the dataset's state directory. */
  static of(ds: Dataset): SnapshotReader {
    return new SnapshotReader(ds.repo, new SnapshotCache(path.join(ds.stateDir, 'snapshots')));
  }

  /** How the last snapshot was had: read whole, cached as is, or a cached one plus the files that changed. */
  howRead?: { readonly commit: string; readonly source: 'read' | 'cached' | 'diff'; readonly base?: string; readonly changed: readonly string[] };

  async read(commit: string): Promise<TreeSnapshot> {
    if (this.last?.commit === commit) return this.last;
    const snapshot = (await this.fromCache(commit)) ?? (await this.readWhole(commit));
    this.last = snapshot;
    return snapshot;
  }

  /** The datum keys a plan of this commit (or of the one it was read from) left, with the files changed since. */
  async keyMemo(commit: string): Promise<KeyMemo | undefined> {
    // A plan of this very commit in this process (the daemon plans a commit several times): no file read.
    if (this.kept?.commit === commit) return { commit, changed: [], pipelines: this.kept.pipelines };
    const how = this.howRead;
    if (!this.cache || how?.commit !== commit || how.source === 'read') return undefined;
    const from = how.base ?? commit;
    const pipelines = await this.cache.loadKeys(from);
    if (pipelines && from === commit) this.kept = { commit, pipelines };
    return pipelines && { commit: from, changed: how.changed, pipelines };
  }

  /** Keeps a plan's datum keys for the next plan, here and in the cache (see core/key-memo.ts). */
  async keepKeys(commit: string, pipelines: ReadonlyMap<string, MemoPipeline>): Promise<void> {
    this.kept = { commit, pipelines };
    if (this.cache && this.howRead?.commit === commit) await this.cache.saveKeys(commit, pipelines);
  }

  private kept?: { readonly commit: string; readonly pipelines: ReadonlyMap<string, MemoPipeline> };

  private async readWhole(commit: string): Promise<TreeSnapshot> {
    const { entries, listing, keys } = await this.readTree(this.repo, commit, '', undefined);
    const snapshot = makeSnapshot(commit, entries);
    this.howRead = { commit, source: 'read', changed: [] };
    // A subdataset's entries depend on whether it is installed here, not on the commit alone: not cached.
    if (this.cache && !snapshot.entries.some((e) => e.mode === MODE_GITLINK)) await this.cache.saveListing(commit, listing, keys);
    return snapshot;
  }

  /**
   * The commit from the cache: as it is there, or as the most recently used cached commit plus the files
   * that changed since (one `diff-tree`, and only the changed blobs read). Undefined: read it whole.
   */
  private async fromCache(commit: string): Promise<TreeSnapshot | undefined> {
    if (!this.cache) return undefined;
    const hit = await this.cache.load(commit);
    if (hit) {
      this.howRead = { commit, source: 'cached', changed: [] };
      return makeSnapshot(commit, hit);
    }
    const base = await this.cache.latest();
    if (!base) return undefined;
    const changes = await this.repo.fileChanges(base.commit, commit).catch(() => undefined);
    if (!changes || changes.some((c) => !c.deleted && c.mode === MODE_GITLINK)) return undefined;
    const listing = changes.flatMap((c): LsTreeEntry[] => (c.deleted ? [] : [{ mode: c.mode, type: 'blob', oid: c.oid, size: undefined, path: c.path }]));
    const keys = await this.annexKeysOf(listing, this.repo);
    const changed = new Set(changes.map((c) => c.path));
    const entries = [...base.entries.filter((e) => !changed.has(e.path)), ...listing.map((e, i) => treeEntry(e.path, e.mode, e.oid, keys[i]))];
    const snapshot = makeSnapshot(commit, entries);
    await this.cache.save(commit, snapshot.entries);
    this.howRead = { commit, source: 'diff', base: base.commit, changed: [...changed] };
    return snapshot;
  }

  /**
   * The files of `commit` in `repo`, paths prefixed with `prefix`. Installed subdatasets are descended into
   * at their recorded commit, so globs see their files too; those entries name their subdataset.
   */
  private async readTree(repo: GitRepo, commit: string, prefix: string, subdatasets: readonly SubdatasetRef[] | undefined): Promise<{ entries: TreeEntry[]; listing: Buffer; keys: (string | undefined)[] }> {
    // The specs are parsed next: their parsers load while git lists the tree.
    const raw = await repo.listFiles(commit, prefix === '' ? loadSpecParsers : undefined);
    const listing = parseLsTree(raw);
    const keys = await this.annexKeysOf(listing, repo);
    const entries: TreeEntry[] = [];
    for (let i = 0; i < listing.length; i++) {
      const e = listing[i]!;
      if (e.type === 'tree') continue;
      const p = prefix + e.path;
      if (e.mode === MODE_GITLINK) {
        const tree = await this.subdatasetTree(repo, e.path, e.oid);
        entries.push({ path: p, mode: e.mode, oid: e.oid, contentKey: tree ? `TREE-${tree}` : `GITLINK-${e.oid}`, subdatasets });
        if (tree) entries.push(...(await this.readTree(new GitRepo(path.join(repo.dir, e.path)), e.oid, p + '/', [...(subdatasets ?? []), { path: p, commit: e.oid }])).entries);
        continue;
      }
      entries.push(treeEntry(p, e.mode, e.oid, keys[i], subdatasets));
    }
    // The listing as git gave it, with the keys in its order: what the snapshot cache keeps.
    return { entries, listing: raw, keys };
  }

  /**
   * The annex key of each entry of `listing` (by position; undefined: none), from the blobs that may name
   * one: symlinks, and files kept in git small enough to be an unlocked file's pointer (their sizes asked
   * while the symlinks are read). Keys of a few files are kept by blob id for later reads (keysOf, a diff);
   * a whole tree's are not: its snapshot is in the cache, and a map of 10^5 ids would only cost memory.
   */
  private async annexKeysOf(listing: readonly LsTreeEntry[], repo: GitRepo): Promise<(string | undefined)[]> {
    const keys: (string | undefined)[] = new Array(listing.length).fill(undefined);
    const links: number[] = [];
    const files: number[] = [];
    for (let i = 0; i < listing.length; i++) {
      const e = listing[i]!;
      if (e.type !== 'blob') continue;
      const known = this.annexKeys.size ? this.annexKeys.get(e.oid) : undefined;
      if (known !== undefined) keys[i] = known ?? undefined;
      else if (e.mode === MODE_SYMLINK) links.push(i);
      else if (e.size === undefined || e.size <= MAX_POINTER_SIZE) files.push(i);
    }
    const read = async (at: readonly number[]) => {
      const found = await repo.readBlobsInOrder(at.map((i) => listing[i]!.oid), annexKeyInBlob);
      at.forEach((i, n) => (keys[i] = found[n]));
    };
    const small = async () => {
      const unsized = files.filter((i) => listing[i]!.size === undefined);
      const sizes = await repo.objectSizes(unsized.map((i) => listing[i]!.oid));
      await read(files.filter((i) => (listing[i]!.size ?? sizes.get(listing[i]!.oid) ?? Infinity) <= MAX_POINTER_SIZE));
    };
    await Promise.all([read(links), small()]);
    if (links.length + files.length <= KEEP_KEYS) for (const i of [...links, ...files]) this.annexKeys.set(listing[i]!.oid, keys[i] ?? null);
    return keys;
  }

  /**
   * The keys of some files, as a snapshot would give them (without reading the whole tree): `annexKey` for
   * annexed files (locked or unlocked), `contentKey` as datum keys record it.
   */
  async keysOf(entries: readonly LsTreeEntry[]): Promise<Map<LsTreeEntry, { contentKey: string; annexKey?: string }>> {
    const keys = await this.annexKeysOf(entries, this.repo);
    return new Map(entries.map((e, i) => [e, { contentKey: contentKeyOf(e.oid, keys[i]), annexKey: keys[i] }]));
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

  /** The containers `.datalad/config` registers at the snapshot's commit (none read when no spec names an image). */
  async readContainers(snapshot: TreeSnapshot, specs: ReadonlyMap<string, PipelineSpec | SpecError>): Promise<Map<string, ContainerDef>> {
    const wanted = [...specs.values()].some((s) => !(s instanceof SpecError) && s.transform.image !== null);
    if (!wanted || !snapshot.byPath.has(DATALAD_CONFIG)) return new Map();
    return containersOfConfig(await this.repo.configMatching(CONTAINER_KEYS, { blob: `${snapshot.commit}:${DATALAD_CONFIG}` }));
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
