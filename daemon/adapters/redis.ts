/**
 * Redis for the queue: connection options from a URL, a reachability check that fails with an actionable
 * message, and the embedded default, a private `redis-server` on a unix socket in the daemon's state dir
 * (AOF on and fsynced on every write, never evicting), so one command works on a laptop.
 */
import { spawn } from 'node:child_process';
import { mkdir, open, readFile, rm } from 'node:fs/promises';
import path from 'node:path';
import { Redis, type RedisOptions } from 'ioredis';
import { isAlive } from './process.js';
import { MinipachError } from '../core/errors.js';

/** How to reach Redis: ioredis's options, as built from a URL by redisOptions. */
export type RedisConnection = RedisOptions;

export class RedisUnreachableError extends MinipachError {
  override name = 'RedisUnreachableError';
  constructor(readonly url: string, cause: string) {
    super(
      `cannot reach Redis at ${url} (${cause}). Start it (e.g. redis-server), or point REDIS_URL at a running one; ` +
        `without REDIS_URL, "minipach up" starts a private redis-server of its own and workers find it through the dataset.`,
    );
  }
}

/** ioredis options for `redis://[user:pass@]host:port/db`, `rediss://...` or `unix:///path/to/socket`. */
export function redisOptions(url: string): RedisOptions {
  if (url.startsWith('/')) return { path: url };
  const u = new URL(url);
  if (u.protocol === 'unix:' || u.protocol === 'redis+unix:') return { path: decodeURIComponent(u.pathname) };
  if (u.protocol !== 'redis:' && u.protocol !== 'rediss:') throw new MinipachError(`REDIS_URL "${url}" is not a redis://, rediss:// or unix:// URL`);
  return {
    host: u.hostname || '127.0.0.1',
    port: u.port ? Number(u.port) : 6379,
    username: u.username ? decodeURIComponent(u.username) : undefined,
    password: u.password ? decodeURIComponent(u.password) : undefined,
    db: u.pathname.length > 1 ? Number(u.pathname.slice(1)) : 0,
    ...(u.protocol === 'rediss:' ? { tls: {} } : {}),
  };
}

/** Pings Redis once, within `timeoutMs`; throws RedisUnreachableError instead of retrying forever. */
export async function checkRedis(url: string, timeoutMs = 3000): Promise<void> {
  const client = new Redis({ ...redisOptions(url), lazyConnect: true, maxRetriesPerRequest: 0, connectTimeout: timeoutMs, retryStrategy: () => null, enableOfflineQueue: false });
  // The connection error event says why (ECONNREFUSED, ENOENT...); connect() itself only says "closed".
  let cause: NodeJS.ErrnoException | undefined;
  client.on('error', (e: NodeJS.ErrnoException) => (cause ??= e));
  try {
    await client.connect();
    await client.ping();
  } catch (e) {
    const err = cause ?? (e as NodeJS.ErrnoException);
    throw new RedisUnreachableError(url, err.code ?? err.message);
  } finally {
    client.disconnect();
  }
}

export interface EmbeddedRedis {
  readonly url: string;
  stop(): Promise<void>;
}

/**
 * Starts (or adopts, after a crash of the daemon that started it) the private redis-server of `stateDir`.
 * It keeps running if the daemon is killed, so jobs and workers go on; the next daemon adopts it.
 */
export async function startEmbeddedRedis(stateDir: string): Promise<EmbeddedRedis> {
  const dir = path.join(stateDir, 'redis');
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const socket = path.join(dir, 'redis.sock');
  const url = `unix://${socket}`;
  if (Buffer.byteLength(socket) > 100) throw new MinipachError(`the state directory ${stateDir} is too deep for a unix socket (${socket}); set state_dir to a shorter path`);
  const pidFile = path.join(dir, 'redis.pid');
  const stop = async () => {
    const pid = Number((await readFile(pidFile, 'utf8').catch(() => '')).trim());
    const client = new Redis({ path: socket, lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
    client.on('error', () => undefined);
    try {
      await client.connect();
      await client.call('SHUTDOWN');
    } catch {
      /* SHUTDOWN closes the connection: an error here is the normal outcome */
    } finally {
      client.disconnect();
    }
    // Wait for it to be gone, so a restart does not find the old socket.
    for (let i = 0; i < 100 && pid && isAlive(pid); i++) await new Promise((r) => setTimeout(r, 50));
  };
  try {
    await checkRedis(url, 500);
    return { url, stop };
  } catch {
    /* none running: start one */
  }
  await rm(socket, { force: true });
  const log = await open(path.join(dir, 'redis.log'), 'a');
  const child = spawn(
    'redis-server',
    [
      '--port', '0',
      '--unixsocket', socket,
      '--unixsocketperm', '700',
      '--dir', dir,
      '--pidfile', pidFile,
      '--appendonly', 'yes',
      // Every write is on disk before it is acknowledged: an acknowledged job or event survives a crash.
      '--appendfsync', 'always',
      '--save', '',
      '--maxmemory-policy', 'noeviction',
    ],
    { stdio: ['ignore', log.fd, log.fd], detached: true },
  );
  child.unref();
  await log.close();
  let spawnError: Error | undefined;
  child.on('error', (e) => (spawnError = e));
  for (let i = 0; i < 100; i++) {
    if (spawnError) throw new MinipachError(`could not start redis-server (${spawnError.message}); install it (apt-get install redis-server) or set REDIS_URL`);
    try {
      await checkRedis(url, 200);
      return { url, stop };
    } catch {
      await new Promise((r) => setTimeout(r, 50));
    }
  }
  throw new MinipachError(`redis-server did not start; see ${path.join(dir, 'redis.log')}`);
}
