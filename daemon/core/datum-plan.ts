/** One datum's entry in a plan: what will be done with it, and why. */
import type { Datum } from './datums.js';
import { markerPath, outputDir } from './identity.js';
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

/**
 * One datum's plan. A plan holds 10^5 of them: its output directory and marker path are derived when asked
 * (from the pipeline and datum name) rather than kept as two more strings each; the marker's path is kept
 * only when the tree has one, as the snapshot's own string.
 */
export class PlannedDatum implements DatumPlan {
  constructor(
    readonly pipeline: string,
    readonly datum: Datum,
    readonly key: string,
    private readonly markerFound: string | undefined,
    readonly action: DatumPlan['action'],
    readonly reason: string,
    readonly source?: DatumPlan['source'],
    readonly waitsOn?: DatumPlan['waitsOn'],
  ) {}

  get name(): string {
    return this.datum.name;
  }

  get outputDir(): string {
    return outputDir(this.pipeline, this.datum.name);
  }

  get marker(): string {
    return this.markerFound ?? markerPath(this.pipeline, this.datum.name);
  }

  /** As JSON, the fields a literal DatumPlan has (getters are not own properties). */
  toJSON(): DatumPlan {
    const { pipeline, name, key, action, reason, outputDir, marker, datum, source, waitsOn } = this;
    return { pipeline, name, key, action, reason, outputDir, marker, datum, source, waitsOn };
  }
}
