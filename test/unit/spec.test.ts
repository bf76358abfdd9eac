import { readdirSync, readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { loadSpec } from '../../daemon/core/spec.js';
import { SPEC_SCHEMA } from '../../daemon/core/spec-schema.js';
import { SpecError } from '../../daemon/core/errors.js';

const err = (yaml: string): SpecError => {
  const r = loadSpec('fs/spec.yml', yaml);
  if (!(r instanceof SpecError)) throw new Error('expected a SpecError');
  return r;
};

describe('spec.yml', () => {
  it('loads the DESIGN.md example, snake_case and camelCase alike', () => {
    const yaml = `description: cortical reconstruction per subject
input:
  join:
    - pfs: { repo: raw/t1, glob: "/(sub-*)", join_on: "$1" }
    - pfs: { repo: raw/t2, glob: "/(sub-*)", joinOn: "$1", outerJoin: true }
transform:
  cmd: [sh, -c]
  stdin:
    - recon "$MINIPACH_IN_t1" "$MINIPACH_IN_t2" "$MINIPACH_OUT"
  code: [code/recon.sh]
  env: { THREADS: "2" }
  image: null
datum_tries: 3
datum_timeout: 2h
`;
    const s = loadSpec('fs/spec.yml', yaml);
    if (s instanceof SpecError) throw s;
    expect(s.name).toBe('fs');
    expect(s.datumTimeout).toBe(7200);
    expect(s.transform.code).toEqual(['code/recon.sh']);
    expect(s.input.kind).toBe('join');
    if (s.input.kind !== 'join') return;
    expect(s.input.inputs.map((i) => i.kind === 'pfs' && [i.name, i.joinOn, i.outerJoin])).toEqual([['t1', '$1', false], ['t2', '$1', true]]);
  });

  it('loads the Pachyderm example specs as they are (JSON is YAML)', () => {
    const dir = new URL('../../../shared/fixtures/pachyderm-specs/', import.meta.url);
    const names = readdirSync(dir);
    expect(names.length).toBeGreaterThanOrEqual(4);
    for (const f of names) {
      const s = loadSpec(`${f.replace('.json', '')}/spec.yml`, readFileSync(new URL(f, dir), 'utf8'));
      expect(s, f).not.toBeInstanceOf(SpecError);
    }
  });

  it('names file, line, field and a hint for an unknown field', () => {
    const e = err('input:\n  pfs: { repo: raw, glob: "/*" }\ntransform:\n  cmd: [sh]\n  comand: [x]\n');
    expect(e.file).toBe('fs/spec.yml');
    expect(e.line).toBe(5);
    expect(e.field).toBe('transform.comand');
    expect(e.message).toMatch(/^fs\/spec.yml:5 transform.comand: unknown field "comand" \(accepted here: cmd, stdin, env, code, image\)$/);
  });

  it('gives a YAML syntax error its line and column, and says what was expected', () => {
    const e = err('input:\n  pfs: { repo: raw, glob: "/*"\ntransform: { cmd: [sh] }\n');
    expect([e.line, e.column]).toEqual([3, 1]);
    expect(e.message).toMatch(/^fs\/spec.yml:3:1: invalid YAML: .*end with a \}; the line reads: transform: \{ cmd: \[sh\] \}/);
    const quote = err('input:\n  pfs:\n    repo: "raw\n');
    expect(quote.message).toMatch(/^fs\/spec.yml:\d+:\d+: invalid YAML: Missing closing "quote/);
  });

  it('explains a glob without a leading slash, on its line', () => {
    const e = err('input:\n  pfs:\n    repo: raw\n    glob: "sub-*"\ntransform: { cmd: [sh] }\n');
    expect(e.message).toBe('fs/spec.yml:4 input.pfs.glob: "sub-*" must start with "/" (did you mean "/sub-*"?)');
  });

  it('refuses paths that escape the dataset', () => {
    expect(err('input: { pfs: { repo: ../secrets, glob: "/*" } }\ntransform: { cmd: [sh] }\n').message).toMatch(/input.pfs.repo: "..\/secrets" escapes the dataset/);
    expect(err('input: { pfs: { repo: raw, glob: "/*" } }\ntransform: { cmd: [sh], code: [/etc/passwd] }\n').field).toBe('transform.code[0]');
  });

  it('reports missing fields, wrong types, bad YAML and capture references', () => {
    expect(err('input: { pfs: { repo: raw, glob: "/*" } }\n').field).toBe('transform');
    expect(err('input: { pfs: { repo: raw, glob: "/*" } }\ntransform: { cmd: "sh -c x" }\n').message).toMatch(/transform.cmd: must be array \(write cmd as a list/);
    expect(err('input: { pfs: { repo: raw, glob: "/*" }\n').message).toMatch(/invalid YAML/);
    const e = err('input:\n  join:\n    - pfs: { repo: a, glob: "/(*)/(*)", join_on: "$3" }\n    - pfs: { repo: b, glob: "/(*)", join_on: "$1" }\ntransform: { cmd: [sh] }\n');
    expect(e.field).toBe('input.join[0].pfs.join_on');
    expect(e.line).toBe(3);
    expect(e.message).toMatch(/refers to \$3 but the glob has 2 capture groups/);
    expect(err('input: { pfs: { repo: raw, glob: "/*", join_on: "$1", joinOn: "$1" } }\ntransform: { cmd: [sh] }\n').message).toMatch(/given both/);
  });

  it('publishes the schema it validates with', () => {
    const published = JSON.parse(readFileSync(new URL('../../specs/spec.schema.json', import.meta.url), 'utf8'));
    expect(published).toEqual(JSON.parse(JSON.stringify(SPEC_SCHEMA)));
  });
});

describe('the validators the build compiles', () => {
  it('judge specs as ajv compiling the schema at run time does, with the same first error', async () => {
    const { createRequire } = await import('node:module');
    const { parse } = await import('yaml');
    const { ajvOptions } = await import('../../daemon/core/lazy-parsers.js');
    const require = createRequire(import.meta.url);
    const Ajv = (require('ajv/dist/2020.js') as typeof import('ajv/dist/2020.js')).default;
    const built = require('../../dist/daemon/core/validators/spec.cjs') as (x: unknown) => boolean;
    const runtime = new Ajv(ajvOptions('spec')).compile(SPEC_SCHEMA);
    const examples = readdirSync(new URL('../../specs/examples/', import.meta.url)).map((d) => parse(readFileSync(new URL(`../../specs/examples/${d}/spec.yml`, import.meta.url), 'utf8')) as unknown);
    const bad = [{}, { input: { pfs: { repo: 'raw', glob: 3 } }, transform: { cmd: ['x'] } }, { input: { pfs: { repo: 'raw', glob: '/*' } }, transform: { cmd: 'x' }, datum_tries: -1 }, { input: { cross: [] }, transform: { cmd: ['x'] } }];
    expect(examples.length).toBeGreaterThan(0);
    for (const spec of [...examples, ...bad]) {
      const ok = built(spec);
      expect(ok).toBe(examples.includes(spec));
      expect(runtime(spec)).toBe(ok);
      const strip = (e: unknown) => JSON.parse(JSON.stringify(e)) as unknown;
      expect(strip((built as unknown as { errors: unknown }).errors ?? null)).toEqual(strip(runtime.errors ?? null));
    }
  });
});
