/**
 * snapshots: `kova snapshots ls|create|get|restore|rm|clone|settings` (and
 * files|download|diff, in browse.ts), a
 * deployment's volume snapshots on a Kova server.
 */
import { type Command, Option } from 'commander';
import { formatBytes, formatElapsed } from '../../core/units.js';
import { note, printJson, println, table } from '../output.js';
import { ApiError, type RestorePlan, type SettingsChange, type Snapshot, type VolumePair } from './api-client.js';
import { registerBrowse } from './browse.js';
import { type ClientContext, type CommonOpts, client, clientCommand, confirm } from './common.js';
import { ClientUsageError } from './connection.js';
import { SNAPSHOT_HEADERS, ago, printSettings, printSnapshot, snapshotRow } from './format.js';
import { finishOperation, restoreFailure, snapshotFailure, waitForRestore, waitForSnapshot } from './wait.js';

/** The dashboard's warning before a restore (web/src/components/RestoreDialog.tsx), word for word. */
export const RESTORE_WARNING = [
  'This replaces the current volume data:',
  "  - All current data in the volumes is replaced by the snapshot's data.",
  '  - Data written since the snapshot was taken will be lost.',
  '  - The container restarts with the restored data (a few seconds of downtime).',
];
export const RESTORE_SAFETY_NOTE = 'A safety snapshot of the current state is taken first: it lets you undo this restore.';

const HOW: Record<VolumePair['match'], string> = { name: 'same name', mount: 'same mount path', position: 'same place in the SDL' };

/** restorePlanLines explains a restore's volume mapping when it is not "every volume into itself" (none otherwise). */
export function restorePlanLines(plan: Pick<RestorePlan, 'volumes' | 'untouchedVolumes'>): string[] {
  if (plan.volumes.every((p) => p.from === p.to) && plan.untouchedVolumes.length === 0) return [];
  return [
    "The deployment's volumes changed since this snapshot:",
    ...plan.volumes.map((p) => (p.from === p.to ? `  - ${p.to} is restored` : `  - ${p.from} is restored into ${p.to} (${HOW[p.match]})`)),
    ...plan.untouchedVolumes.map((v) => `  - ${v} is not in the snapshot: it keeps its current data`),
  ];
}

/** restoreSelectionLines tells, before asking, exactly what a restore of chosen paths does to each. */
export function restoreSelectionLines(plan: Pick<RestorePlan, 'mode' | 'paths'>): string[] {
  const paths = plan.paths ?? [];
  if (plan.mode === 'alongside') {
    return [
      'This restores the chosen paths next to the live data:',
      ...paths.map((p) => `  - ${p.path} -> ${p.target}`),
      '  - Nothing is replaced and the services keep running.',
    ];
  }
  const lines = ["This replaces the chosen paths with the snapshot's:"];
  for (const p of paths) {
    if (p.action === 'create') lines.push(`  - ${p.target} is created (it is not there now)`);
    else if (p.type === 'dir') lines.push(`  - ${p.target} is replaced: the folder becomes exactly the snapshot's`);
    else lines.push(`  - ${p.target} is replaced`);
    for (const r of p.removed) lines.push(`      removed, not in the snapshot: ${r}`);
    if (p.removedMore) lines.push('      … and more entries not in the snapshot');
  }
  lines.push('  - Everything else is left as it is.', '  - The container restarts with the restored data (a few seconds of downtime).');
  return lines;
}

function readySummary(s: Snapshot): string {
  const parts = [s.size];
  if (s.files !== null && s.files !== undefined) parts.push(`${s.files} file${s.files === 1 ? '' : 's'}`);
  if (s.consistency)
    parts.push(
      `${s.consistency}${s.consistency === 'frozen' && typeof s.freezeMs === 'number' ? ` (paused ${formatElapsed(s.freezeMs)})` : ''}`,
    );
  if (typeof s.storedBytes === 'number') parts.push(`added ${formatBytes(s.storedBytes)} to the store`);
  return `snapshot ${s.id} is ready: ${parts.join(', ')}${s.warning ? `; warning: ${s.warning}` : ''}`;
}

function parseRetention(v: string): number {
  if (!/^\s*\d+\s*$/.test(v)) throw new ClientUsageError('INVALID_RETENTION', `--retention must be a whole number, got "${v}"`);
  return Number(v);
}

/** parseTier reads a calendar tier option: a whole number, or "none" to unset the tier. */
function parseTier(flag: string, v: string): number | null {
  if (v.trim().toLowerCase() === 'none') return null;
  if (!/^\s*\d+\s*$/.test(v)) throw new ClientUsageError('INVALID_RETENTION', `${flag} must be a whole number or "none", got "${v}"`);
  return Number(v);
}

interface SettingsOpts {
  enable?: boolean;
  disable?: boolean;
  interval?: string;
  retention?: string;
  keepHourly?: string;
  keepDaily?: string;
  keepWeekly?: string;
  keepMonthly?: string;
  offsite?: 'on' | 'off';
}

/** The calendar tier options of `snapshots settings`, and the settings field each sets. */
const TIER_OPTIONS = [
  ['keepHourly', '--keep-hourly', 'hours'],
  ['keepDaily', '--keep-daily', 'days'],
  ['keepWeekly', '--keep-weekly', 'weeks'],
  ['keepMonthly', '--keep-monthly', 'months'],
] as const;

export function registerSnapshots(program: Command, ctx: ClientContext): void {
  const { io } = ctx;
  const snapshots = program.command('snapshots').alias('snapshot').description("manage a deployment's volume snapshots on a Kova server");
  const dep = ['<deployment>', 'deployment id'] as const;
  const snap = ['<snapshot>', 'snapshot id (snap-…)'] as const;

  clientCommand(snapshots, 'ls', "list a deployment's snapshots, newest first")
    .alias('list')
    .argument(...dep)
    .action(async (depId: string, o: CommonOpts) => {
      const list = await (await client(ctx, o)).listSnapshots(depId);
      if (o.json) return printJson(io, list);
      if (list.length === 0) return println(io, 'no snapshots');
      const now = Date.now();
      table(
        io,
        SNAPSHOT_HEADERS,
        list.map((s) => snapshotRow(s, now)),
      );
    });

  clientCommand(snapshots, 'create', 'snapshot the volumes of a deployment; prints the snapshot id')
    .argument(...dep)
    .option('--label <label>', 'a label, e.g. before-migration (at most 64 characters)')
    .option('--wait', 'wait until the snapshot is ready (exits non-zero if it fails)')
    .action(async (depId: string, o: CommonOpts & { label?: string; wait?: boolean }) => {
      const c = await client(ctx, o);
      const created = await c.createSnapshot(depId, o.label);
      const s = o.wait ? await waitForSnapshot(io, c, depId, created.id) : created;
      const failure = o.wait ? snapshotFailure(s) : null;
      if (o.json) printJson(io, s);
      else {
        println(io, s.id);
        if (!failure) note(io, o.wait ? readySummary(s) : `creating snapshot ${s.id} of ${depId} (--wait waits for it)`);
      }
      if (failure) throw failure;
    });

  clientCommand(snapshots, 'get', 'show one snapshot')
    .argument(...dep)
    .argument(...snap)
    .action(async (depId: string, snapId: string, o: CommonOpts) => {
      const s = await (await client(ctx, o)).getSnapshot(depId, snapId);
      if (o.json) return printJson(io, s);
      printSnapshot(io, s);
    });

  clientCommand(snapshots, 'restore', "restore a snapshot: replaces all current data in the deployment's volumes and restarts the services")
    .argument(...dep)
    .argument(...snap)
    .option(
      '--path <path>',
      'restore only this path, as `snapshots files` shows it (service/volume/...); repeat for several',
      (v: string, prev: string[] = []) => [...prev, v],
    )
    .option('--alongside <dir>', 'with --path: restore next to the live data, into this new folder of the volume (nothing stops)')
    .option('-y, --yes', 'do not ask for confirmation')
    .option('--no-safety-snapshot', 'do not snapshot the current state first (the restore cannot be undone)')
    .option('--wait', 'wait until the restore has completed (exits non-zero if it fails)')
    .action(
      async (
        depId: string,
        snapId: string,
        o: CommonOpts & { yes?: boolean; safetySnapshot: boolean; wait?: boolean; path?: string[]; alongside?: string },
      ) => {
        if (o.alongside !== undefined && !o.path)
          throw new ClientUsageError('INVALID_RESTORE_MODE', '--alongside needs --path: the paths to restore');
        const selection = o.path
          ? {
              paths: o.path,
              mode: o.alongside !== undefined ? ('alongside' as const) : ('replace' as const),
              ...(o.alongside !== undefined ? { into: o.alongside } : {}),
            }
          : undefined;
        const c = await client(ctx, o);
        let what = `snapshot ${snapId}`;
        let plan: RestorePlan | null = null;
        if (!o.yes && ctx.terminal.interactive) {
          // Name what is about to be restored (and fail early on a wrong id).
          const s = await c.getSnapshot(depId, snapId);
          what = `snapshot ${s.id}${s.label ? ` "${s.label}"` : ''} (${ago(s.createdAt)})`;
          // Where each volume (or path) goes; a refusal is told before asking (the restore would answer the same).
          // A selection's plan fails as its restore would (unknown path, unsafe folder): shown, nothing asked.
          plan = selection ? await c.restorePlan(depId, snapId, selection) : await c.restorePlan(depId, snapId).catch(() => null);
          if (plan?.refusal) throw new ApiError(409, plan.refusal.code, plan.refusal.message);
        }
        // A selection's plan lists only the chosen volumes: the others are not "missing", just not chosen.
        const mapping = plan ? restorePlanLines(selection ? { volumes: plan.volumes, untouchedVolumes: [] } : plan) : [];
        const safety = o.safetySnapshot && selection?.mode !== 'alongside';
        await confirm(ctx, o, {
          action: `restore ${snapId}`,
          question: selection
            ? `Restore ${selection.paths.length === 1 ? 'this path' : 'these paths'} from ${what} into deployment ${depId}?`
            : `Restore ${what} into deployment ${depId}?`,
          warning: [
            ...(selection && plan ? restoreSelectionLines(plan) : RESTORE_WARNING),
            ...mapping,
            ...(safety ? [RESTORE_SAFETY_NOTE] : []),
          ],
        });
        const started = await c.restoreSnapshot(depId, snapId, o.safetySnapshot, selection);
        const r = o.wait ? await waitForRestore(io, c, depId, started.id) : started;
        const failure = o.wait ? restoreFailure(r) : null;
        if (o.json) printJson(io, r);
        else {
          println(io, r.id);
          if (!o.wait) {
            note(
              io,
              selection?.mode === 'alongside'
                ? `restoring ${r.paths?.join(', ')} from ${snapId} into ${r.into} (--wait waits for it)`
                : `restoring ${snapId} into ${depId}; the services restart when it completes (--wait waits for it)`,
            );
          } else if (!failure) {
            const downtime = typeof r.downtimeMs === 'number' ? `, downtime ${formatElapsed(r.downtimeMs)}` : '';
            const undo = r.safetySnapshotId ? `; to undo: kova snapshots restore ${depId} ${r.safetySnapshotId}` : '';
            const which = r.paths ? `${r.paths.join(', ')} from ${r.snapshotId}` : r.snapshotId;
            const where = r.mode === 'alongside' ? ` under ${r.into}` : '';
            note(io, `restored ${which} into ${depId}${where}${downtime}${undo}`);
            const moved = (r.volumes ?? []).filter((p) => p.from !== p.to);
            if (moved.length > 0) note(io, `restored into renamed volumes: ${moved.map((p) => `${p.from} -> ${p.to}`).join(', ')}`);
            if (!r.paths && r.untouchedVolumes?.length)
              note(io, `not in the snapshot, kept as they were: ${r.untouchedVolumes.join(', ')}`);
          }
        }
        if (failure) throw failure;
      },
    );

  clientCommand(snapshots, 'rm', 'delete a snapshot')
    .alias('delete')
    .argument(...dep)
    .argument(...snap)
    .option('-y, --yes', 'do not ask for confirmation')
    .action(async (depId: string, snapId: string, o: CommonOpts & { yes?: boolean }) => {
      const c = await client(ctx, o);
      await confirm(ctx, o, {
        action: `delete ${snapId}`,
        question: `Delete snapshot ${snapId} of deployment ${depId}?`,
        warning: ['A deleted snapshot cannot be recovered.'],
      });
      await c.deleteSnapshot(depId, snapId);
      if (o.json) return printJson(io, { id: snapId, deleted: true });
      println(io, `deleted snapshot ${snapId}`);
    });

  clientCommand(snapshots, 'clone', 'create a new deployment whose volumes start from a snapshot; prints its id')
    .argument(...dep)
    .argument(...snap)
    .option('--name <name>', 'name of the new deployment (default: <name>-clone)')
    .option('--wait', "wait until the new deployment's services run (exits non-zero if they do not)")
    .action(async (depId: string, snapId: string, o: CommonOpts & { name?: string; wait?: boolean }) => {
      const c = await client(ctx, o);
      const d = await c.cloneSnapshot(depId, snapId, o.name);
      await finishOperation(io, c, d, o, {
        done: `cloned ${snapId} into deployment ${d.id}`,
        pending: `cloning ${snapId} into deployment ${d.id} (--wait waits for it)`,
      });
    });

  clientCommand(snapshots, 'settings', 'show or change automatic snapshots of a deployment')
    .argument(...dep)
    .addOption(new Option('--enable', 'take automatic snapshots').conflicts('disable'))
    .addOption(new Option('--disable', 'stop taking automatic snapshots'))
    .option('--interval <duration>', 'time between automatic snapshots: 30m, 6h, 24h, 7d')
    .option('--retention <n>', 'how many of the most recent automatic snapshots to keep (1-100)')
    .option('--keep-hourly <n>', 'also keep the newest automatic snapshot of each of the last N hours (0-1000, or "none")')
    .option('--keep-daily <n>', 'also keep the newest of each of the last N days, UTC (0-1000, or "none")')
    .option('--keep-weekly <n>', 'also keep the newest of each of the last N ISO weeks, UTC (0-1000, or "none")')
    .option('--keep-monthly <n>', 'also keep the newest of each of the last N months, UTC (0-1000, or "none")')
    .addOption(
      new Option('--offsite <on|off>', "copy this deployment's snapshots off its node (when the server has an off-node target)").choices([
        'on',
        'off',
      ]),
    )
    .action(async (depId: string, o: CommonOpts & SettingsOpts) => {
      const change: { -readonly [K in keyof SettingsChange]: SettingsChange[K] } = {};
      if (o.enable) change.enabled = true;
      if (o.disable) change.enabled = false;
      if (o.interval !== undefined) change.interval = o.interval.trim();
      if (o.retention !== undefined) change.retention = parseRetention(o.retention);
      for (const [field, flag] of TIER_OPTIONS) {
        const v = o[field];
        if (v !== undefined) change[field] = parseTier(flag, v);
      }
      if (o.offsite !== undefined) change.offsite = { enabled: o.offsite === 'on' };
      const c = await client(ctx, o);
      const s = Object.keys(change).length === 0 ? await c.getSettings(depId) : await c.updateSettings(depId, change);
      if (o.json) return printJson(io, s);
      printSettings(io, s);
    });

  registerBrowse(snapshots, ctx);
}
