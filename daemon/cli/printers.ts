/**
 * How the CLI shows things: plans, forecasts, costs, explanations and schedule reports as text, and the
 * plan as JSON. Pure formatting over the core's types; `out` writes a line to stdout.
 */
import { datumLabel } from '../core/datum-label.js';
import type { CostReport, Forecast } from '../core/cost.js';
import type { DatumPlan, Plan } from '../core/plan.js';
import { jsonString } from '../core/json-text.js';
import type { Explanation } from '../core/provenance.js';
import type { ScheduleReport } from '../schedule/report.js';

export const out = (s: string): void => void process.stdout.write(s + '\n');
export const short = (k: string) => (k ? k.slice(0, 12) : '-'.repeat(12));


/**
 * The plan as one line of JSON, in pieces: a plan of 10^5 datums is tens of megabytes, written out as it is
 * made rather than built whole first. `extra` fields follow the plan's.
 */
export function* planJsonPieces(plan: Plan, extra: Record<string, unknown> = {}, { close = true } = {}): Generator<string> {
  yield `{"commit":${JSON.stringify(plan.commit)},"pipelines":[`;
  for (const [i, p] of plan.pipelines.entries()) {
    const head = JSON.stringify({
      name: p.name,
      file: p.file,
      status: p.status,
      error: p.error ? { message: p.error.message, file: p.error.file, line: p.error.line, column: p.error.column, field: p.error.field, hint: p.error.hint } : undefined,
      upstream: p.upstream,
      notes: p.notes,
      transform_key: p.transform?.key,
    });
    yield `${i ? ',' : ''}${head.slice(0, -1)},"datums":[`;
    // 10^5 datums, a thousand at a time, written field by field: the text JSON.stringify gives each as an
    // object (a test holds it to that), in two thirds of the time here.
    for (let from = 0; from < p.datums.length; from += 1000) {
      let chunk = '';
      for (let j = from; j < Math.min(p.datums.length, from + 1000); j++) chunk += (j ? ',' : '') + datumJson(p.datums[j]!);
      yield chunk;
    }
    yield ']}';
  }
  yield ']';
  yield* jsonFields(extra);
  if (close) yield '}\n';
}

/** One datum of `plan --json`. */
export function datumJson(d: DatumPlan): string {
  let s = '{"name":' + jsonString(d.name) + ',"key":' + jsonString(d.key) + ',"action":"' + d.action + '","reason":' + reasonJson(d.reason) + ',"output":' + jsonString(d.outputDir);
  if (d.datum) {
    const inputs = d.datum.inputs;
    s += ',"inputs":[';
    for (let k = 0; k < inputs.length; k++) s += (k ? ',{"name":' : '{"name":') + jsonString(inputs[k]!.name) + ',"path":' + jsonString(inputs[k]!.path) + ',"files":' + inputs[k]!.files.length + '}';
    s += ']';
  }
  if (d.source && !('pending' in d.source)) s += ',"source":' + JSON.stringify({ pipeline: d.source.pipeline, datum: d.source.datum, commit: d.source.runCommit });
  return s + '}';
}

/** The last reason written and its JSON: most datums of a plan share theirs ('new datum', 'outputs are current'). */
let lastReason = { text: '', json: '""' };

function reasonJson(reason: string): string {
  if (reason !== lastReason.text) lastReason = { text: reason, json: jsonString(reason) };
  return lastReason.json;
}

/** `,"key":value` for each defined field: the rest of an object whose first fields are already out. */
export function* jsonFields(fields: Record<string, unknown>): Generator<string> {
  for (const [k, v] of Object.entries(fields)) if (v !== undefined) yield `,${JSON.stringify(k)}:${JSON.stringify(v)}`;
}

/** Writes pieces to stdout, waiting whenever the pipe is full (so they are not all held in memory). */
export async function writeOut(pieces: Iterable<string>): Promise<void> {
  for (const piece of pieces) {
    if (!process.stdout.write(piece)) await new Promise<void>((resolve) => process.stdout.once('drain', resolve));
  }
}

export function printPlan(plan: Plan): void {
  out(`plan at ${plan.commit.slice(0, 12)}`);
  for (const p of plan.pipelines) {
    out(`\n${p.name} (${p.status})${p.upstream.length ? ` <- ${p.upstream.join(', ')}` : ''}`);
    if (p.error) out(`  error: ${p.error.message}`);
    for (const n of p.notes) out(`  note: ${n}`);
    for (const d of p.datums) out(`  ${d.action.padEnd(8)} ${datumLabel(d.pipeline, d.name).padEnd(32)} ${short(d.key)}  ${d.reason}`);
  }
  const counts: Record<string, number> = {};
  for (const p of plan.pipelines) for (const d of p.datums) counts[d.action] = (counts[d.action] ?? 0) + 1;
  out(`\n${['compute', 'link', 'skip', 'remove', 'blocked'].map((a) => `${counts[a] ?? 0} ${a}`).join(', ')}`);
}

const seconds = (s: number) => (s < 90 ? `${s.toFixed(1)} s` : s < 5400 ? `${(s / 60).toFixed(1)} min` : `${(s / 3600).toFixed(1)} h`);
const money = (x: number) => x.toFixed(x < 1 ? 4 : 2);
/** CPU time in the unit that makes it readable: CPU-hours from a tenth of an hour, CPU-seconds below. */
const cpuTime = (hours: number) => (hours >= 0.1 ? `${hours.toFixed(2)} CPU-h` : `${(hours * 3600).toFixed(1)} CPU-s`);

export function printForecast(f: Forecast): void {
  for (const l of f.leftOut) out(`forecast leaves out ${l}`);
  if (!f.pipelines.length) return;
  out('\nforecast (median job time per datum from recorded results):');
  for (const p of f.pipelines) {
    const n = `${p.compute} to compute${p.waiting ? ` + ${p.waiting} waiting for upstream` : ''}`;
    if (p.basis === 'no history') {
      out(`  ${p.pipeline.padEnd(20)} ${n}: no history (never computed here), no forecast`);
      continue;
    }
    const basis = p.basis === 'previous transform' ? `the PREVIOUS transform's ${p.samples} results (the transform changed since)` : `${p.samples} result${p.samples === 1 ? '' : 's'}`;
    out(
      `  ${p.pipeline.padEnd(20)} ${n}: ~${seconds(p.medianWall!)} each -> ${seconds(p.wall!)}` +
        `${p.cpuHours !== undefined ? `, ${cpuTime(p.cpuHours)}` : ''}${p.price !== undefined ? `, cost ${money(p.price)}` : ''} (from ${basis})`,
    );
  }
  out(`  total: ~${seconds(f.wall)} of job time one at a time, ${cpuTime(f.cpuHours)}${f.price !== undefined ? `, cost ${money(f.price)}` : ''}${f.unknown.length ? ` (not counting ${f.unknown.join(', ')}: no history)` : ''}`);
}

export function printCost(title: string, r: CostReport): void {
  out(title);
  for (const d of r.datums) {
    const what = d.kind === 'computed' ? `${seconds(d.wall)} job, ${d.cpu.toFixed(2)} s CPU${d.maxRssKiB !== undefined ? `, peak ${(d.maxRssKiB / 1024).toFixed(1)} MiB` : ''}` : d.kind === 'linked' ? `linked: reuses ${d.reuses}, no cost of its own` : 'no record (edited by hand?)';
    out(`  ${datumLabel(d.pipeline, d.datum).padEnd(32)} ${what}`);
  }
  out(`${r.computed} computed, ${r.linked} linked: ${seconds(r.wall)} of job time, ${cpuTime(r.cpuHours)}${r.price !== undefined ? `, cost ${money(r.price)}` : ''}`);
}

export function printExplanation(x: Explanation): void {
  out(`${x.path}  ${x.file.key}  (at ${x.commit.slice(0, 12)})`);
  if (!x.file.made_by) {
    out(`  not a minipach output: raw data, last changed in commit ${x.file.added_in ?? '(unknown)'}`);
    return;
  }
  const byId = new Map(x.datums.map((d) => [d.id, d]));
  const shown = new Set<string>();
  const show = (id: string, indent: string) => {
    const d = byId.get(id)!;
    out(`${indent}made by ${datumLabel(d.pipeline, d.datum)} (${d.kind}), datum key ${d.key}`);
    const i = indent + '  ';
    if (shown.has(id)) {
      out(`${i}(explained above)`);
      return;
    }
    shown.add(id);
    if (d.linked_from) out(`${i}linked: reuses the result of ${datumLabel(d.linked_from.pipeline, d.linked_from.datum)} from run commit ${d.linked_from.run_commit}; placed by ${d.commit}`);
    out(`${i}run commit ${d.run_commit}`);
    out(`${i}reproduce: ${d.rerun}`);
    if (d.transform) {
      const t = d.transform;
      out(`${i}transform ${t.key}`);
      if (t.cmd) out(`${i}  cmd ${JSON.stringify(t.cmd)}${t.stdin?.length ? ` stdin ${JSON.stringify(t.stdin)}` : ''}`);
      if (t.env && Object.keys(t.env).length) out(`${i}  env ${JSON.stringify(t.env)}`);
      if (t.image) out(`${i}  image ${t.image}`);
      for (const [p, k] of t.code ?? []) out(`${i}  code ${p}  ${k}`);
    }
    if (d.command) out(`${i}command: ${d.command.split('\n').join(`\n${i}  `)}`);
    if (d.resources) {
      const r = d.resources;
      out(`${i}resources: ${r.wall.toFixed(2)} s job${r.commandWall !== undefined ? `, ${r.commandWall.toFixed(2)} s command` : ''}${r.cpu !== undefined ? `, ${r.cpu.toFixed(2)} s CPU` : ''}${r.maxRssKiB !== undefined ? `, peak RSS ${(r.maxRssKiB / 1024).toFixed(1)} MiB` : ''}${d.kind === 'linked' ? ' (of the reused run)' : ''}`);
    }
    out(`${i}inputs:`);
    for (const inp of d.inputs) {
      for (const f of inp.files) {
        out(`${i}  ${inp.name}: ${f.path}  ${f.key}${f.made_by ? '' : `  (raw data, last changed in ${f.added_in?.slice(0, 12) ?? 'an unknown commit'})`}`);
      }
    }
    for (const u of d.upstream) show(u, i + '  ');
  };
  show(x.file.made_by, '  ');
}

export function printReport(r: ScheduleReport): void {
  for (const p of r.pipelines) {
    out(`${p.name} (${p.status})`);
    if (p.error) out(`  error: ${p.error}`);
    for (const d of p.datums) {
      const mark = d.status === 'failed' ? 'FAILED ' : '';
      out(`  ${mark}${d.action.padEnd(8)} ${datumLabel(d.pipeline, d.name).padEnd(32)} ${short(d.key)}  ${d.reason}${d.commit ? ` [${d.commit.slice(0, 10)}]` : ''}`);
      if (d.stderrTail) out(d.stderrTail.split('\n').map((l) => `      | ${l}`).join('\n'));
      if (d.status === 'failed' && d.log) out(`      log: ${d.log}`);
    }
  }
  for (const w of r.warnings) out(`warning: ${w}`);
  const c = r.counts;
  out(`\n${c.computed} computed, ${c.linked} linked, ${c.skipped} skipped, ${c.removed} removed, ${c.failed} failed, ${c.blocked} blocked in ${r.seconds.toFixed(1)}s (${r.branch} at ${r.head.slice(0, 12)})`);
}

