#!/usr/bin/env node
// Development only: runs the TypeScript sources through tsx, with no build step (`npm run dev -- plan`).
import { register } from 'tsx/esm/api';

register();
const { main } = await import('../daemon/cli/main.ts');
process.exitCode = await main(process.argv);
