/**
 * The parsers of specs and config, loaded on first use: loading ajv and yaml and compiling a schema cost
 * about 80 ms, which every command, `--help` included, would otherwise pay at start-up.
 */
import { createRequire } from 'node:module';
import type { ValidateFunction } from 'ajv/dist/2020.js';

export type { ErrorObject, ValidateFunction } from 'ajv/dist/2020.js';

const require = createRequire(import.meta.url);

/**
 * A validator for `schema`, made the first time it is called for: the one `npm run build` compiled to
 * `validators/<name>.cjs` beside this module (scripts/compile-validators.mjs; loading it costs a few ms),
 * else compiled now with ajv (about 80 ms; the sources run through tsx in development and tests).
 */
export function lazyValidator(name: ValidatorName, schema: object): () => ValidateFunction {
  let compiled: ValidateFunction | undefined;
  return () => (compiled ??= precompiled(name) ?? compile(name, schema));
}

/** The validators minipach has, with their ajv options (the build compiles each with the same). */
export const VALIDATORS = { spec: { verbose: true }, config: { verbose: false } } as const;
export type ValidatorName = keyof typeof VALIDATORS;

function precompiled(name: ValidatorName): ValidateFunction | undefined {
  try {
    return require(`./validators/${name}.cjs`) as ValidateFunction;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'MODULE_NOT_FOUND') return undefined;
    throw e;
  }
}

/** Compiles a validator with ajv, as the build does. */
function compile(name: ValidatorName, schema: object): ValidateFunction {
  const Ajv = (require('ajv/dist/2020.js') as typeof import('ajv/dist/2020.js')).default;
  return new Ajv(ajvOptions(name)).compile(schema);
}

/** The ajv options of a validator; `source` when the build writes it out as code. */
export const ajvOptions = (name: ValidatorName, source = false) => ({ allErrors: false, strict: false, verbose: VALIDATORS[name].verbose, ...(source ? { code: { source: true } } : {}) });

/** The yaml module, loaded the first time it is needed. */
export const yaml = (): typeof import('yaml') => require('yaml') as typeof import('yaml');
