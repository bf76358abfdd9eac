/**
 * `transform.image` with real podman (runc, cgroupfs, vfs: test/helpers/podman.ts) and images built here
 * from busybox-static. The command runs inside (it reports BusyBox), sees /pfs/<input> and /pfs/out, and
 * its record is what `datalad containers-run` writes, so `datalad rerun` on a fresh clone reproduces it.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ENV, failures, TestDataset } from '../helpers/dataset.js';
import { startDaemon } from '../helpers/daemon.js';
import { podman, type Podman } from '../helpers/podman.js';

let pm: Podman;
let image: string;
const cleanups: (() => void)[] = [];

beforeAll(async () => {
  pm = podman();
  image = await pm.ociArchive(await pm.rootfs('bb'), 'localhost/minipach-test-bb:1');
}, 120_000);

afterAll(() => {
  for (const c of cleanups) c();
  pm?.cleanup();
});

const EDGES = `input:\n  pfs: { repo: raw, glob: "/*", name: images }\ntransform:\n  image: bb\n  cmd: [sh, -c]\n  stdin:\n    - 'cat /pfs/images/*/data.txt | wc -w > /pfs/out/words; busybox | head -1 | cut -d" " -f1 > /pfs/out/os; ls /pfs > /pfs/out/pfs; ls /pfs/images > /pfs/out/matched'\n`;
const PLAIN = `input: { pfs: { repo: raw, glob: "/*" } }\ntransform:\n  cmd: [sh, -c]\n  stdin: ['wc -c < "$MINIPACH_IN_raw/data.txt" > "$MINIPACH_OUT/bytes"']\n`;

async function study(spec = EDGES): Promise<TestDataset> {
  const ds = await TestDataset.create();
  cleanups.push(() => ds.cleanup());
  ds.write({ 'raw/s1/data.txt': 'one two three\n', 'raw/s2/data.txt': 'four\n', 'plain/spec.yml': PLAIN });
  await ds.save('data');
  const add = await ds.minipachWith(pm.env, 'containers', 'add', 'bb', '--from', image);
  expect(add.exitCode, add.stderr).toBe(0);
  ds.write({ 'edges/spec.yml': spec });
  await ds.save('pipeline');
  return ds;
}

const schedule = async (ds: TestDataset, env: Record<string, string> = pm.env) => {
  const r = await ds.minipachWith(env, 'schedule', '--json');
  return { ...r, report: JSON.parse(r.stdout) as import('../helpers/dataset.js').ScheduleJson };
};

describe('transform.image', () => {
  it('runs the command in the container, with /pfs paths, and records it as datalad containers-run does', async () => {
    const ds = await study();
    const list = await ds.minipach('containers', 'list', '--json');
    expect(JSON.parse(list.stdout)).toMatchObject([{ name: 'bb', image: '.datalad/environments/bb/image', present: true }]);
    const r = await schedule(ds);
    expect(r.exitCode, failures(r.report) + r.stderr).toBe(0);
    expect(r.report.counts.computed).toBe(4);
    // Proved from inside: busybox's own banner (the host's sh is not busybox), and the Pachyderm paths.
    expect(readFileSync(path.join(ds.dir, 'edges/s1/os'), 'utf8')).toBe('BusyBox\n');
    expect(readFileSync(path.join(ds.dir, 'edges/s1/words'), 'utf8')).toBe('3\n');
    expect(readFileSync(path.join(ds.dir, 'edges/s1/pfs'), 'utf8')).toBe('images\nout\n');
    expect(readFileSync(path.join(ds.dir, 'edges/s1/matched'), 'utf8')).toBe('s1\n');
    const record = JSON.parse((await ds.git('log', '-1', '--format=%B', '--grep', 'edges/s1')).split('=== Do not change lines below ===')[1]!.split('^^^ Do not change lines above ^^^')[0]!);
    expect(record.extra_inputs).toEqual(['.datalad/environments/bb/image']);
    expect(record.cmd).toMatch(/^rm -rf -- edges\/s1 && mkdir -p -- edges\/s1 && podman run -i --rm --quiet --network=none .* oci-archive:\.datalad\/environments\/bb\/image sh -c /);
    await ds.fsck();
  });

  it('datalad rerun on a fresh clone replays the container runs to the same keys, with only podman installed', async () => {
    const ds = await study();
    const base = await ds.head();
    expect((await schedule(ds)).exitCode).toBe(0);
    const clone = path.join(path.dirname(ds.dir), 'clone');
    await execa('datalad', ['clone', ds.dir, clone], { env: ENV });
    await execa('datalad', ['rerun', '--branch', 'replay', '--onto', base, '--since', base], { cwd: clone, env: { ...ENV, ...pm.env } });
    const keys = async (dir: string, rev: string) => (await execa('git', ['ls-tree', '-r', rev, '--', 'edges'], { cwd: dir })).stdout.split('\n').filter((l) => !l.includes('.minipach'));
    const replayed = await keys(clone, 'replay');
    expect(replayed.length).toBe(9);
    expect(replayed).toEqual(await keys(ds.dir, 'HEAD'));
  });

  it('a changed image recomputes the pipelines that use it, only; a renamed identical one recomputes nothing', async () => {
    const ds = await study();
    expect((await schedule(ds)).exitCode).toBe(0);
    // The same bytes under another name: same transform key.
    expect((await ds.minipachWith(pm.env, 'containers', 'add', 'bb2', '--from', image)).exitCode).toBe(0);
    ds.write({ 'edges/spec.yml': EDGES.replace('image: bb', 'image: bb2') });
    await ds.save('renamed image');
    const renamed = await ds.planJson();
    expect((renamed.pipelines as { datums: { action: string }[] }[]).flatMap((p) => p.datums.map((d) => d.action))).toEqual(['skip', 'skip', 'skip', 'skip']);
    // A new image: edges computes again, plain does not.
    const other = await pm.ociArchive(await pm.rootfs('bb-new', { '/etc/version': '2\n' }), 'localhost/minipach-test-bb:2');
    expect((await ds.minipachWith(pm.env, 'containers', 'add', 'bb2', '--from', other)).exitCode).toBe(0);
    const r = await schedule(ds);
    expect(r.exitCode, failures(r.report)).toBe(0);
    expect(r.report.pipelines.map((p) => [p.name, p.datums.filter((d) => d.action === 'compute').length])).toEqual([['edges', 2], ['plain', 0]]);
  });

  it('a Pachyderm spec runs as it is (edges.json), given its image in the dataset pinned by digest', async () => {
    // An image that stands in for pachyderm/opencv:1.0: python3 and /edges.py, busybox underneath.
    const opencv = await pm.ociArchive(
      await pm.rootfs('opencv', { '/usr/bin/python3': '#!/bin/sh\nexec sh "$@"\n', '/edges.py': 'for f in /pfs/images/*; do tr a-z A-Z < "$f" > /pfs/out/$(basename "$f").edges; done\n' }),
      'localhost/minipach-test-opencv:1',
    );
    const digest = JSON.parse((await execa('tar', ['-xOf', opencv, 'index.json'])).stdout).manifests[0].digest as string;
    const ds = await TestDataset.create();
    cleanups.push(() => ds.cleanup());
    ds.write({ 'images/a.txt': 'edge\n', 'edges/spec.yml': readFileSync(new URL('../../../shared/fixtures/pachyderm-specs/edges.json', import.meta.url), 'utf8') });
    await ds.save('pachyderm spec');
    // Unpinned and not in the dataset: refused, with what to do.
    const refused = await ds.minipachWith(pm.env, 'plan');
    expect(refused.stdout).toMatch(/transform\.image.*registry reference without a digest.*containers add/s);
    const bad = await ds.minipachWith(pm.env, 'containers', 'add', 'opencv', '--from', image, '--url', `pachyderm/opencv:1.0@${digest}`);
    expect(bad.stderr).toMatch(/is not pachyderm\/opencv:1\.0@sha256:.*its manifest digest is/);
    expect((await ds.minipachWith(pm.env, 'containers', 'add', 'opencv', '--from', opencv, '--url', `pachyderm/opencv:1.0@${digest}`)).exitCode).toBe(0);
    const r = await schedule(ds);
    expect(r.exitCode, failures(r.report) + r.stderr).toBe(0);
    expect(readFileSync(path.join(ds.dir, 'edges/a.txt/a.txt.edges'), 'utf8')).toBe('EDGE\n');
  });

  it('without the runtime, or without the image content: the datum fails saying what to install or fetch', async () => {
    const ds = await study();
    // podman lives in /usr/bin with git and node: a PATH without it is a directory of our own, without podman.
    const bin = path.join(path.dirname(ds.dir), 'bin');
    await execa('mkdir', ['-p', bin]);
    for (const tool of ['node', 'git', 'git-annex', 'git-annex-shell', 'datalad', 'sh', 'env', 'rm', 'mkdir', 'wc', 'cat', 'find', 'nsenter', 'unshare', 'mount', 'sleep', 'kill', 'tr', 'cut', 'head', 'ls']) {
      const where = (await execa('sh', ['-c', `command -v ${tool}`], { reject: false })).stdout.trim();
      if (where) await execa('ln', ['-sf', where, path.join(bin, tool)]);
    }
    const r = await schedule(ds, { ...pm.env, PATH: bin });
    const failed = r.report.pipelines.find((p) => p.name === 'edges')!.datums;
    expect(failed.length, failures(r.report) + r.stderr).toBe(2);
    expect(failed.every((d) => d.status === 'failed' && /container runtime podman is not installed here.*apt install podman/.test(d.reason)), failures(r.report)).toBe(true);
    expect(r.report.pipelines.find((p) => p.name === 'plain')!.datums.every((d) => d.status === 'ok'), failures(r.report)).toBe(true);
    // The image's content gone (dropped here, and nowhere else): the datums fail naming it.
    await ds.git('annex', 'drop', '--force', '.datalad/environments/bb/image');
    const r2 = await schedule(ds);
    const reasons = r2.report.pipelines.find((p) => p.name === 'edges')!.datums.map((d) => `${d.reason} ${d.stderrTail ?? ''}`);
    expect(reasons.every((x) => /\.datalad\/environments\/bb\/image/.test(x)), reasons.join('\n')).toBe(true);
    // An image the runtime cannot load: the container did not run, which is no exit code of the command.
    ds.write({ '.datalad/environments/junk/image': 'not an image\n', 'edges/spec.yml': EDGES.replace('image: bb', 'image: junk') });
    await ds.git('config', '-f', '.datalad/config', 'datalad.containers.junk.image', '.datalad/environments/junk/image');
    await ds.git('config', '-f', '.datalad/config', 'datalad.containers.junk.cmdexec', (await ds.git('config', '-f', '.datalad/config', 'datalad.containers.bb.cmdexec')).trim());
    await ds.save('a broken image');
    const r3 = await schedule(ds);
    const junk = r3.report.pipelines.find((p) => p.name === 'edges')!.datums;
    expect(junk.every((d) => d.status === 'failed' && d.exit === undefined && /the container junk did not run \(podman exit 125\)/.test(d.reason)), failures(r3.report)).toBe(true);
    // Adding the same image again brings the content back (the same key): nothing else was touched.
    expect((await ds.minipachWith(pm.env, 'containers', 'add', 'bb', '--from', image)).exitCode).toBe(0);
    await ds.fsck();
  });

  it('runs through a worker too', async () => {
    const ds = await study();
    const base = await ds.head();
    const config = path.join(path.dirname(ds.dir), 'minipach.yml');
    writeFileSync(config, `datasets:\n  - path: ${ds.dir}\nworkers: 1\n`);
    const daemon = await startDaemon(ds.dir, ['--config', config, '--workers', '1'], pm.env);
    try {
      for (let i = 0; i < 240 && (await ds.git('log', '--oneline', `${base}..HEAD`)).split('\n').filter(Boolean).length < 4; i++) await new Promise((r) => setTimeout(r, 500));
    } finally {
      await daemon.stop();
    }
    expect(readFileSync(path.join(ds.dir, 'edges/s2/os'), 'utf8')).toBe('BusyBox\n');
    expect(daemon.output()).toMatch(/edges\/s1: try 1/);
  }, 180_000);
});
