/** One datum's entry in a plan: what will be done with it, and why. */
import type { Datum } from './datums.js';
import type { ResultRecord } from './result-index.js';

export type Action = 'compute' | 'link' | 'skip' | 'remove' | 'blocked';

export interface DatumPlan {
  readonly pipeline: string;
  readonly name: string;
  /** The datum key; for `remove`, the key its outputs had (`` when unknown). */
  readonly key: string;
  readonly action: Action;
  readonly reason: string;
  readonly outputDir: string;
  readonly marker: string;
  /** The datum (absent for `remove`). */
  readonly datum?: Datum;
  /** For `link`: the result to reuse, or the datum computing the same key in this plan. */
  readonly source?: ResultRecord | { readonly pending: DatumPlan };
  /** For `blocked`: the upstream datum at the root of the wait (its label), and whether it failed. */
  readonly waitsOn?: { readonly datum: string; readonly failed: boolean };
}
