/**
 * A private single-node Slurm cluster in a temporary directory, for tests and the bench: its own munge key
 * and socket, its own slurm.conf and ports, `slurmctld` and `slurmd` in the foreground as children of this
 * process (no /etc, no services). Clients find it through SLURM_CONF (see `env`). As ../shared/DESIGN.md
 * describes: accounting off, so `sacct` fails, and jobs stay visible to squeue/scontrol for MinJobAge.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { execa } from 'execa';

export interface SlurmCluster {
  readonly dir: string;
  /** SLURM_CONF for clients (sbatch, squeue, scontrol, scancel). */
  readonly env: Record<string, string>;
  /** Kills slurmd (the node) at once, as a node failure would. */
  killNode(): void;
  /** Starts slurmd again (the node returns). */
  startNode(): Promise<void>;
  /** Every job of the cluster as squeue shows it: `jobid state`. */
  queue(): Promise<string[]>;
  stop(): Promise<void>;
}

const freePort = () =>
  new Promise<number>((resolve, reject) => {
    const s = createServer();
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
    s.on('error', reject);
  });

export async function startSlurmCluster(opts: { cpus?: number } = {}): Promise<SlurmCluster> {
  // munged wants every directory above its socket searchable by all.
  const dir = mkdtempSync(path.join(os.tmpdir(), 'minipach-slurm-'));
  chmodSync(dir, 0o755);
  for (const d of ['munge-key', 'munge-run', 'state', 'spool', 'log']) mkdirSync(path.join(dir, d));
  chmodSync(path.join(dir, 'munge-key'), 0o700);
  chmodSync(path.join(dir, 'munge-run'), 0o755);
  const key = path.join(dir, 'munge-key', 'munge.key');
  const socket = path.join(dir, 'munge-run', 'munge.socket');
  await execa('mungekey', ['-c', '-k', key]);
  const children: ChildProcess[] = [];
  const daemon = (cmd: string, args: string[], log: string): ChildProcess => {
    const out = openSync(path.join(dir, 'log', log), 'a');
    const child = spawn(cmd, args, { stdio: ['ignore', out, out], env: { ...process.env, SLURM_CONF: conf } });
    children.push(child);
    return child;
  };
  const conf = path.join(dir, 'slurm.conf');
  daemon('munged', ['-F', '-f', '--key-file', key, '--socket', socket, '--pid-file', path.join(dir, 'munge-run', 'munged.pid'), '--log-file', path.join(dir, 'log', 'munged.log'), '--seed-file', path.join(dir, 'munge-run', 'seed')], 'munged.out');
  const [ctldPort, dPort] = [await freePort(), await freePort()];
  const cpus = opts.cpus ?? 10;
  writeFileSync(
    conf,
    [
      'ClusterName=minipach-test',
      'SlurmctldHost=localhost',
      `SlurmctldPort=${ctldPort}`,
      `SlurmdPort=${dPort}`,
      'SlurmUser=root',
      'SlurmdUser=root',
      'AuthType=auth/munge',
      'CredType=cred/munge',
      `AuthInfo=socket=${socket}`,
      `StateSaveLocation=${path.join(dir, 'state')}`,
      `SlurmdSpoolDir=${path.join(dir, 'spool')}`,
      `SlurmctldPidFile=${path.join(dir, 'slurmctld.pid')}`,
      `SlurmdPidFile=${path.join(dir, 'slurmd.pid')}`,
      `SlurmctldLogFile=${path.join(dir, 'log', 'slurmctld.log')}`,
      `SlurmdLogFile=${path.join(dir, 'log', 'slurmd.log')}`,
      'ProctrackType=proctrack/linuxproc',
      'TaskPlugin=task/none',
      'SelectType=select/cons_tres',
      'SelectTypeParameters=CR_CPU',
      'AccountingStorageType=accounting_storage/none',
      'JobCompType=jobcomp/filetxt',
      `JobCompLoc=${path.join(dir, 'log', 'jobcomp.txt')}`,
      'MpiDefault=none',
      'ReturnToService=2',
      'MinJobAge=300',
      'SchedulerParameters=batch_sched_delay=0',
      'SlurmdParameters=config_overrides',
      'SlurmdTimeout=10',
      'InactiveLimit=0',
      'KillWait=2',
      `NodeName=localhost NodeAddr=127.0.0.1 CPUs=${cpus} RealMemory=${Math.floor(os.totalmem() / 1048576 / 2)} State=UNKNOWN`,
      'PartitionName=debug Nodes=localhost Default=YES MaxTime=INFINITE State=UP',
      '',
    ].join('\n'),
  );
  const env = { SLURM_CONF: conf };
  await waitFor(async () => (await execa('munge', ['-n', '--socket', socket], { reject: false })).exitCode === 0, 'munged');
  daemon('slurmctld', ['-D', '-i', '-f', conf], 'slurmctld.out');
  let node: ChildProcess | undefined = daemon('slurmd', ['-D', '-N', 'localhost', '-f', conf], 'slurmd.out');
  const idle = async () => /State=(IDLE|MIXED|ALLOCATED)/.test((await execa('scontrol', ['show', 'node', 'localhost'], { env, reject: false })).stdout);
  await waitFor(idle, 'slurmd to register');
  return {
    dir,
    env,
    killNode() {
      node?.kill('SIGKILL');
      node = undefined;
    },
    async startNode() {
      node = daemon('slurmd', ['-D', '-N', 'localhost', '-f', conf], 'slurmd.out');
      await waitFor(idle, 'slurmd to register again');
    },
    async queue() {
      const r = await execa('squeue', ['-h', '--states=all', '-o', '%i %T'], { env, reject: false });
      return r.stdout.split('\n').filter(Boolean);
    },
    async stop() {
      await execa('scancel', ['--full', '-u', os.userInfo().username], { env, reject: false });
      for (const c of children.reverse()) c.kill('SIGKILL');
      await new Promise((r) => setTimeout(r, 200));
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

async function waitFor(check: () => Promise<boolean>, what: string, timeoutMs = 30_000): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (Date.now() < until) {
    if (await check().catch(() => false)) return;
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`the test cluster: timed out waiting for ${what}`);
}

/** The log files of a cluster, for a test that failed. */
export const clusterLogs = (c: SlurmCluster) => ['slurmctld.log', 'slurmd.log'].map((f) => `--- ${f}\n${readFileSync(path.join(c.dir, 'log', f), 'utf8').slice(-3000)}`).join('\n');
