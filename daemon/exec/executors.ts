/**
 * How a datum's command runs: natively (the default), by `datalad run` itself, or natively in Slurm array
 * tasks (exec/slurm.ts). Kept apart so that the CLI and the config name executors without loading them.
 */
export type ExecutorName = 'native' | 'datalad' | 'slurm';
export const EXECUTORS: readonly ExecutorName[] = ['native', 'datalad', 'slurm'];

/** The most datums a native batch (one scratch checkout) holds by default, in-process and on a worker. */
export const DEFAULT_BATCH_SIZE = 50;

/** How the Slurm executor submits (exec/slurm.ts): the daemon's `slurm:` block, or `schedule`'s options. */
export interface SlurmSettings {
  /** Datums one array task runs. @defaultValue 50 */
  readonly batchSize: number;
  /** The array's `%` limit: its tasks running at once. @defaultValue none */
  readonly maxRunning?: number;
  /** The most tasks in one array job. @defaultValue 1000 */
  readonly maxArray: number;
  /** The most of minipach's tasks queued or running at once (a site's cap on jobs per user). @defaultValue 500 */
  readonly maxQueued: number;
  /** The dataset is at the same path on the nodes (a shared file system): tasks work in it, nothing is copied. */
  readonly sharedFs: boolean;
  /** The Slurm commands (a site's wrappers). @defaultValue sbatch, squeue, scancel */
  readonly clients?: { readonly sbatch?: string; readonly squeue?: string; readonly scancel?: string };
  /** How a node starts minipach. @defaultValue this node binary and this installation's bin/minipach.js */
  readonly minipach?: readonly string[];
  /** Where a task's own output goes (sbatch --output; %A job, %a task). @defaultValue /tmp/minipach-%A_%a.log, on the node */
  readonly output?: string;
  /** How often reports are read, in milliseconds. @defaultValue 1000 */
  readonly pollMs?: number;
  /**
   * How often a running task reports even with nothing new, in milliseconds; silent for four of them while
   * Slurm shows it RUNNING, it is cancelled and its datums run again. @defaultValue 30000 (MINIPACH_SLURM_HEARTBEAT_MS)
   */
  readonly heartbeatMs?: number;
}

export const DEFAULT_SLURM: SlurmSettings = { batchSize: DEFAULT_BATCH_SIZE, maxArray: 1000, maxQueued: 500, sharedFs: false };
