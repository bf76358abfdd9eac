/**
 * How a datum's command runs: natively (the default), by `datalad run` itself, or natively in Slurm array
 * tasks (exec/slurm.ts). Kept apart so that the CLI and the config name executors without loading them.
 */
export type ExecutorName = 'native' | 'datalad' | 'slurm';
export const EXECUTORS: readonly ExecutorName[] = ['native', 'datalad', 'slurm'];

/** The most datums a native batch (one scratch checkout) holds by default, in-process and on a worker. */
export const DEFAULT_BATCH_SIZE = 50;
