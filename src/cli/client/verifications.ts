/**
 * verifications: `kova snapshots verify DEP [--full]` checks a deployment's
 * stored data now, and `kova verifications DEP` lists its checks with where
 * the rotation stands (docs/api.md, "Verification").
 */
import type { Command } from 'commander';
import { formatBytes } from '../../core/units.js';
import { type Io, note, printJson, println, table } from '../output.js';
import type { KovaClient, Verification, VerificationSummary } from './api-client.js';
import { type ClientContext, type CommonOpts, client, clientCommand } from './common.js';
import { ago, at } from './format.js';
import { ClientUsageError } from './connection.js';

const POLL_MS = 500;

/** partText says which part of the data a check read: "2/5" or "all". */
export function partText(v: Pick<Verification, 'part' | 'parts'>): string {
  return v.part === null ? 'all' : `${v.part + 1}/${v.parts}`;
}

/** summaryLines is the text of where a deployment's verification stands. */
export function summaryLines(s: VerificationSummary, now = Date.now()): string[] {
  const last = s.lastVerification;
  return [
    s.enabled
      ? `checks every ${s.interval}, one part of ${s.parts} at a time; next (part ${s.nextPart + 1}) ${ago(s.nextRunAt, now) || 'not scheduled yet'}`
      : 'scheduled checks are off',
    last
      ? `last check: ${last.status} ${ago(last.finishedAt ?? last.createdAt, now)} (part ${partText(last)}, ${formatBytes(last.bytesRead)} read)`
      : 'last check: none yet',
    s.lastFullCheckAt
      ? `every byte read back intact at least once since ${at(s.lastFullCheckAt)}`
      : 'not every byte has been read back yet',
  ];
}

async function waitForCheck(c: KovaClient, depId: string, id: string): Promise<Verification> {
  for (;;) {
    const { verifications } = await c.listVerifications(depId, { limit: 20 });
    const v = verifications.find((x) => x.id === id);
    if (v && (v.status === 'ok' || v.status === 'failed')) return v;
    await new Promise((r) => setTimeout(r, POLL_MS));
  }
}

function printCheck(io: Io, v: Verification): void {
  println(io, `${v.id} ${v.status}: part ${partText(v)}, ${formatBytes(v.bytesRead)} read, ${v.findings} problem(s)`);
  for (const p of v.problems) println(io, `  ${p.kind}: ${p.message}`);
  if (v.damagedSnapshots.length > 0) println(io, `  damaged snapshots: ${v.damagedSnapshots.join(', ')}`);
  if (v.error) println(io, `  error: ${v.error}`);
}

export function registerVerifications(program: Command, ctx: ClientContext): void {
  const { io } = ctx;
  const snapshots = program.commands.find((c) => c.name() === 'snapshots');
  if (!snapshots) throw new Error('the snapshots command must be registered first');

  clientCommand(snapshots, 'verify', "check now that a deployment's stored data reads back intact: the next part, or all with --full")
    .argument('<deployment>', 'deployment id')
    .option('--full', 'read all the stored data, not only the next part')
    .option('--wait', 'wait for the result (exits non-zero when the check fails)')
    .action(async (depId: string, o: CommonOpts & { full?: boolean; wait?: boolean }) => {
      const c = await client(ctx, o);
      const started = await c.requestVerification(depId, o.full ?? false);
      const v = o.wait ? await waitForCheck(c, depId, started.id) : started;
      if (o.json) printJson(io, v);
      else if (o.wait) printCheck(io, v);
      else {
        println(io, v.id);
        note(io, `checking part ${partText(v)} of ${depId}'s stored data (--wait waits for the result)`);
      }
      if (v.status === 'failed') throw new ClientUsageError('VERIFICATION_FAILED', `the check ${v.id} failed: ${v.findings} problem(s)`);
    });

  clientCommand(program, 'verifications', "list a deployment's checks of its stored data, newest first")
    .alias('verification')
    .argument('<deployment>', 'deployment id')
    .option('--limit <n>', 'how many (1 to 200)', '20')
    .action(async (depId: string, o: CommonOpts & { limit: string }) => {
      const c = await client(ctx, o);
      const [summary, page] = await Promise.all([c.verificationSummary(depId), c.listVerifications(depId, { limit: Number(o.limit) })]);
      if (o.json) return printJson(io, { verification: summary, verifications: page.verifications });
      for (const line of summaryLines(summary)) println(io, line);
      if (page.verifications.length === 0) return println(io, 'no checks yet');
      const now = Date.now();
      table(
        io,
        ['ID', 'STATUS', 'PART', 'READ', 'PROBLEMS', 'TRIGGER', 'STARTED', 'DAMAGED SNAPSHOTS'],
        page.verifications.map((v) => [
          v.id,
          v.status,
          partText(v),
          formatBytes(v.bytesRead),
          String(v.findings),
          v.trigger,
          ago(v.startedAt ?? v.createdAt, now),
          v.damagedSnapshots.join(',') || (v.error ?? ''),
        ]),
      );
    });
}
