/**
 * offsite-network: a network (test/helpers/network.ts) whose nodes copy
 * snapshots off-node to one s3rver bucket (test/helpers/s3.ts) under
 * `prefix`, with a fresh master key. The nodes are child processes: they
 * take the S3 credentials from this process's environment, which close()
 * restores.
 */
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { tempDir } from '../../src/engine/testing.js';
import { type Network, type NetworkOptions, startNetwork } from './network.js';
import { S3_CREDENTIALS, type S3Server, startS3 } from './s3.js';

export interface OffsiteNetwork {
  readonly net: Network;
  readonly s3: S3Server;
  /** Stops the network and the bucket, removes the key, restores the environment. */
  close(): Promise<void>;
}

export async function startOffsiteNetwork(prefix: string, opts: NetworkOptions = {}): Promise<OffsiteNetwork> {
  const savedEnv = { ...process.env };
  const s3 = await startS3();
  const work = tempDir('kova-net-offsite-');
  let net: Network | null = null;
  const close = async (): Promise<void> => {
    await net?.close();
    await s3.close();
    fs.rmSync(work, { recursive: true, force: true });
    process.env = { ...savedEnv };
  };
  try {
    const keyFile = path.join(work, 'offsite.key');
    fs.writeFileSync(keyFile, randomBytes(32).toString('base64'), { mode: 0o600 });
    process.env.AWS_ACCESS_KEY_ID = S3_CREDENTIALS.accessKeyId;
    process.env.AWS_SECRET_ACCESS_KEY = S3_CREDENTIALS.secretAccessKey;
    process.env.AWS_REGION = 'us-east-1';
    net = await startNetwork({
      replicas: 1,
      nodes: 2,
      ...opts,
      nodeArgs: [
        ...(opts.nodeArgs ?? []),
        '--offsite',
        `s3://${s3.bucket}/${prefix}`,
        '--s3-endpoint',
        s3.endpoint,
        '--offsite-key-file',
        keyFile,
      ],
    });
    return { net, s3, close };
  } catch (err) {
    await close();
    throw err;
  }
}
