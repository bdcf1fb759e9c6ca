// Memory breakdown of a measured process, for the engine suite's
// KOVA_BENCH_MEMORY=1: preloaded with NODE_OPTIONS=--import, it samples the
// main thread every 25 ms (VmRSS and its anonymous and file-backed parts,
// the V8 heap, ArrayBuffers, glibc's C heap over all arenas through the
// native addon) and appends the sample taken at the peak RSS, as one JSON
// line, to $KOVA_MEMTRACE_OUT when the process exits. Worker threads are
// not sampled: their heaps are what RssAnon holds beyond the rest.
import fs from 'node:fs';
import { createRequire } from 'node:module';
import process from 'node:process';
import { setInterval } from 'node:timers';
import { isMainThread } from 'node:worker_threads';

const out = process.env.KOVA_MEMTRACE_OUT;
if (isMainThread && out) {
  let addon = null;
  try {
    addon = createRequire(import.meta.url)('../../build/Release/kova_native.node');
  } catch {
    // Without the addon the C heap is not reported.
  }
  const status = () => {
    const text = fs.readFileSync('/proc/self/status', 'utf8');
    const field = (k) => Number(new RegExp(`^${k}:\\s+(\\d+)`, 'm').exec(text)?.[1] ?? 0);
    return { rss: field('VmRSS') * 1024, anon: field('RssAnon') * 1024, file: field('RssFile') * 1024, threads: field('Threads') };
  };
  let peak = null;
  const sample = () => {
    const m = process.memoryUsage();
    const c = addon ? addon.mallocStats() : null;
    const s = { ...status(), heapTotal: m.heapTotal, heapUsed: m.heapUsed, arrayBuffers: m.arrayBuffers, ...(c ? { malloc: c } : {}) };
    if (!peak || s.rss >= peak.rss) peak = s;
  };
  setInterval(sample, 25).unref();
  process.on('exit', () => {
    sample();
    fs.appendFileSync(out, JSON.stringify({ argv: process.argv.slice(2), peak }) + '\n');
  });
}
