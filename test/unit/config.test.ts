import { describe, expect, it } from 'vitest';
import { ConfigError, parseConfig } from '../../daemon/server/config.js';

describe('daemon configuration', () => {
  const file = '/etc/minipach/config.yml';

  it('fills defaults and resolves dataset paths against the file', () => {
    const c = parseConfig(file, { datasets: [{ path: 'data/study', branches: ['main'], remote: 'origin' }] }, {});
    expect(c.datasets).toEqual([{ name: 'study', path: '/etc/minipach/data/study', branches: ['main'], remote: 'origin', repository: undefined, executor: 'native', pipelineExecutors: {}, minio: [] }]);
    expect(c).toMatchObject({ queuePrefix: 'minipach', http: { host: '127.0.0.1', port: 8177 }, workers: 1, concurrency: 1, redisUrl: undefined });
    expect(c.slurm).toMatchObject({ batchSize: 50, maxArray: 1000, maxQueued: 500, sharedFs: false });
    const s = parseConfig(file, { datasets: [{ path: '/d', pipelines: { recon: { executor: 'slurm' } } }], slurm: { batch_size: 10, max_running: 4, shared_fs: true, sbatch: '/opt/site/sbatch' } }, {});
    expect(s.datasets[0]!.pipelineExecutors).toEqual({ recon: 'slurm' });
    expect(s.slurm).toMatchObject({ batchSize: 10, maxRunning: 4, sharedFs: true, clients: { sbatch: '/opt/site/sbatch' } });
  });

  it('lets environment variables override the file', () => {
    const c = parseConfig(file, { datasets: [{ path: '/d' }], http: { port: 1 }, secrets: { gitea: 'from-file' } }, {
      REDIS_URL: 'redis://r:6379',
      MINIPACH_HTTP_PORT: '9000',
      MINIPACH_GITEA_SECRET: 'from-env',
      MINIPACH_WORKERS: '0',
    });
    expect(c).toMatchObject({ redisUrl: 'redis://r:6379', http: { port: 9000 }, secrets: { gitea: 'from-env' }, workers: 0 });
  });

  it('names the key of an invalid value', () => {
    const bad = [
      [{ datasets: [{ path: '/d', branchez: ['x'] }] }, /datasets\[0\]\.branchez: unknown key \(known: name, path, branches, remote, repository, executor, pipelines, storage, minio\)/],
      [{ datasets: [] }, /datasets: must NOT have fewer than 1 items/],
      [{ datasets: [{ path: '/d' }], http: { port: 'eighty' } }, /http\.port: must be integer/],
      [{}, /must have required property 'datasets'/],
      [{ datasets: [{ path: '/a/x' }, { path: '/b/x' }] }, /datasets\[1\]\.name: "x" is used twice/],
      [{ datasets: [{ path: '/d', storage: { credentials_file: 'x' } }] }, /datasets\[0\]\.storage: must have required property 'remote'/],
      [{ datasets: [{ path: '/a', storage: { remote: 's3', credentials_file: 'a.env' } }, { path: '/b', storage: { remote: 's3', credentials_file: 'b.env' } }] }, /one set of S3 credentials/],
    ] as const;
    for (const [raw, want] of bad) expect(() => parseConfig(file, raw, {})).toThrow(want);
    expect(() => parseConfig(file, { datasets: [{ path: '/d' }] }, { MINIPACH_HTTP_PORT: 'x' })).toThrow(ConfigError);
  });

  it('reads a dataset\'s storage, with the credentials file relative to the configuration', () => {
    const c = parseConfig(file, { datasets: [{ path: '/d', storage: { remote: 's3', credentials_file: 's3.env' } }, { path: '/e' }] }, {});
    expect(c.datasets[0]!.storage).toEqual({ remote: 's3', credentialsFile: '/etc/minipach/s3.env' });
    expect(c.datasets[1]!.storage).toBeUndefined();
  });
});
