/**
 * The house rules of docs/architecture.md that dependency-cruiser cannot see: files stay a few hundred
 * lines, the CLI's and the server's functions stay short, and git and datalad command lines are built in
 * adapters/ only.
 */
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import ts from 'typescript';
import { describe, expect, it } from 'vitest';

const ROOT = path.resolve(import.meta.dirname, '../../daemon');

function sources(dir = ROOT): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? sources(path.join(dir, e.name)) : e.name.endsWith('.ts') ? [path.join(dir, e.name)] : []));
}

const rel = (f: string) => path.relative(ROOT, f);

/** Every function, method and arrow function of a file with its length in lines. */
function functionLengths(file: string): { name: string; lines: number }[] {
  const text = readFileSync(file, 'utf8');
  const sf = ts.createSourceFile(file, text, ts.ScriptTarget.ES2022, true);
  const out: { name: string; lines: number }[] = [];
  const visit = (node: ts.Node) => {
    if (ts.isFunctionLike(node) && 'body' in node && node.body) {
      const start = sf.getLineAndCharacterOfPosition(node.getStart(sf)).line;
      const end = sf.getLineAndCharacterOfPosition(node.getEnd()).line;
      const name = (node as ts.FunctionDeclaration).name?.getText(sf) ?? `function at line ${start + 1}`;
      out.push({ name: `${rel(file)}:${name}`, lines: end - start + 1 });
    }
    ts.forEachChild(node, visit);
  };
  visit(sf);
  return out;
}

describe('layout', () => {
  it('the daemon folders are the concepts, with no loose files beside them', () => {
    const entries = readdirSync(ROOT, { withFileTypes: true });
    expect(entries.filter((e) => !e.isDirectory()).map((e) => e.name)).toEqual([]);
    expect(entries.map((e) => e.name).sort()).toEqual(['adapters', 'cli', 'core', 'exec', 'queue', 'results', 'schedule', 'server', 'sources', 'ui']);
  });

  it('no file is over 400 lines', () => {
    const long = sources().map((f) => [rel(f), readFileSync(f, 'utf8').split('\n').length] as const).filter(([, n]) => n > 400);
    expect(long).toEqual([]);
  });

  it('no function in cli/ or server/ is over 60 lines', () => {
    const long = sources().filter((f) => /^(cli|server)\//.test(rel(f))).flatMap(functionLengths).filter((f) => f.lines > 60);
    expect(long).toEqual([]);
  });

  it("git and datalad command lines are built only in adapters/", () => {
    const argv = /\[\s*['"](git|datalad)['"]\s*,/;
    const outside = sources().filter((f) => !rel(f).startsWith('adapters/') && argv.test(readFileSync(f, 'utf8'))).map(rel);
    expect(outside).toEqual([]);
  });
});
