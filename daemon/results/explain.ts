/**
 * "How exactly was this file made?", answered from git alone (no state dir, no Redis), so it works on a
 * plain clone and at any commit of history.
 *
 * A file is a minipach output when it lies in the output directory of a datum whose marker the pipeline's
 * bookkeeping directory holds at that commit. The commit that last wrote the marker is the one that put the
 * outputs there: a run commit (its message is the datalad run record with minipach's fields) or a batch
 * commit listing links. Inputs are resolved at the parent of that commit, where the run read them, and an
 * input that is itself an output is explained the same way, down to raw data. Each datum is explained once
 * and referred to by id, so a summary over a thousand upstream datums stays a graph, not a thousand copies.
 */
import { UsageError } from '../core/errors.js';
import { pool } from '../core/pool.js';
import { datumLabel } from '../core/datum-label.js';
import { BOOKKEEPING_DIR, datumOutputs, markersByDatum, outputDir } from '../core/identity.js';
import { parseDataladRecord, parseRecords } from '../core/record.js';
import type { ExplainedDatum, ExplainedFile, Explanation } from '../core/provenance.js';
import type { ResultRecord } from '../core/result-index.js';
import type { Dataset } from '../adapters/dataset.js';
import { SnapshotReader } from '../adapters/snapshot-reader.js';

export async function explain(ds: Dataset, filePath: string, rev: string): Promise<Explanation> {
  const commit = await ds.repo.resolve(rev);
  if (!commit) throw new UsageError(`"${rev}" is not a commit of ${ds.dir}`);
  const e = new Explainer(ds);
  const entry = (await e.keysAt(commit, [filePath])).get(filePath);
  if (entry === undefined) throw new UsageError(`${filePath} does not exist in commit ${commit.slice(0, 12)} (explain takes a file path relative to the dataset root)`);
  const made = (await e.madeBy(commit, [filePath])).get(filePath);
  const file: ExplainedFile = made ? { path: filePath, key: entry, made_by: made } : { path: filePath, key: entry, added_in: (await e.lastChanges(commit, [filePath])).get(filePath) };
  const datums = [...e.datums.values()].sort((a, b) => (a.id === made ? -1 : b.id === made ? 1 : 0));
  return { path: filePath, commit, file, datums };
}

class Explainer {
  readonly datums = new Map<string, ExplainedDatum>();
  private readonly markers = new Map<string, Map<string, string>>();
  /** Datums whose explanation has been started (each is explained once, by whoever finds it first). */
  private readonly started = new Set<string>();

  private readonly reader: SnapshotReader;

  constructor(private readonly ds: Dataset) {
    this.reader = new SnapshotReader(ds.repo);
  }

  /** path -> content key, as datum keys record it, at `commit`, for files at or below `paths`. */
  async keysAt(commit: string, paths: readonly string[]): Promise<Map<string, string>> {
    const keys = await this.reader.keysOf(await this.ds.repo.lsTree(commit, paths));
    return new Map([...keys].map(([e, k]) => [e.path, k.contentKey]));
  }

  /** The last commit (from `commit` back) that changed each path. */
  lastChanges(commit: string, paths: readonly string[]): Promise<Map<string, string>> {
    return this.ds.repo.lastChanges(commit, paths);
  }

  /** Datum name -> the path of its marker, for a pipeline's markers at `commit` (either layout). */
  private async markersAt(commit: string, pipeline: string): Promise<Map<string, string>> {
    const id = `${commit}:${pipeline}`;
    let m = this.markers.get(id);
    if (!m) {
      const found = markersByDatum(pipeline, await this.ds.repo.lsTree(commit, [`${pipeline}/${BOOKKEEPING_DIR}`]));
      m = new Map([...found].map(([name, e]) => [name, e.path]));
      this.markers.set(id, m);
    }
    return m;
  }

  /**
   * Path -> id of the datum that made it as of `commit` (explained, with its upstream); raw data is left
   * out. The commits that wrote the datums' markers are found in one history walk per 200 of them.
   */
  async madeBy(commit: string, paths: readonly string[]): Promise<Map<string, string>> {
    const producer = new Map<string, { pipeline: string; datum: string; marker: string }>();
    for (const p of paths) {
      const pipeline = p.split('/')[0]!;
      const markers = await this.markersAt(commit, pipeline);
      let best: string | undefined;
      for (const name of markers.keys()) {
        const dir = outputDir(pipeline, name);
        const isOutput = datumOutputs([{ path: p }], pipeline, dir).length > 0; // never spec.yml or the bookkeeping dir
        if (isOutput && (best === undefined || dir.length > outputDir(pipeline, best).length)) best = name;
      }
      if (best !== undefined) producer.set(p, { pipeline, datum: best, marker: markers.get(best)! });
    }
    const writers = await this.lastChanges(commit, [...new Set([...producer.values()].map((x) => x.marker))]);
    const ids = new Map<string, string>();
    const todo: (() => Promise<void>)[] = [];
    for (const [p, { pipeline, datum, marker }] of producer) {
      const writer = writers.get(marker)!;
      const id = `${datumLabel(pipeline, datum)}@${writer.slice(0, 12)}`;
      ids.set(p, id);
      if (!this.started.has(id)) {
        this.started.add(id);
        todo.push(() => this.explainDatum(id, pipeline, datum, writer));
      }
    }
    await pool(todo, 8, (task) => task());
    return ids;
  }

  private async explainDatum(id: string, pipeline: string, datum: string, writer: string): Promise<void> {
    const msg = await this.ds.repo.commitMessage(writer);
    const rec = parseRecords(writer, msg ?? '').find((r) => r.pipeline === pipeline && r.datum === datum);
    if (!rec) throw new UsageError(`${outputDir(pipeline, datum)} was last written by commit ${writer.slice(0, 12)}, which has no minipach record for it (edited by hand?)`);
    // A linked result's transform, command and resources are those of the run it reuses.
    let run: ResultRecord | undefined = rec;
    let runMessage = msg;
    if (rec.kind === 'linked') {
      runMessage = await this.ds.repo.commitMessage(rec.runCommit);
      run = runMessage ? parseRecords(rec.runCommit, runMessage)[0] : undefined;
    }
    const base = `${writer}^`;
    const inputFiles = (rec.inputs ?? []).map((i) => ({ ...i, paths: i.files.map(([rel, key]) => ({ path: rel ? `${i.path}/${rel}` : i.path, key })) }));
    const made = await this.madeBy(base, inputFiles.flatMap((i) => i.paths.map((f) => f.path)));
    const raw = inputFiles.flatMap((i) => i.paths.map((f) => f.path)).filter((p) => !made.has(p));
    const added = await this.lastChanges(base, raw);
    const record = runMessage ? parseDataladRecord(runMessage) : undefined;
    this.datums.set(id, {
      id,
      pipeline,
      datum,
      key: rec.key,
      kind: rec.kind,
      output_dir: outputDir(pipeline, datum),
      commit: writer,
      run_commit: rec.runCommit,
      rerun: `datalad rerun --onto= --branch=rerun-${rec.runCommit.slice(0, 8)} ${rec.runCommit}`,
      ...(rec.kind === 'linked' ? { linked_from: { ...rec.source!, run_commit: rec.runCommit } } : {}),
      transform: run?.transformKey ? { key: run.transformKey, ...run.transform } : undefined,
      command: record?.cmd,
      resources: run?.resources,
      inputs: inputFiles.map((i) => ({
        name: i.name,
        path: i.path,
        files: i.paths.map((f) => (made.get(f.path) ? { path: f.path, key: f.key, made_by: made.get(f.path) } : { path: f.path, key: f.key, added_in: added.get(f.path) })),
      })),
      upstream: [...new Set(made.values())],
    });
  }
}

