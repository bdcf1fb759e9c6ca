/**
 * exec-stream: runs a command in a container through the Docker Engine API
 * and reads its output.
 *
 * The daemon multiplexes stdout and stderr on one stream: each frame is an
 * 8-byte header (stream type 0/1/2, three zero bytes, payload length as a
 * big-endian uint32) followed by the payload. Frames may be split across
 * chunks in any way. A stream that does not start with a valid header (a TTY
 * stream) is passed through as stdout.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { RuntimeError } from '../types.js';
import type { DockerClient } from './docker-client.js';

export type StreamKind = 'stdin' | 'stdout' | 'stderr';

const HEADER_SIZE = 8;
const KINDS: readonly StreamKind[] = ['stdin', 'stdout', 'stderr'];

export class StreamDemuxer {
  private pending: Buffer = Buffer.alloc(0);
  private raw = false;

  constructor(private readonly onFrame: (kind: StreamKind, payload: Buffer) => void) {}

  push(chunk: Buffer): void {
    if (this.raw) {
      if (chunk.length > 0) this.onFrame('stdout', chunk);
      return;
    }
    let buf = this.pending.length === 0 ? chunk : Buffer.concat([this.pending, chunk]);
    while (buf.length >= HEADER_SIZE) {
      const kind = KINDS[buf[0] ?? 255];
      if (kind === undefined || buf[1] !== 0 || buf[2] !== 0 || buf[3] !== 0) {
        // Not a multiplexed stream: everything from here on is plain output.
        this.raw = true;
        this.pending = Buffer.alloc(0);
        this.onFrame('stdout', buf);
        return;
      }
      const size = buf.readUInt32BE(4);
      if (buf.length < HEADER_SIZE + size) break;
      if (size > 0) this.onFrame(kind, buf.subarray(HEADER_SIZE, HEADER_SIZE + size));
      buf = buf.subarray(HEADER_SIZE + size);
    }
    // Copy the remainder so the caller's chunk can be released.
    this.pending = Buffer.from(buf);
  }

  /** end flushes a truncated last frame (the stream was cut): its bytes are kept as output. */
  end(): void {
    if (this.pending.length > HEADER_SIZE) this.onFrame('stdout', this.pending.subarray(HEADER_SIZE));
    this.pending = Buffer.alloc(0);
  }
}

/** TailBuffer keeps the last `limit` bytes written to it. */
export class TailBuffer {
  private chunks: Buffer[] = [];
  private size = 0;
  private dropped = false;

  constructor(readonly limit: number = 64 * 1024) {}

  push(chunk: Buffer): void {
    if (chunk.length === 0) return;
    this.chunks.push(chunk.length > this.limit ? chunk.subarray(chunk.length - this.limit) : chunk);
    if (chunk.length > this.limit) this.dropped = true;
    this.size += Math.min(chunk.length, this.limit);
    while (this.chunks.length > 1 && this.size - (this.chunks[0]?.length ?? 0) >= this.limit) {
      this.size -= this.chunks.shift()?.length ?? 0;
      this.dropped = true;
    }
  }

  /** Whether older output was discarded. */
  get truncated(): boolean {
    return this.dropped || this.size > this.limit;
  }

  bytes(): Buffer {
    const all = Buffer.concat(this.chunks);
    return all.length > this.limit ? all.subarray(all.length - this.limit) : all;
  }

  /** The kept output as UTF-8, not starting in the middle of a character when cut. */
  text(): string {
    let b = this.bytes();
    if (this.truncated) {
      let skip = 0;
      while (skip < 3 && skip < b.length && ((b[skip] ?? 0) & 0xc0) === 0x80) skip++;
      b = b.subarray(skip);
    }
    return b.toString('utf8');
  }
}

/**
 * collectExecOutput returns a sink for the raw exec stream and a reader of
 * the combined stdout and stderr, truncated to the last `limit` bytes.
 */
export function collectExecOutput(limit = 64 * 1024): { push(chunk: Buffer): void; finish(): string } {
  const tail = new TailBuffer(limit);
  const demux = new StreamDemuxer((kind, payload) => {
    if (kind !== 'stdin') tail.push(payload);
  });
  return {
    push: (chunk) => demux.push(chunk),
    finish: () => {
      demux.end();
      return tail.text();
    },
  };
}

/**
 * runExec runs `cmd` in a running container (exec create, then start
 * attached), collects the combined output (last `limit` bytes) and reads the
 * exit code. Past `timeoutMs` it fails; the command may then still be running
 * in the container, as the Engine API cannot kill an exec.
 */
export async function runExec(
  client: DockerClient,
  containerId: string,
  cmd: readonly string[],
  timeoutMs: number,
  limit = 64 * 1024,
): Promise<{ exitCode: number; output: string }> {
  const deadline = Date.now() + timeoutMs;
  const ex = await client.json<{ Id: string }>('POST', `/containers/${containerId}/exec`, {
    body: { AttachStdin: false, AttachStdout: true, AttachStderr: true, Tty: false, Cmd: [...cmd] },
  });
  if (!ex?.Id) throw new RuntimeError('the daemon returned no exec id');
  const out = collectExecOutput(limit);
  await client
    .request('POST', `/exec/${ex.Id}/start`, { body: { Detach: false, Tty: false }, timeoutMs, onData: (b) => out.push(b) })
    .catch((err: unknown) => {
      if (Date.now() >= deadline) throw new RuntimeError(`timed out after ${timeoutMs} ms (the command may still be running)`, err);
      throw err;
    });
  const output = out.finish();
  // The stream can close a moment before the daemon records the exit code.
  for (;;) {
    const info = await client.json<{ Running: boolean; ExitCode: number | null }>('GET', `/exec/${ex.Id}/json`);
    if (info && !info.Running && info.ExitCode !== null) return { exitCode: info.ExitCode, output };
    if (Date.now() >= deadline) throw new RuntimeError(`timed out after ${timeoutMs} ms waiting for the exit code`);
    await sleep(10);
  }
}
