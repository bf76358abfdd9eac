/**
 * The dashboard's page, served by the daemon (assets under /ui/), and the same page as one self-contained
 * HTML file (`minipach report`): every script and style inlined, the overviews embedded as data, so it opens
 * from disk with no network. The page itself is web/ (index.html, app.js, app.css); its libraries come from
 * their npm packages: dagre lays out graphs, Tabulator makes tables, Chart.js draws charts.
 */
import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import path from 'node:path';
import { existsSync } from 'node:fs';
import { installedFile } from '../adapters/install-dir.js';
import type { DatasetOverview } from '../core/overview.js';

/** The libraries the page loads, by the name it asks for them under /ui/lib/. */
const LIBRARIES: Readonly<Record<string, readonly [pkg: string, file: string]>> = {
  'dagre.min.js': ['@dagrejs/dagre', 'dist/dagre.min.js'],
  'tabulator.min.js': ['tabulator-tables', 'dist/js/tabulator.min.js'],
  'tabulator.min.css': ['tabulator-tables', 'dist/css/tabulator_simple.min.css'],
  'chart.umd.min.js': ['chart.js', 'dist/chart.umd.min.js'],
};
const SCRIPTS = ['lib/dagre.min.js', 'lib/tabulator.min.js', 'lib/chart.umd.min.js', 'app.js'];
const STYLES = ['lib/tabulator.min.css', 'app.css'];
/** The page's own files (web/). */
const WEB_FILES = new Set(['app.js', 'app.css', 'index.html']);

const require = createRequire(import.meta.url);

/** The directory of an installed package (its entry resolved, then up to its package.json). */
function packageDir(pkg: string): string {
  for (let dir = path.dirname(require.resolve(pkg)); ; dir = path.dirname(dir)) {
    if (existsSync(path.join(dir, 'package.json')) && path.basename(dir) === pkg.split('/').pop()) return dir;
    if (path.dirname(dir) === dir) throw new Error(`the package ${pkg} has no package.json above its entry`);
  }
}

/**
 * The file behind `/ui/<name>`: one of the page's files or a library's, or undefined (a request never names a
 * path of its own: only these names are served).
 */
export function assetFile(name: string): string | undefined {
  if (WEB_FILES.has(name)) return installedFile(path.join('web', name));
  const lib = name.startsWith('lib/') ? LIBRARIES[name.slice(4)] : undefined;
  return lib && path.join(packageDir(lib[0]), lib[1]);
}

const template = () => readFile(installedFile('web/index.html'), 'utf8');

/** The page as the daemon serves it: assets by URL, data from the API. */
export async function livePage(): Promise<string> {
  return (await template())
    .replace('<!--ASSETS-->', STYLES.map((s) => `<link rel="stylesheet" href="/ui/${s}">`).join('\n'))
    .replace('<!--DATA-->', '<script>window.MINIPACH = { mode: "live" };</script>')
    .replace('<!--SCRIPTS-->', SCRIPTS.map((s) => `<script src="/ui/${s}"></script>`).join('\n'));
}

/** The page as one file: everything inline, the overviews embedded. */
export async function reportPage(overviews: readonly DatasetOverview[], meta: { generatedAt: string; version: string }): Promise<string> {
  const text = (name: string) => readFile(assetFile(name)!, 'utf8');
  const styles = await Promise.all(STYLES.map(text));
  const scripts = await Promise.all(SCRIPTS.map(text));
  const data = { mode: 'report', overviews, ...meta };
  return (await template())
    .replace('<title>minipach</title>', `<title>minipach report: ${overviews.map((o) => `${o.dataset} ${o.branch}`).join(', ')}</title>`)
    .replace('<!--ASSETS-->', () => styles.map((s) => `<style>\n${s.replace(/<\/style/gi, '<\\/style')}\n</style>`).join('\n'))
    .replace('<!--DATA-->', () => `<script>window.MINIPACH = ${inlineJson(data)};</script>`)
    .replace('<!--SCRIPTS-->', () => scripts.map((s) => `<script>\n${s.replace(/<\/script/gi, '<\\/script')}\n</script>`).join('\n'));
}

/** JSON that cannot end the script element it sits in (`<` escaped: still the same JSON). */
const inlineJson = (v: unknown) => JSON.stringify(v).replace(/</g, '\\u003c').replace(/\u2028/g, '\\u2028').replace(/\u2029/g, '\\u2029');

/** The page a browser gets without the token: a prompt for it, and nothing else. */
export function loginPage(problem?: string): string {
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>minipach: sign in</title><link rel="icon" href="data:,">
<style>body{font:15px system-ui,sans-serif;display:grid;place-items:center;height:90vh;background:#f6f7f9}form{background:#fff;border:1px solid #ccc;border-radius:6px;padding:1.5em 2em}input{font:inherit;padding:.3em;width:22em}p.problem{color:#c62828}</style>
</head><body><form method="post" action="/login"><h1>minipach</h1><p>This daemon needs its API token.</p>${problem ? `<p class="problem">${problem}</p>` : ''}
<label>API token <input type="password" name="token" autocomplete="current-password" autofocus></label> <button>Sign in</button></form></body></html>`;
}
