/** compose.yaml and the Dockerfile cannot be run here (no Docker engine); this keeps them in step with the code. */
import { existsSync, readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { buildProgram } from '../../daemon/cli/main.js';
import { checkExposure, parseConfig } from '../../daemon/server/config.js';

const root = new URL('../../', import.meta.url).pathname;
const compose = parse(readFileSync(`${root}compose.yaml`, 'utf8')) as {
  services: Record<string, { command?: string[]; environment?: Record<string, string>; volumes?: string[]; build?: string }>;
};

describe('the deployment description', () => {
  it('has Redis, MinIO, Gitea, the daemon and workers', () => {
    expect(Object.keys(compose.services).sort()).toEqual(['daemon', 'gitea', 'minio', 'redis', 'worker']);
    expect(compose.services['redis']!.command).toEqual(expect.arrayContaining(['--appendonly', 'yes', '--maxmemory-policy', 'noeviction']));
    expect(compose.services['minio']!.environment!['MINIO_NOTIFY_WEBHOOK_ENDPOINT_MINIPACH']).toBe('http://daemon:8177/hooks/minio');
  });

  it('runs commands and options the CLI has, with a configuration it accepts', () => {
    const program = buildProgram();
    for (const name of ['daemon', 'worker']) {
      const [cmd, ...args] = compose.services[name]!.command!;
      const sub = program.commands.find((c) => c.name() === cmd);
      expect(sub, `${name}: minipach ${cmd}`).toBeDefined();
      for (const a of args.filter((x) => x.startsWith('--'))) expect(sub!.options.map((o) => o.long), `${name}: ${a}`).toContain(a);
      expect(compose.services[name]!.build).toBe('.');
    }
    const mount = compose.services['daemon']!.volumes!.find((v) => v.endsWith(':/etc/minipach/minipach.yml:ro'))!;
    const file = `${root}${mount.split(':')[0]!.replace(/^\.\//, '')}`;
    const env = compose.services['daemon']!.environment!;
    const raw = parse(readFileSync(file, 'utf8'));
    const config = parseConfig(file, raw, { REDIS_URL: 'redis://redis:6379', MINIPACH_WORKERS: env['MINIPACH_WORKERS']!, MINIPACH_API_TOKEN: 'a-token-of-16-chars-or-more' });
    expect(config).toMatchObject({ redisUrl: 'redis://redis:6379', workers: 0, datasets: [{ name: 'study', remote: 'origin', storage: { remote: 's3' } }], http: { host: '0.0.0.0', token: 'a-token-of-16-chars-or-more' } });
    expect(() => checkExposure(config)).not.toThrow();
    // Without the token the same configuration is refused: it listens beyond loopback.
    expect(() => checkExposure(parseConfig(file, raw, {}))).toThrow(/beyond loopback, without an API token/);
  });

  it('keeps content in MinIO: workers share no volume with the daemon and have the bucket\'s credentials', () => {
    const merged = parse(readFileSync(`${root}compose.yaml`, 'utf8'), { merge: true }) as typeof compose;
    const daemonVolumes = new Set(merged.services['daemon']!.volumes!.map((v) => v.split(':')[0]));
    for (const v of merged.services['worker']!.volumes ?? []) expect(daemonVolumes.has(v.split(':')[0]), v).toBe(false);
    for (const name of ['daemon', 'worker']) {
      expect(merged.services[name]!.environment!['AWS_SECRET_ACCESS_KEY']).toMatch(/^\$\{MINIO_ROOT_PASSWORD:\?/);
      expect(merged.services[name]!.environment!['GIT_CONFIG_KEY_0']).toBe('credential.helper');
    }
  });

  it('has no default secrets: each one must come from the environment', () => {
    const text = readFileSync(`${root}compose.yaml`, 'utf8') + readFileSync(`${root}deploy/minipach.yml`, 'utf8');
    expect(text).not.toMatch(/change-me|minipach-secret/);
    for (const v of ['MINIPACH_GITEA_SECRET', 'MINIPACH_MINIO_TOKEN', 'MINIPACH_API_TOKEN', 'MINIO_ROOT_PASSWORD', 'MINIPACH_GITEA_TOKEN']) expect(text).toMatch(new RegExp(`\\$\\{${v}:\\?`));
    const merged = parse(readFileSync(`${root}compose.yaml`, 'utf8'), { merge: true }) as typeof compose;
    expect(merged.services['daemon']!.environment!['MINIPACH_API_TOKEN']).toMatch(/^\$\{MINIPACH_API_TOKEN:\?/);
  });

  it('builds an image from files that exist', () => {
    const dockerfile = readFileSync(`${root}Dockerfile`, 'utf8');
    for (const m of dockerfile.matchAll(/^COPY (?!--from)(.+) \S+$/gm)) for (const f of m[1]!.split(' ')) expect(existsSync(`${root}${f}`), f).toBe(true);
    // The image runs the compiled JavaScript, built in a stage of its own.
    expect(dockerfile).toMatch(/RUN npm ci --ignore-scripts && npm run build/);
    expect(dockerfile).toMatch(/^COPY --from=build \/src\/dist \.\/dist$/m);
    expect(dockerfile).toMatch(/apt-get install .*git-annex datalad redis-server/);
    expect(dockerfile).toMatch(/ENTRYPOINT .*bin\/minipach\.js/);
  });
});
