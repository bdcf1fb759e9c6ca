// HTTP figures shared by the service and network suites: percentiles of
// sequential request latencies, a `wrk` run parsed into a request rate, and
// the machine's load average to print beside every figure (the machine may
// be shared, and a figure means little without the load it was taken at).
import { execFile } from 'node:child_process';
import { loadavg } from 'node:os';
import { promisify } from 'node:util';

/** The value at percentile `p` (0-100) of ascending `sorted`. */
export function percentile(sorted: readonly number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? NaN;
}

/** The 1, 5 and 15 minute load averages now. */
export function loadAverage(): [number, number, number] {
  const [a = NaN, b = NaN, c = NaN] = loadavg();
  return [a, b, c];
}

/** "load 1.23 0.98 0.50" for the end of a line. */
export function loadText(load: readonly number[] = loadAverage()): string {
  return `load ${load.map((x) => x.toFixed(2)).join(' ')}`;
}

export interface LatencyFigures {
  requests: number;
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
  /** Load averages when the last request ended. */
  load: [number, number, number];
}

/**
 * sequentialLatency runs `request` `warmup` times unmeasured, then
 * `requests` times one after the other, timing each.
 */
export async function sequentialLatency(request: () => Promise<void>, requests: number, warmup = 50): Promise<LatencyFigures> {
  for (let i = 0; i < warmup; i++) await request();
  const lat: number[] = [];
  for (let i = 0; i < requests; i++) {
    const t = performance.now();
    await request();
    lat.push(performance.now() - t);
  }
  lat.sort((a, b) => a - b);
  return { requests, p50Ms: percentile(lat, 50), p99Ms: percentile(lat, 99), maxMs: lat.at(-1) ?? NaN, load: loadAverage() };
}

/**
 * getBody sends one GET and reads its body to the last byte without
 * parsing it (what a latency figure of the server should time: parsing
 * 400 KB of JSON is the client's work, on the same cores); anything but
 * 200 throws.
 */
export async function getBody(url: string, token: string): Promise<number> {
  const res = await fetch(url, { headers: { authorization: `Bearer ${token}` } });
  const body = await res.arrayBuffer();
  if (res.status !== 200) throw new Error(`GET ${url}: ${res.status} ${Buffer.from(body).toString().slice(0, 200)}`);
  return body.byteLength;
}

export interface WrkRun {
  url: string;
  /** Requests a second, or null when wrk did not run. */
  rps: number | null;
  /** wrk's 99th percentile latency as it printed it ("12.3ms"). */
  p99: string | null;
  /** Non-2xx/3xx answers and socket errors wrk counted. */
  errors: number;
  /** wrk's output, or why it did not run. */
  output: string;
}

export const WRK_MISSING = 'wrk not installed (apt-get install wrk)';

/**
 * wrk runs `wrk` against `url` with an Authorization header, asynchronously
 * (a server in this process must keep serving meanwhile).
 */
export async function wrk(url: string, token: string, o: { threads: number; connections: number; seconds: number }): Promise<WrkRun> {
  let output: string;
  try {
    output = (
      await promisify(execFile)(
        'wrk',
        [`-t${o.threads}`, `-c${o.connections}`, `-d${o.seconds}s`, '--latency', '-H', `Authorization: Bearer ${token}`, url],
        { encoding: 'utf8' },
      )
    ).stdout;
  } catch (err) {
    const missing = (err as NodeJS.ErrnoException).code === 'ENOENT';
    return { url, rps: null, p99: null, errors: 0, output: missing ? WRK_MISSING : `wrk failed: ${(err as Error).message}` };
  }
  const rps = /Requests\/sec:\s+([0-9.]+)/.exec(output);
  const non2xx = Number(/Non-2xx or 3xx responses:\s+(\d+)/.exec(output)?.[1] ?? 0);
  const socket = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(output);
  const socketErrors = socket ? socket.slice(1).reduce((a, b) => a + Number(b), 0) : 0;
  return {
    url,
    rps: rps ? Number(rps[1]) : null,
    p99: /99%\s+([0-9.]+\w+)/.exec(output)?.[1] ?? null,
    errors: non2xx + socketErrors,
    output,
  };
}
