// Browse suite: how long listing a large snapshot directory takes through
// the API (`GET …/snapshots/:id/files`), for directories of 10,000 and
// 100,000 entries (scaled by --scale, never below 1,000): the first page and
// the whole directory page by page (5,000 entries a page; five times, the
// median reported with the range), each with none of the snapshot's
// directories decoded yet, and the first page over repeated requests.
//
// It runs the real all-in-one service in this process (the service suite's
// `startAllInOne`). Pages are timed by curl in a child process (its
// time_total: request sent to body received), so the client's own work
// (parsing 5,000 entries of JSON) does not run on the server's thread or
// count in the figure; the body is parsed afterwards for the cursor. The
// repeated first page is timed in process (fetch and parse included).
import { spawn } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadText, sequentialLatency } from '../lib/latency.js';
import type { Suite, SuiteOptions } from '../lib/suite.js';
import { SDL, startAllInOne } from './service.js';

const SIZES = [10_000, 100_000];
const PAGE = 5000;
const REQUESTS = 200;
/** Cold listings of the whole directory per size (the median is reported, and the range). */
const WHOLE_RUNS = 5;
/** Goal: a whole directory of 10,000 entries listed in under 200 ms. */
const GOAL_MS = 200;

interface Row {
  entries: number;
  firstPageColdMs: number;
  /** Median of WHOLE_RUNS cold listings, and their range. */
  wholeDirectoryMs: number;
  wholeDirectoryMinMs: number;
  wholeDirectoryMaxMs: number;
  pages: number;
  firstPageP50Ms: number;
  firstPageP99Ms: number;
  load: string;
}

/** timedGet fetches `url` with curl and returns curl's time for it (ms) and the parsed body. */
async function timedGet<T>(url: string, token: string, out: string): Promise<{ ms: number; body: T }> {
  const child = spawn('curl', ['-sS', '--fail', '-o', out, '-w', '%{time_total}', '-H', `authorization: Bearer ${token}`, url], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const code = await new Promise<number | null>((resolve, reject) => {
    child.on('error', reject);
    child.on('close', resolve);
  });
  if (code !== 0) throw new Error(`curl ${url}: exit ${code}: ${stderr.trim()}`);
  return { ms: Number(stdout) * 1000, body: JSON.parse(readFileSync(out, 'utf8')) as T };
}

export const browseSuite: Suite = {
  description: 'GET …/files on snapshot directories of 10,000 and 100,000 entries: cold first page, whole directory, repeated first page',
  async run(opts: SuiteOptions): Promise<number> {
    const aio = await startAllInOne(join(opts.workDir, 'browse-run'));
    const { call, until, paths } = aio;
    const rows: Row[] = [];
    let code = 0;
    try {
      for (const want of SIZES.map((n) => Math.max(1000, Math.round(n * Math.min(1, opts.scale))))) {
        const { deployment } = await call('POST', '/api/v1/deployments', { sdl: SDL, name: `browse-${want}` });
        await until(
          async () => ((await call('GET', `/api/v1/deployments/${deployment.id}`)).deployment.operation === null ? true : null),
          'deploy',
        );
        const dir = join(paths.volume(deployment.id, { service: 'db', volume: 'data' }), 'big');
        mkdirSync(dir, { recursive: true });
        for (let i = 0; i < want; i++) writeFileSync(join(dir, `entry-${String(i).padStart(7, '0')}.json`), `{"i":${i}}`);
        const { snapshot } = await call('POST', `/api/v1/deployments/${deployment.id}/snapshots`, {});
        const done = await until(async () => {
          const s = (await call('GET', `/api/v1/deployments/${deployment.id}/snapshots/${snapshot.id}`)).snapshot;
          return s.status === 'creating' ? null : s;
        }, 'snapshot');
        if (done.status !== 'ready') throw new Error(`snapshot failed: ${done.error}`);
        const files = `/api/v1/deployments/${deployment.id}/snapshots/${snapshot.id}/files?path=db/data/big`;

        // Cold: nothing of this snapshot decoded yet (the service keeps decoded directories between requests).
        // The repository's index stays loaded after the first request, as it does between any two requests.
        const cold = () => aio.services.browse.trees.forget(paths.repo(deployment.id));
        type Page = { entries: unknown[]; cursor: string | null };
        const body = join(opts.workDir, 'browse-page.json');
        cold();
        const first = await timedGet<Page>(`${aio.url}${files}`, aio.token, body);
        const firstPageColdMs = first.ms;

        // The whole directory, cold, WHOLE_RUNS times: one listing is at the mercy of a collection or of another process.
        const wholeRuns: number[] = [];
        let seen = 0;
        let pages = 0;
        for (let run = 0; run < WHOLE_RUNS; run++) {
          cold();
          let ms = 0;
          let cursor: string | null = null;
          seen = 0;
          pages = 0;
          do {
            const page: { ms: number; body: Page } = await timedGet<Page>(
              `${aio.url}${files}&limit=${PAGE}${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`,
              aio.token,
              body,
            );
            ms += page.ms;
            seen += page.body.entries.length;
            cursor = page.body.cursor;
            pages++;
          } while (cursor);
          wholeRuns.push(ms);
        }
        wholeRuns.sort((a, b) => a - b);
        const wholeDirectoryMs = wholeRuns[Math.floor(wholeRuns.length / 2)]!;
        if (seen !== want || first.body.entries.length === 0) throw new Error(`listed ${seen} entries of ${want}`);

        const lat = await sequentialLatency(
          async () => {
            await call('GET', files);
          },
          REQUESTS,
          10,
        );
        const row = {
          entries: want,
          firstPageColdMs,
          wholeDirectoryMs,
          wholeDirectoryMinMs: wholeRuns[0]!,
          wholeDirectoryMaxMs: wholeRuns[wholeRuns.length - 1]!,
          pages,
          firstPageP50Ms: lat.p50Ms,
          firstPageP99Ms: lat.p99Ms,
          // The machine may be shared: the load the figures were taken at.
          load: loadText(),
        };
        console.log(JSON.stringify(row));
        rows.push(row);
      }
      console.log('\n## Browse benchmark\n');
      console.log(
        `| entries | first page, cold | whole directory (median of ${WHOLE_RUNS}, range) | pages | first page p50 | first page p99 | machine |`,
      );
      console.log('|---|---|---|---|---|---|---|');
      for (const r of rows)
        console.log(
          `| ${r.entries.toLocaleString('en')} | ${r.firstPageColdMs.toFixed(0)} ms | ${r.wholeDirectoryMs.toFixed(0)} ms (${r.wholeDirectoryMinMs.toFixed(0)}–${r.wholeDirectoryMaxMs.toFixed(0)}) | ${r.pages} | ${r.firstPageP50Ms.toFixed(1)} ms | ${r.firstPageP99Ms.toFixed(1)} ms | ${r.load} |`,
        );
      const ten = rows.find((r) => r.entries === 10_000);
      if (ten)
        console.log(
          `\nwhole directory of 10,000 entries: ${ten.wholeDirectoryMs.toFixed(0)} ms, median of ${WHOLE_RUNS} (goal < ${GOAL_MS} ms) ${ten.wholeDirectoryMs < GOAL_MS ? 'PASS' : 'MISS'}`,
        );
      const out = join(opts.workDir, `browse-results-${new Date().toISOString().replace(/[:.]/g, '-')}.json`);
      writeFileSync(out, JSON.stringify(rows, null, 2));
      console.log(`results: ${out}`);
    } catch (err) {
      console.error(err instanceof Error ? err.message : String(err));
      code = 1;
    } finally {
      await aio.close(opts.keep);
    }
    return code;
  },
};
