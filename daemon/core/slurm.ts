/**
 * Slurm, as far as minipach decides anything about it (pure: no processes). A pipeline's resources become
 * the sbatch options of its array tasks, and the state Slurm leaves an array task in becomes its datums'
 * outcome. Which datums a task ran and how each ended, the task reports itself (exec/slurm-task.ts); these
 * states are the fallback for the datums it did not report.
 */
import type { PipelineSpec } from './spec.js';

/** Minutes a task gets beyond its datums' datum_timeout: a clone, getting inputs, handing results in. */
export const TASK_OVERHEAD_MINUTES = 10;

const MiB = 1024 * 1024;

/**
 * The sbatch options of the array tasks of one pipeline, each running up to `datumsPerTask` datums:
 * resources (limits win over requests, as on Kubernetes a limit is what the pod may use), partition, time
 * and the spec's extra options. Fractions of CPUs and MiB are rounded up.
 */
export function sbatchOptions(spec: PipelineSpec, datumsPerTask: number): string[] {
  const { requests, limits, slurm } = spec.resources;
  const out: string[] = [];
  const cpu = Math.max(requests.cpu ?? 0, limits.cpu ?? 0);
  if (cpu) out.push(`--cpus-per-task=${Math.ceil(cpu)}`);
  const memory = limits.memory ?? requests.memory;
  if (memory) out.push(`--mem=${Math.ceil(memory / MiB)}M`);
  const gpu = limits.gpu ?? requests.gpu;
  if (gpu?.number) out.push(`--gres=${gresOf(gpu.type)}:${gpu.number}`);
  if (requests.disk) out.push(`--tmp=${Math.ceil(requests.disk / MiB)}M`);
  if (slurm.partition) out.push(`--partition=${slurm.partition}`);
  const time = slurm.time ?? (spec.datumTimeout ? String(Math.ceil((spec.datumTimeout * datumsPerTask) / 60) + TASK_OVERHEAD_MINUTES) : undefined);
  if (time) out.push(`--time=${time}`);
  return [...out, ...slurm.options];
}

/** Kubernetes names GPUs by resource (`nvidia.com/gpu`), Slurm by gres (`gpu`, `gpu:a100`). */
function gresOf(type: string | undefined): string {
  return !type || type.includes('/') ? 'gpu' : `gpu:${type}`;
}

/** States after which an array task runs no more. */
const ENDED = new Set(['COMPLETED', 'FAILED', 'TIMEOUT', 'OUT_OF_MEMORY', 'NODE_FAIL', 'PREEMPTED', 'BOOT_FAIL', 'CANCELLED', 'DEADLINE', 'REVOKED', 'SPECIAL_EXIT']);

export const hasEnded = (state: string): boolean => ENDED.has(state);

/**
 * What an ended task means for the datums it did not report: `again` (the node failed or the task was
 * preempted: not the datum's fault, it runs again without counting a try, as with a killed worker) or
 * `failed` (a try of the datum failed; it is retried while it has tries).
 */
export function endedTask(state: string, reason: string, task: string): { readonly again: boolean; readonly reason: string; readonly timedOut?: boolean } {
  const why = reason && reason !== 'None' ? ` (${reason})` : '';
  switch (state) {
    case 'NODE_FAIL':
    case 'BOOT_FAIL':
      return { again: true, reason: `its node failed (Slurm ${state}, task ${task})` };
    case 'PREEMPTED':
      return { again: true, reason: `preempted (Slurm task ${task})` };
    case 'TIMEOUT':
      return { again: false, reason: `the Slurm task ${task} ran past its time limit (TIMEOUT); raise slurm.time or datum_timeout`, timedOut: true };
    case 'OUT_OF_MEMORY':
      return { again: false, reason: `the Slurm task ${task} ran out of memory (OUT_OF_MEMORY); raise resource_limits.memory` };
    case 'CANCELLED':
      return { again: false, reason: `the Slurm task ${task} was cancelled${why}` };
    case 'COMPLETED':
      return { again: false, reason: `the Slurm task ${task} ended without reporting this datum (see its Slurm output)` };
    default:
      return { again: false, reason: `the Slurm task ${task} ended ${state}${why}` };
  }
}
