/** JSON text written by hand where 10^5 values go through it (datum keys, `plan --json`). */

/** What JSON.stringify escapes in a string: quotes, backslashes, control characters, lone surrogates (any surrogate here). */
const NEEDS_ESCAPE = /["\\\u0000-\u001f\ud800-\udfff]/;

/** JSON.stringify of a string: most names, paths and keys need no escaping, and a test is cheaper than the call. */
export const jsonString = (s: string): string => (NEEDS_ESCAPE.test(s) ? JSON.stringify(s) : '"' + s + '"');
