#!/usr/bin/env node
// The installed command runs the compiled JavaScript in dist/ (built by `npm ci`, `npm run build` and
// `npm pack`); the TypeScript sources run through tsx only in development (`npm run dev -- ...`) and tests.
import { existsSync } from 'node:fs';

const entry = new URL('../dist/daemon/cli/main.js', import.meta.url);
if (!existsSync(entry)) {
  process.stderr.write('minipach: not built yet (no dist/): run `npm run build` in ' + new URL('..', import.meta.url).pathname + '\n');
  process.exit(2);
}
const { main } = await import(entry.href);
process.exitCode = await main(process.argv);
