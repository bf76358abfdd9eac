/**
 * Workloads for the bench, generated in temporary directories. Each tool gets identical data: a DataLad
 * dataset for minipach and the datalad loop, plain files for Snakemake.
 */
import { createHash } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { execa } from 'execa';

export const ENV = {
  GIT_AUTHOR_NAME: 'bench',
  GIT_AUTHOR_EMAIL: 'bench@minipach.invalid',
  GIT_COMMITTER_NAME: 'bench',
  GIT_COMMITTER_EMAIL: 'bench@minipach.invalid',
  DATALAD_LOG_LEVEL: 'warning',
};

export const COUNT_SPEC = `input:
  pfs: { repo: raw, glob: "/*" }
transform:
  cmd: [sh, -c]
  stdin: ['wc -c < "$MINIPACH_IN_raw/data.txt" > "$MINIPACH_OUT/n"']
`;

export const SNAKEFILE = `import os
SUBJECTS = sorted(os.listdir("raw"))
rule all:
    input: expand("count/{s}/n", s=SUBJECTS)
rule count:
    input: "raw/{s}/data.txt"
    output: "count/{s}/n"
    shell: "wc -c < {input} > {output}"
`;

const subject = (i: number) => `s${String(i).padStart(6, '0')}`;

/** Content of subject i; with `duplicates`, subjects 2k and 2k+1 hold the same bytes. */
const content = (i: number, duplicates: boolean) => `data of subject ${duplicates ? Math.floor(i / 2) : i}\n`;

async function git(dir: string, args: string[], input?: string): Promise<string> {
  return (await execa('git', args, { cwd: dir, env: ENV, input })).stdout;
}

/**
 * A dataset with `n` annexed one-file subjects and a `count` pipeline, written with `git fast-import`:
 * annex symlinks to synthetic MD5E keys (no content), which is all planning reads. Returns the dataset dir.
 */
export async function planningDataset(root: string, n: number): Promise<string> {
  const dir = path.join(root, `plan-${n}`);
  await execa('datalad', ['create', dir], { env: ENV });
  const parent = (await git(dir, ['rev-parse', 'HEAD'])).trim();
  const branch = (await git(dir, ['symbolic-ref', '--short', 'HEAD'])).trim();
  await fastImport(dir, branch, parent, 'bench data', [...Array(n).keys()].map((i) => annexLink(`raw/${subject(i)}/data.txt`, content(i, false))), [['count/spec.yml', COUNT_SPEC]]);
  return dir;
}

/** Commits a change of one subject's file (a new key) on top of the branch, with fast-import. */
export async function changeOneFile(dir: string, i: number): Promise<void> {
  const branch = (await git(dir, ['symbolic-ref', '--short', 'HEAD'])).trim();
  const parent = (await git(dir, ['rev-parse', 'HEAD'])).trim();
  await fastImport(dir, branch, parent, 'change one file', [annexLink(`raw/${subject(i)}/data.txt`, `changed ${Date.now()}\n`)], []);
}

function annexLink(p: string, bytes: string): [string, string] {
  const md5 = createHash('md5').update(bytes).digest('hex');
  const key = `MD5E-s${Buffer.byteLength(bytes)}--${md5}.txt`;
  const depth = p.split('/').length - 1;
  return [p, `${'../'.repeat(depth)}.git/annex/objects/${md5.slice(0, 2)}/${md5.slice(2, 4)}/${key}/${key}`];
}

async function fastImport(dir: string, branch: string, parent: string, msg: string, links: [string, string][], files: [string, string][]): Promise<void> {
  const parts: string[] = [`commit refs/heads/${branch}\ncommitter bench <bench@minipach.invalid> ${Math.floor(Date.now() / 1000)} +0000\ndata ${Buffer.byteLength(msg)}\n${msg}\nfrom ${parent}\n`];
  const inline = (mode: string, p: string, data: string) => `M ${mode} inline ${p}\ndata ${Buffer.byteLength(data)}\n${data}\n`;
  for (const [p, target] of links) parts.push(inline('120000', p, target));
  for (const [p, data] of files) parts.push(inline('100644', p, data));
  await git(dir, ['fast-import', '--quiet', '--force'], parts.join('') + '\n');
}

/** Real files for Snakemake's dry run over the same subjects. */
export function plainFiles(root: string, n: number, name = `snake-plan-${n}`): string {
  const dir = path.join(root, name);
  for (let i = 0; i < n; i++) {
    mkdirSync(path.join(dir, 'raw', subject(i)), { recursive: true });
    writeFileSync(path.join(dir, 'raw', subject(i), 'data.txt'), content(i, false));
  }
  writeFileSync(path.join(dir, 'Snakefile'), SNAKEFILE);
  return dir;
}

/** A real DataLad dataset with `n` small annexed files (and the count pipeline), saved with datalad. */
export async function runDataset(root: string, name: string, n: number, duplicates: boolean, { withSpec = true } = {}): Promise<string> {
  const dir = path.join(root, name);
  await execa('datalad', ['create', dir], { env: ENV });
  for (let i = 0; i < n; i++) {
    mkdirSync(path.join(dir, 'raw', subject(i)), { recursive: true });
    writeFileSync(path.join(dir, 'raw', subject(i), 'data.txt'), content(i, duplicates));
  }
  if (withSpec) addCountSpec(dir);
  await execa('datalad', ['save', '-m', 'bench data'], { cwd: dir, env: ENV });
  return dir;
}

/** Writes the count pipeline's spec.yml (commit it yourself). */
export function addCountSpec(dir: string): void {
  mkdirSync(path.join(dir, 'count'), { recursive: true });
  writeFileSync(path.join(dir, 'count', 'spec.yml'), COUNT_SPEC);
}

export function subjects(n: number): string[] {
  return [...Array(n).keys()].map(subject);
}
