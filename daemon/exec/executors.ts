/** How a datum's command runs: natively (the default), or by `datalad run` itself. Kept apart so that the
 * CLI and the config name executors without loading them. */
export type ExecutorName = 'native' | 'datalad';
export const EXECUTORS: readonly ExecutorName[] = ['native', 'datalad'];

/** Datums of one native batch a worker gathers by default (as many as an in-process batch). */
export const DEFAULT_WORKER_BATCH = 50;
