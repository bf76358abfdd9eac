// Writes specs/spec.schema.json from the one source of truth, daemon/core/spec-schema.ts.
import { writeFileSync } from 'node:fs';
import { SPEC_SCHEMA } from '../daemon/core/spec-schema.js';

writeFileSync(new URL('../specs/spec.schema.json', import.meta.url), JSON.stringify(SPEC_SCHEMA, null, 2) + '\n');
