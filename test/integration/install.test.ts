/**
 * An installed minipach works outside the repository: `npm pack` builds dist/ into the package, and the
 * `minipach` bin of a global install runs that compiled JavaScript (no tsx, no sources).
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { execa } from 'execa';
import { afterAll, describe, expect, it } from 'vitest';

const ROOT = new URL('../..', import.meta.url).pathname;

describe('installed with npm', () => {
  const tmp = mkdtempSync(path.join(os.tmpdir(), 'minipach-install-'));
  afterAll(() => rmSync(tmp, { recursive: true, force: true }));

  it('npm pack + npm install -g: the bin runs from anywhere, compiled', async () => {
    // dist/ is built already (the tests' global set-up); packing without scripts keeps `prepare` from
    // rebuilding it under the feet of tests running the CLI at the same time.
    const packed = await execa('npm', ['pack', '--silent', '--ignore-scripts', '--pack-destination', tmp], { cwd: ROOT });
    const tarball = path.join(tmp, packed.stdout.trim().split('\n').pop()!);
    const listing = (await execa('tar', ['-tzf', tarball])).stdout.split('\n');
    expect(listing).toContain('package/dist/daemon/cli/main.js');
    expect(listing.some((f) => f.startsWith('package/daemon/'))).toBe(false);
    const prefix = path.join(tmp, 'prefix');
    // The packages' tarballs are in npm's cache already (npm ci put them there); metadata may come from the registry.
    await execa('npm', ['install', '-g', '--prefix', prefix, '--prefer-offline', '--no-audit', '--no-fund', tarball], { cwd: tmp });
    const installed = path.join(prefix, 'lib/node_modules/minipach');
    expect(readFileSync(path.join(installed, 'package.json'), 'utf8')).not.toMatch(/"tsx"[^}]*"dependencies"/);
    const version = await execa(path.join(prefix, 'bin/minipach'), ['--version'], { cwd: os.tmpdir() });
    expect(version.stdout.trim()).toBe((JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { version: string }).version);
    const help = await execa(path.join(prefix, 'bin/minipach'), ['hooks', '--help'], { cwd: os.tmpdir() });
    expect(help.stdout).toMatch(/Usage: minipach hooks/);
  }, 300_000);
});
