/**
 * The parsers of specs and config, loaded on first use: loading ajv and yaml and compiling a schema cost
 * about 80 ms, which every command, `--help` included, would otherwise pay at start-up.
 */
import { createRequire } from 'node:module';
import type { ValidateFunction } from 'ajv/dist/2020.js';

export type { ErrorObject, ValidateFunction } from 'ajv/dist/2020.js';

const require = createRequire(import.meta.url);

/** A validator for `schema`, compiled the first time it is called for. */
export function lazyValidator(schema: object, opts: { verbose?: boolean } = {}): () => ValidateFunction {
  let compiled: ValidateFunction | undefined;
  return () => {
    if (compiled) return compiled;
    const Ajv = (require('ajv/dist/2020.js') as typeof import('ajv/dist/2020.js')).default;
    const validate = new Ajv({ allErrors: false, strict: false, verbose: opts.verbose ?? false }).compile(schema);
    compiled = validate;
    return validate;
  };
}

/** The yaml module, loaded the first time it is needed. */
export const yaml = (): typeof import('yaml') => require('yaml') as typeof import('yaml');
