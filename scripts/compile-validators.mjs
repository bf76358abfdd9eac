// Part of `npm run build`: compiles the JSON Schemas of spec.yml and the daemon's config to standalone
// validator code in dist/daemon/core/validators/, so a command loads them instead of compiling them with
// ajv at start (about 80 ms). The same schemas and options as the runtime fallback (core/lazy-parsers.ts).
import { mkdirSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
const Ajv = require('ajv/dist/2020.js').default;
const standaloneCode = require('ajv/dist/standalone').default;
const dist = new URL('../dist/daemon/', import.meta.url);
const { ajvOptions } = await import(new URL('core/lazy-parsers.js', dist).href);
const { SPEC_SCHEMA } = await import(new URL('core/spec-schema.js', dist).href);
const { CONFIG_SCHEMA } = await import(new URL('server/config.js', dist).href);

const out = new URL('core/validators/', dist);
mkdirSync(out, { recursive: true });
for (const [name, schema] of Object.entries({ spec: SPEC_SCHEMA, config: CONFIG_SCHEMA })) {
  const ajv = new Ajv(ajvOptions(name, true));
  writeFileSync(new URL(`${name}.cjs`, out), standaloneCode(ajv, ajv.compile(schema)));
}
