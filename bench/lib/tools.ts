// Command lines of the snapshot tools under test (restic and the `kova repo`
// CLI): repository init (not measured), snapshot, restore, delete + gc
// (restic forget --prune), and where each tool puts the restored tree.
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { sh } from './measure.js';
import type { Command } from './measure.js';

export interface Snapshot {
  id: string;
  /** The tool's own summary of the snapshot, kept in the JSON results. */
  details: unknown;
}

export interface SnapshotTool {
  name: 'restic' | 'kova';
  /** Why the tool cannot run here, or undefined if it can. */
  unavailable(): string | undefined;
  init(repo: string): void;
  snapshot(repo: string, source: string, parent?: string): Command;
  parseSnapshot(stdout: string): Snapshot;
  restore(repo: string, id: string, target: string): Command;
  /** Deletes snapshots `ids` and reclaims the space only they used. */
  deleteAndGc(repo: string, ids: readonly string[]): Command;
  /** Where the source's root ends up inside a restore target. */
  restoredRoot(target: string, source: string): string;
  /** The directories a snapshot into `repo` writes: the repository, and restic's cache. */
  stateDirs(repo: string): string[];
}

const RESTIC = '/usr/bin/restic';

/** Parses the last stdout line that is a JSON object matching `accept`. */
function lastJson(stdout: string, accept: (value: Record<string, unknown>) => boolean): Record<string, unknown> | undefined {
  const candidates = [stdout.trim(), ...stdout.trim().split('\n').reverse()];
  for (const text of candidates) {
    try {
      const value: unknown = JSON.parse(text);
      if (typeof value === 'object' && value !== null && accept(value as Record<string, unknown>)) return value as Record<string, unknown>;
    } catch {
      // not JSON; try the next candidate
    }
  }
  return undefined;
}

/** restic (Debian's 0.14): repository format 2 with `auto` compression, cache inside the run directory. */
export function restic(cacheDir: string): SnapshotTool {
  const env = { RESTIC_PASSWORD: 'bench' };
  const common = (repo: string): string => `--repo ${sh(repo)} --cache-dir ${sh(cacheDir)}`;
  return {
    name: 'restic',
    unavailable: () => (existsSync(RESTIC) ? undefined : `${RESTIC} not found: install it with \`apt-get install restic\``),
    init: (repo) => {
      execFileSync(RESTIC, ['init', '--repo', repo, '--cache-dir', cacheDir, '--repository-version', '2'], {
        env: { ...process.env, ...env },
        stdio: ['ignore', 'ignore', 'pipe'],
      });
    },
    snapshot: (repo, source, parent) => ({
      script: `${RESTIC} backup ${common(repo)} --host bench --compression auto --json${parent ? ` --parent ${sh(parent)}` : ''} ${sh(source)}`,
      env,
    }),
    parseSnapshot: (stdout) => {
      const summary = lastJson(stdout, (v) => v.message_type === 'summary');
      if (typeof summary?.snapshot_id !== 'string') throw new Error('restic backup printed no summary with a snapshot_id');
      return { id: summary.snapshot_id, details: summary };
    },
    restore: (repo, id, target) => ({ script: `${RESTIC} restore ${sh(id)} ${common(repo)} --target ${sh(target)}`, env }),
    deleteAndGc: (repo, ids) => ({ script: `${RESTIC} forget ${common(repo)} --prune ${ids.map(sh).join(' ')}`, env }),
    // restic recreates the absolute source path below the target.
    restoredRoot: (target, source) => join(target, source),
    stateDirs: (repo) => [repo, cacheDir],
  };
}

/** The `kova repo` CLI of this repository (bin/kova.js running dist/). */
export function kova(repoRoot: string): SnapshotTool {
  const node = process.execPath;
  const bin = join(repoRoot, 'bin', 'kova.js');
  const cli = `${sh(node)} ${sh(bin)} repo`;
  return {
    name: 'kova',
    unavailable: () => {
      const help = spawnSync(node, [bin, '--help'], { encoding: 'utf8', timeout: 60_000 });
      if (help.status === 0) return undefined;
      const lines = (help.stderr || help.stdout || String(help.error ?? '')).trim().split('\n');
      const reason = lines.find((l) => /error/i.test(l)) ?? lines[0] ?? '';
      return `\`node bin/kova.js --help\` failed (${reason}); build the CLI with \`npm run build\``;
    },
    init: (repo) => {
      execFileSync(node, [bin, 'repo', 'init', repo], { stdio: ['ignore', 'ignore', 'pipe'] });
    },
    snapshot: (repo, source, parent) => ({
      script: `${cli} snapshot ${sh(repo)} ${sh(source)} --json${parent ? ` --parent ${sh(parent)}` : ''}`,
    }),
    parseSnapshot: (stdout) => {
      const result = lastJson(stdout, (v) => typeof v.id === 'string' || typeof v.id === 'number');
      if (!result) throw new Error(`kova repo snapshot --json printed no object with an "id": ${stdout.slice(0, 300)}`);
      return { id: String(result.id), details: result };
    },
    restore: (repo, id, target) => ({ script: `${cli} restore ${sh(repo)} ${sh(id)} ${sh(target)}` }),
    deleteAndGc: (repo, ids) => ({ script: `${cli} delete ${sh(repo)} ${ids.map(sh).join(' ')} --gc` }),
    restoredRoot: (target) => target,
    stateDirs: (repo) => [repo],
  };
}
