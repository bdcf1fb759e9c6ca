// Checks a restored tree against its source: file contents and symlink targets
// with `diff -r --no-dereference`, and metadata (type, mode, owner, size,
// mtime in ns, hard-link groups) with a walk of both trees.
import { spawn } from 'node:child_process';
import { lstatSync, readdirSync, readlinkSync, statSync } from 'node:fs';
import { join } from 'node:path';

export interface TreeComparison {
  contentEqual: boolean;
  /** First lines of `diff -r` output when contents differ. */
  diffExcerpt: string[];
  metadataMismatches: number;
  mismatchesByKind: Record<string, number>;
  examples: string[];
}

interface Entry {
  type: 'file' | 'dir' | 'symlink' | 'other';
  mode: number;
  uid: number;
  gid: number;
  size: bigint;
  mtimeNs: bigint;
  ino: bigint;
  nlink: bigint;
  target?: string;
}

function walk(root: string): Map<string, Entry> {
  const entries = new Map<string, Entry>();
  const visit = (rel: string): void => {
    const path = rel === '.' ? root : join(root, rel);
    const st = lstatSync(path, { bigint: true });
    const type = st.isFile() ? 'file' : st.isDirectory() ? 'dir' : st.isSymbolicLink() ? 'symlink' : 'other';
    entries.set(rel, {
      type,
      mode: Number(st.mode & 0o7777n),
      uid: Number(st.uid),
      gid: Number(st.gid),
      size: st.size,
      mtimeNs: st.mtimeNs,
      ino: st.ino,
      nlink: st.nlink,
      ...(type === 'symlink' ? { target: readlinkSync(path) } : {}),
    });
    if (type === 'dir') for (const name of readdirSync(path).sort()) visit(rel === '.' ? name : `${rel}/${name}`);
  };
  visit('.');
  return entries;
}

function compareMetadata(source: Map<string, Entry>, restored: Map<string, Entry>): Omit<TreeComparison, 'contentEqual' | 'diffExcerpt'> {
  const byKind: Record<string, number> = {};
  const examples: string[] = [];
  const report = (kind: string, path: string, detail: string): void => {
    byKind[kind] = (byKind[kind] ?? 0) + 1;
    if (examples.length < 8) examples.push(`${kind}: ${path} (${detail})`);
  };

  for (const [path, s] of source) {
    const r = restored.get(path);
    if (!r) {
      report('missing', path, s.type);
      continue;
    }
    if (s.type !== r.type) report('type', path, `${s.type} vs ${r.type}`);
    if (s.mode !== r.mode && s.type !== 'symlink') report('mode', path, `${s.mode.toString(8)} vs ${r.mode.toString(8)}`);
    if (s.uid !== r.uid || s.gid !== r.gid) report('owner', path, `${s.uid}:${s.gid} vs ${r.uid}:${r.gid}`);
    if (s.type === 'file' && s.size !== r.size) report('size', path, `${s.size} vs ${r.size}`);
    if (s.mtimeNs !== r.mtimeNs) report('mtime', path, `${s.mtimeNs} vs ${r.mtimeNs} ns`);
    if (s.target !== r.target) report('symlink', path, `${s.target ?? '-'} vs ${r.target ?? '-'}`);
  }
  for (const path of restored.keys()) if (!source.has(path)) report('extra', path, 'not in source');

  // Hard links: paths sharing an inode in the source must share one after restore, and only those.
  const groups = new Map<bigint, string[]>();
  for (const [path, s] of source) if (s.type === 'file') groups.set(s.ino, [...(groups.get(s.ino) ?? []), path]);
  for (const paths of groups.values()) {
    if (paths.some((p) => !restored.has(p))) continue;
    const inodes = new Set(paths.map((p) => restored.get(p)?.ino));
    const nlink = restored.get(paths[0] ?? '')?.nlink;
    if (inodes.size !== 1 || nlink !== BigInt(paths.length)) report('hardlink', paths.join(' = '), `restored nlink ${nlink ?? '-'}`);
  }

  const mismatches = Object.values(byKind).reduce((a, b) => a + b, 0);
  return { metadataMismatches: mismatches, mismatchesByKind: byKind, examples };
}

async function diffTrees(source: string, restored: string): Promise<{ equal: boolean; excerpt: string[] }> {
  const child = spawn('diff', ['-r', '--no-dereference', source, restored], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  const keep = (d: Buffer): void => {
    if (out.length < 8000) out += d.toString();
  };
  child.stdout.on('data', keep);
  child.stderr.on('data', keep);
  const code = await new Promise<number | null>((resolve, reject) => {
    child.on('error', reject);
    child.on('close', resolve);
  });
  if (code !== 0 && code !== 1) throw new Error(`diff failed (${code ?? 'signal'}): ${out.trim()}`);
  return { equal: code === 0, excerpt: out.split('\n').filter(Boolean).slice(0, 10) };
}

/** Compares `restored` to `source` (both roots of the same tree). */
export async function compareTrees(source: string, restored: string): Promise<TreeComparison> {
  const diff = await diffTrees(source, restored);
  return { contentEqual: diff.equal, diffExcerpt: diff.excerpt, ...compareMetadata(walk(source), walk(restored)) };
}

/** Bytes actually allocated on disk for a file (st_blocks * 512). */
export function allocatedBytes(path: string): number {
  return statSync(path).blocks * 512;
}
