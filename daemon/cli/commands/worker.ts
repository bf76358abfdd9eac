import { Option, type Command } from 'commander';
import { batchSizeOption, findDaemon, openDataset, parseCount, parsePositive, untilSignal } from '../options.js';
import { UsageError } from '../../core/errors.js';
import { out } from '../printers.js';

interface WorkerFlags {
  concurrency: number;
  batchSize?: number;
  batchWaitMs?: number;
  redis?: string;
  prefix?: string;
  state?: string;
  lockMs?: number;
  credentials?: string;
}

export function register(program: Command): void {
  program
    .command('worker')
    .description("compute datum jobs from the queue (on this or another machine that reaches Redis and the dataset's origin)")
    .argument('[dataset]', 'find the Redis of the daemon serving this dataset (unless --redis or REDIS_URL)', '.')
    .addOption(new Option('--concurrency <n>', 'batches (native) or datums (datalad) run at once').argParser((v) => parsePositive(v, '--concurrency')).default(1))
    .addOption(batchSizeOption())
    .addOption(new Option('--batch-wait-ms <n>', "how long a batch's first datum waits for others").argParser((v) => parseCount(v, '--batch-wait-ms')))
    .option('--redis <url>', 'Redis URL (default: REDIS_URL, else the daemon registered in the dataset)')
    .option('--prefix <name>', 'queue prefix (default: the daemon\'s, else "minipach")')
    .option('--state <dir>', 'where the worker keeps its clones (default: ~/.cache/minipach/worker)')
    .option('--credentials <file>', "S3 credentials for datasets with storage (AWS_ACCESS_KEY_ID=... and AWS_SECRET_ACCESS_KEY=... lines; default: those environment variables)")
    .addOption(new Option('--lock-ms <n>', 'job lock time: how soon the job of a killed worker runs again').argParser((v) => parsePositive(v, '--lock-ms')))
    .action(async (dir: string, o: WorkerFlags) => {
      let url = o.redis ?? process.env['REDIS_URL'];
      let prefix = o.prefix ?? process.env['MINIPACH_QUEUE_PREFIX'];
      if (!url) {
        const reg = await findDaemon(await openDataset(dir));
        if (!reg?.redisUrl) throw new UsageError(`no Redis to take jobs from: no daemon serves ${dir} and neither --redis nor REDIS_URL is set`);
        url = reg.redisUrl;
        prefix ??= reg.queuePrefix;
      }
      if (o.credentials) await (await import('../../adapters/storage.js')).loadCredentialsFile(o.credentials);
      const { checkRedis, redisOptions } = await import('../../adapters/redis.js');
      const { startWorker } = await import('../../exec/worker.js');
      await checkRedis(url);
      const lockMs = o.lockMs ?? (process.env['MINIPACH_LOCK_MS'] ? Number(process.env['MINIPACH_LOCK_MS']) : undefined);
      const log = (m: string) => process.stderr.write(`${new Date().toISOString()} ${m}\n`);
      const worker = await startWorker({ connection: redisOptions(url), prefix, concurrency: o.concurrency, batchSize: o.batchSize, batchWaitMs: o.batchWaitMs, stateDir: o.state, lockDurationMs: lockMs, log });
      out(`minipach worker ${worker.name} taking jobs from ${url}`);
      await untilSignal(async (signal) => {
        process.stderr.write(`minipach worker: ${signal}: finishing the jobs in hand\n`);
        await worker.close();
      });
      process.exit(0);
    });
}
