import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync, mkdirSync, existsSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { buildCommand, clearOutputCommand, datumEnv, escapeForDatalad, expandDataladCommand, shellQuote } from '../../daemon/core/command.js';
import type { Datum } from '../../daemon/core/datums.js';
import { specOf } from '../helpers/fake-tree.js';

const datum = (inputs: { name: string; path: string }[], extra: Partial<Datum> = {}): Datum =>
  ({ name: 'sub-01', inputs: inputs.map((i) => ({ ...i, files: [] })), ...extra }) as unknown as Datum;

/** Runs a recorded command as datalad would after formatting it (doubled braces undone). */
function runRecorded(cmd: string, cwd: string): string {
  return execFileSync('sh', ['-c', cmd.replace(/\{\{/g, '{').replace(/\}\}/g, '}')], { cwd, encoding: 'utf8' });
}

describe('shellQuote', () => {
  it('leaves plain words alone and single-quotes the rest, quotes included', () => {
    expect(shellQuote('raw/sub-01')).toBe('raw/sub-01');
    expect(shellQuote('a b')).toBe("'a b'");
    expect(shellQuote("it's")).toBe(`'it'\\''s'`);
    expect(execFileSync('sh', ['-c', `printf %s ${shellQuote(`$HOME "x" it's`)}`], { encoding: 'utf8' })).toBe(`$HOME "x" it's`);
  });
});

describe('escapeForDatalad', () => {
  it("doubles literal braces and keeps datalad's own placeholders", () => {
    expect(escapeForDatalad('awk "{print $1}" {inputs} > {outputs[0]}')).toBe('awk "{{print $1}}" {inputs} > {outputs[0]}');
    expect(escapeForDatalad('${X} {pwd} {dspath}')).toBe('${{X}} {pwd} {dspath}');
  });
});

describe('datumEnv', () => {
  it("names inputs both ways, lists a name's several matches, and sets join and group keys", () => {
    const spec = specOf('fs', 'input: { pfs: { repo: raw, glob: "/*" } }\ntransform: { cmd: ["true"], env: { THREADS: "2" } }\n');
    const env = datumEnv(spec, datum([{ name: 'raw', path: 'raw/a' }, { name: 'raw', path: 'raw/b' }], { joinKey: 'k1', groupKey: 'g1' }), 'fs/sub-01');
    expect(env).toMatchObject({ THREADS: '2', MINIPACH_PIPELINE: 'fs', MINIPACH_DATUM: 'sub-01', MINIPACH_OUT: 'fs/sub-01', MINIPACH_IN_raw: 'raw/a raw/b', raw: 'raw/a raw/b', MINIPACH_JOIN_KEY: 'k1', MINIPACH_GROUP_KEY: 'g1' });
  });
});

describe('clearOutputCommand', () => {
  it("empties a datum's directory, and a root datum's without touching spec.yml or .minipach", () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'minipach-cmd-'));
    try {
      mkdirSync(path.join(dir, 'p/.minipach'), { recursive: true });
      mkdirSync(path.join(dir, 'p/old'), { recursive: true });
      for (const f of ['p/spec.yml', 'p/.minipach/root.datum', 'p/old/x', 'p/stale.txt']) writeFileSync(path.join(dir, f), 'x');
      runRecorded(clearOutputCommand('p', 'p'), dir);
      expect(['p/spec.yml', 'p/.minipach/root.datum', 'p/old/x', 'p/stale.txt'].map((f) => existsSync(path.join(dir, f)))).toEqual([true, true, false, false]);
      runRecorded(clearOutputCommand('p/sub 1', 'p'), dir);
      expect(existsSync(path.join(dir, 'p/sub 1'))).toBe(true);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('buildCommand', () => {
  it('is self-contained: run by sh alone it writes the outputs with the concrete values', () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'minipach-cmd-'));
    try {
      mkdirSync(path.join(dir, 'raw/sub-01'), { recursive: true });
      writeFileSync(path.join(dir, 'raw/sub-01/a.txt'), 'hello');
      const spec = specOf('count', 'input: { pfs: { repo: raw, glob: "/*" } }\ntransform: { cmd: [sh, -c], stdin: [\'wc -c < "$MINIPACH_IN_raw/a.txt" > "$MINIPACH_OUT/n"; echo "{$THREADS}" > "$MINIPACH_OUT/t"\'], env: { THREADS: "2" } }\n');
      const cmd = buildCommand(spec, datum([{ name: 'raw', path: 'raw/sub-01' }]), 'count/sub-01');
      // The values are written into the command: no minipach variable need be set when it is replayed.
      expect(cmd).toContain('MINIPACH_OUT=count/sub-01');
      runRecorded(cmd, dir);
      expect(readFileSync(path.join(dir, 'count/sub-01/n'), 'utf8').trim()).toBe('5');
      expect(readFileSync(path.join(dir, 'count/sub-01/t'), 'utf8').trim()).toBe('{2}');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('feeds stdin as a here-document when the command does not end in -c, whatever the script holds', () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'minipach-cmd-'));
    try {
      const spec = specOf('p', 'input: { pfs: { repo: raw, glob: "/" } }\ntransform: { cmd: [sh], stdin: ["echo MINIPACH_STDIN > \\"$MINIPACH_OUT/o\\""] }\n');
      const cmd = buildCommand(spec, datum([{ name: 'raw', path: 'raw' }]), 'p/x');
      expect(cmd).toContain("<<'MINIPACH_STDIN_'");
      runRecorded(cmd, dir);
      expect(readFileSync(path.join(dir, 'p/x/o'), 'utf8').trim()).toBe('MINIPACH_STDIN');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('expandDataladCommand', () => {
  it("fills datalad's placeholders as datalad run does, and undoes the doubled braces", () => {
    const s = { inputs: ['raw/a b', 'code/x.sh'], outputs: ['out/d'], pwd: '/ds', dspath: '/ds' };
    expect(expandDataladCommand('cat {inputs} > {outputs[0]}/all; awk "{{print $1}}" {inputs[1]} {pwd}', s)).toBe(`cat 'raw/a b' code/x.sh > out/d/all; awk "{print $1}" code/x.sh /ds`);
    // Round trip: what buildCommand escapes comes back as written.
    const raw = 'echo "${X}" {} {{}} >"$MINIPACH_OUT/o"';
    expect(expandDataladCommand(escapeForDatalad(raw), s)).toBe(raw);
  });
});
