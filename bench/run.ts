// Entry point of `npm run bench`: parses the arguments and runs one suite from
// the registry below. New suites (e.g. service downtime, API latency) go in
// bench/suites/ and get an entry in SUITES.
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { VOLUMES } from './lib/layout.js';
import type { VolumeName } from './lib/layout.js';
import { TOOL_GROUPS } from './lib/suite.js';
import type { Suite, ToolGroup } from './lib/suite.js';
import { browseSuite } from './suites/browse.js';
import { engineSuite } from './suites/engine.js';
import { gcSuite } from './suites/gc.js';
import { networkSuite } from './suites/network.js';
import { offsiteSuite } from './suites/offsite.js';
import { serviceSuite } from './suites/service.js';

const SUITES: Record<string, Suite> = {
  engine: engineSuite,
  service: serviceSuite,
  network: networkSuite,
  browse: browseSuite,
  offsite: offsiteSuite,
  gc: gcSuite,
};

const USAGE = `usage: npm run bench -- [--suite NAME] [--scale X] [--volume NAME[,NAME]] [--only GROUP[,GROUP]] [--minutes M]
                        [--restore-rounds N] [--incremental-rounds N] [--keep]

  --suite NAME   suite to run (default all, one after the other):
${Object.entries(SUITES)
  .map(([name, s]) => `                   ${name}: ${s.description}`)
  .join('\n')}
  --scale X      volume size factor (default 1: the sizes below; 0.05 for a quick run)
  --volume NAMES comma-separated volumes for the engine suite (default all, each reported separately):
                   current: 4 x 448 MiB tables, 20,000 small files, 1 GiB sparse file (8 MiB data)
                   mixed: 20,000 files of 1-64 KiB (60% text), 4 x 256 MiB tables (2 random), 512 MiB sparse file (8 MiB data)
                   smallfiles: 500,000 files of 0-1.5 KB in 2,000 directories
                   db: one 8 GiB database-like file, 1% of its 8 KiB pages rewritten before the incremental
  --only GROUPS  comma-separated subset of: ${TOOL_GROUPS.join(', ')} (ref = cp -a and tar|zstd)
  --minutes M    network suite: how long the simulated nodes are measured (default 5 x --scale)
  --restore-rounds N
                 engine suite: restores (cp -a, restic, kova) are measured in N interleaved rounds and
                 each reported by its median round (default 3)
  --incremental-rounds N
                 engine suite: incrementals (restic, kova) are measured in N interleaved rounds, each from a
                 copy of the repository (and restic's cache) as the no-change snapshot left it, and each
                 reported by its median round (default 3; copying is not timed)
  --keep         keep repositories and restored trees in <dir>/run afterwards

  The work directory is .bench/ in the repository root, or $KOVA_BENCH_DIR.`;

function fail(message: string): never {
  console.error(`${message}\n\n${USAGE}`);
  process.exit(2);
}

async function main(): Promise<number> {
  const { values } = (() => {
    try {
      return parseArgs({
        options: {
          suite: { type: 'string', default: 'all' },
          scale: { type: 'string', default: '1' },
          only: { type: 'string' },
          volume: { type: 'string' },
          keep: { type: 'boolean', default: false },
          minutes: { type: 'string' },
          'restore-rounds': { type: 'string', default: '3' },
          'incremental-rounds': { type: 'string', default: '3' },
          help: { type: 'boolean', short: 'h', default: false },
        },
      });
    } catch (err) {
      return fail(err instanceof Error ? err.message : String(err));
    }
  })();
  if (values.help) {
    console.log(USAGE);
    return 0;
  }
  const names = values.suite === 'all' ? Object.keys(SUITES) : [values.suite];
  for (const name of names) if (!SUITES[name]) fail(`unknown suite: ${name}`);
  const scale = Number(values.scale);
  if (!(scale > 0)) fail(`--scale must be a positive number, got ${values.scale}`);
  const only = new Set<ToolGroup>();
  for (const group of (values.only ?? TOOL_GROUPS.join(',')).split(',')) {
    if (!TOOL_GROUPS.includes(group as ToolGroup)) fail(`unknown --only group: ${group}`);
    only.add(group as ToolGroup);
  }
  const volumes: VolumeName[] = [];
  for (const name of (values.volume ?? VOLUMES.join(',')).split(',')) {
    if (!VOLUMES.includes(name as VolumeName)) fail(`unknown --volume: ${name}`);
    volumes.push(name as VolumeName);
  }
  const minutes = values.minutes === undefined ? undefined : Number(values.minutes);
  if (minutes !== undefined && !(minutes > 0)) fail(`--minutes must be a positive number, got ${values.minutes}`);
  const restoreRounds = Number(values['restore-rounds']);
  if (!(Number.isInteger(restoreRounds) && restoreRounds >= 1))
    fail(`--restore-rounds must be a positive integer, got ${values['restore-rounds']}`);
  const incrementalRounds = Number(values['incremental-rounds']);
  if (!(Number.isInteger(incrementalRounds) && incrementalRounds >= 1))
    fail(`--incremental-rounds must be a positive integer, got ${values['incremental-rounds']}`);
  const repoRoot = fileURLToPath(new URL('..', import.meta.url));
  const workDir = resolve(process.env.KOVA_BENCH_DIR ?? resolve(repoRoot, '.bench'));
  let code = 0;
  for (const name of names)
    code = Math.max(
      code,
      await SUITES[name]!.run({ repoRoot, workDir, scale, only, volumes, minutes, keep: values.keep, restoreRounds, incrementalRounds }),
    );
  return code;
}

main().then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    console.error(err instanceof Error ? (err.stack ?? err.message) : String(err));
    process.exitCode = 1;
  },
);
