import { readFile } from 'node:fs/promises';
import type { Command } from 'commander';
import { openDataset } from '../options.js';
import { datumLabel } from '../../core/datum-label.js';
import { UsageError } from '../../core/errors.js';
import type { PipelinePlan } from '../../core/plan.js';
import { out, short } from '../printers.js';

export function register(program: Command): void {
  program
    .command('datums')
    .description('list the datums a pipeline (or an uncommitted spec file) would produce, with files and keys')
    .argument('<pipeline>', 'pipeline name (its directory)')
    .argument('[dataset]', 'dataset directory', '.')
    .option('--spec <file>', 'use this spec file instead of the committed one')
    .option('--branch <name>', 'branch to read (default: the checked-out branch)')
    .option('--json', 'print JSON')
    .action(async (pipeline: string, dir: string, o: { spec?: string; branch?: string; json?: boolean }) => {
      const { SnapshotReader } = await import('../../adapters/snapshot-reader.js');
      const { planDataset } = await import('../../core/plan.js');
      const { ResultStore } = await import('../../results/index-store.js');
      const ds = await openDataset(dir, o.branch);
      const reader = SnapshotReader.of(ds);
      const head = (await ds.repo.resolve(ds.ref))!;
      const snapshot = await reader.read(head);
      const specs = await reader.readSpecs(snapshot);
      if (o.spec) specs.set(pipeline, (await import('../../core/spec.js')).loadSpec(`${pipeline}/spec.yml`, await readFile(o.spec, 'utf8')));
      if (!specs.has(pipeline)) throw new UsageError(`no pipeline "${pipeline}": there is no ${pipeline}/spec.yml on ${ds.branch} (try --spec FILE)`);
      // The same plan as schedule's, so the preview shows exactly the datums (and keys) it would run.
      const plan = planDataset({ snapshot, specs, index: await new ResultStore(ds).load(head), containers: await reader.readContainers(snapshot, specs) });
      const p = plan.pipelines.find((x) => x.name === pipeline)!;
      if (p.error) throw p.error;
      const rows = datumRows(p);
      for (const n of p.notes) process.stderr.write(`note: ${n}\n`);
      if (o.json) return out(JSON.stringify({ pipeline, datums: rows }, null, 2));
      for (const r of rows) {
        out(`${datumLabel(pipeline, r.name)}  ${short(r.key)}  (${r.action})`);
        for (const i of r.inputs) for (const f of i.files) out(`    ${i.name}: ${f.path}  ${f.key}`);
      }
      out(`${rows.length} datum${rows.length === 1 ? '' : 's'}`);
    });
}

function datumRows(p: PipelinePlan) {
  return p.datums
    .filter((d) => d.datum)
    .map((d) => ({
      name: d.name,
      key: d.key,
      action: d.action,
      join_key: d.datum!.joinKey,
      group_key: d.datum!.groupKey,
      inputs: d.datum!.inputs.map((i) => ({ name: i.name, path: i.path, files: i.files.map((f) => ({ path: f.rel ? `${i.path}/${f.rel}` : i.path, key: f.entry.contentKey })) })),
    }));
}
