/**
 * An S3 server of the test's own (s3rver, from npm) behind a TCP relay that can refuse connections: the
 * way to take a bucket "down" (killing s3rver mid-upload would leave a truncated object it then serves as
 * whole; see ../shared/DESIGN.md). Clients use `endpoint` (the relay); `directEndpoint` reaches s3rver
 * itself, for checks made while the relay is down.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { Client as MinioClient } from 'minio';
import S3rver from 's3rver';

/** s3rver's own credentials; with v4 signatures it checks only the access key id. */
export const S3_CREDENTIALS = { AWS_ACCESS_KEY_ID: 'S3RVER', AWS_SECRET_ACCESS_KEY: 'S3RVER' };

export interface TestS3 {
  readonly endpoint: string;
  readonly directEndpoint: string;
  /** A client of s3rver itself (not through the relay). */
  readonly client: MinioClient;
  /** Refuse connections (and cut the open ones) until up(). */
  down(): Promise<void>;
  up(): Promise<void>;
  stop(): Promise<void>;
}

export async function startS3(buckets: readonly string[]): Promise<TestS3> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'minipach-s3-'));
  const s3 = new S3rver({ port: 0, address: '127.0.0.1', silent: true, directory: dir, configureBuckets: buckets.map((name) => ({ name, configs: [] })) });
  const { port: s3port } = (await s3.run()) as { port: number };
  const sockets = new Set<net.Socket>();
  let relay: net.Server | undefined;
  let port = 0;
  const up = async () => {
    relay = net.createServer((inbound) => {
      const outbound = net.connect(s3port, '127.0.0.1');
      sockets.add(inbound).add(outbound);
      inbound.pipe(outbound).pipe(inbound);
      const close = () => {
        inbound.destroy();
        outbound.destroy();
        sockets.delete(inbound);
        sockets.delete(outbound);
      };
      inbound.on('error', close).on('close', close);
      outbound.on('error', close).on('close', close);
    });
    await new Promise<void>((res, rej) => relay!.once('error', rej).listen(port, '127.0.0.1', () => res()));
    port = (relay.address() as net.AddressInfo).port;
  };
  const down = async () => {
    const r = relay;
    relay = undefined;
    for (const s of sockets) s.destroy();
    sockets.clear();
    if (r) await new Promise<void>((res) => r.close(() => res()));
  };
  await up();
  return {
    endpoint: `http://127.0.0.1:${port}`,
    directEndpoint: `http://127.0.0.1:${s3port}`,
    client: new MinioClient({ endPoint: '127.0.0.1', port: s3port, useSSL: false, accessKey: 'S3RVER', secretKey: 'S3RVER', pathStyle: true }),
    down,
    up,
    async stop() {
      await down();
      await s3.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Whether the bucket holds an object. */
export async function inBucket(client: MinioClient, bucket: string, name: string): Promise<boolean> {
  try {
    await client.statObject(bucket, name);
    return true;
  } catch (e) {
    if ((e as { code?: string }).code === 'NotFound' || (e as { code?: string }).code === 'NoSuchKey') return false;
    throw e;
  }
}
