/**
 * Event identities seen recently, in Redis, so that a replayed webhook delivery is recognised. With Redis
 * away nothing is deduplicated: scheduling is idempotent anyway, so a replay costs one plan.
 */
import { createHash } from 'node:crypto';
import { Redis } from 'ioredis';
import type { RedisConnection } from '../adapters/redis.js';

/** How long an event is remembered. */
const TTL_SECONDS = 7 * 24 * 3600;

export class Sightings {
  private readonly redis: Redis;

  constructor(connection: RedisConnection, private readonly prefix: string) {
    this.redis = new Redis({ ...connection, maxRetriesPerRequest: 2, lazyConnect: true });
    this.redis.on('error', () => undefined);
  }

  /** Remembers an event's identity; false when it was seen already (a replayed delivery). */
  async first(identity: string): Promise<boolean> {
    try {
      if (this.redis.status === 'wait') await this.redis.connect();
      return (await this.redis.set(this.key(identity), '1', 'EX', TTL_SECONDS, 'NX')) === 'OK';
    } catch {
      return true;
    }
  }

  /** Forgets an identity (the event was not stored after all: its redelivery is no duplicate). */
  async forget(identity: string): Promise<void> {
    await this.redis.del(this.key(identity)).catch(() => undefined);
  }

  close(): void {
    this.redis.disconnect();
  }

  private key(identity: string): string {
    return `${this.prefix}:events:seen:${createHash('sha256').update(identity).digest('hex')}`;
  }
}
