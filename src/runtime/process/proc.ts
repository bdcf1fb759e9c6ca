/**
 * proc: what the process runtime reads from /proc (Linux only).
 *
 * A service is a process group whose leader is the process we spawned. The
 * leader is identified by its pid plus its start time (/proc/PID/stat field
 * 22) plus the boot id, so a recycled pid is never taken for ours. While any
 * member of a group is alive the kernel does not hand its number out again,
 * which is what makes signalling the whole group (kill(-pgid)) safe once the
 * leader's identity has been checked.
 */
import { readFileSync, readdirSync } from 'node:fs';
import { BOOT_ID } from '../../core/boot-id.js';

export interface ProcStat {
  readonly pid: number;
  /** One letter: R running, S/D sleeping, T/t stopped, Z zombie, X dead, ... */
  readonly state: string;
  readonly ppid: number;
  readonly pgrp: number;
  /** Start time in clock ticks since boot (field 22), as written by the kernel. */
  readonly startTime: string;
}

/** Who a service's leader is; what the state file records. */
export interface ProcessIdentity {
  readonly pid: number;
  readonly startTime: string;
  readonly bootId: string;
}

export { BOOT_ID };

/** readStat parses /proc/<pid>/stat (or a task's stat), or returns null when it is gone. */
export function readStat(pid: number, path = `/proc/${pid}/stat`): ProcStat | null {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch {
    return null;
  }
  // The command name (field 2) may contain spaces and parentheses; fields resume after the last ')'.
  const rest = text.slice(text.lastIndexOf(')') + 2).split(' ');
  const state = rest[0];
  const startTime = rest[19];
  if (state === undefined || startTime === undefined) return null;
  return { pid, state, ppid: Number(rest[1]), pgrp: Number(rest[2]), startTime };
}

/** startTimeOf reads a process's start time, or null when it is gone. */
export function startTimeOf(pid: number): string | null {
  return readStat(pid)?.startTime ?? null;
}

export function isDead(state: string): boolean {
  return state === 'Z' || state === 'X' || state === 'x';
}

/** leaderAlive tells whether the recorded leader still runs (a zombie does not count). */
export function leaderAlive(id: ProcessIdentity): boolean {
  if (id.bootId !== BOOT_ID) return false;
  const st = readStat(id.pid);
  return st !== null && st.startTime === id.startTime && !isDead(st.state);
}

/**
 * ownsGroup tells whether process group id.pid may still be ours: the leader
 * is ours (maybe a zombie), or it is gone and the number, held by surviving
 * members, cannot have been reused. A live process with that pid and another
 * start time means the number was recycled: nothing of ours is left.
 */
export function ownsGroup(id: ProcessIdentity): boolean {
  if (id.bootId !== BOOT_ID || !Number.isSafeInteger(id.pid) || id.pid <= 1) return false;
  const st = readStat(id.pid);
  return st === null || st.startTime === id.startTime;
}

/** groupMembers lists the live processes of our group (the leader included while alive). */
export function groupMembers(id: ProcessIdentity): ProcStat[] {
  if (!ownsGroup(id)) return [];
  const since = Number(id.startTime);
  const out: ProcStat[] = [];
  for (const name of listPids()) {
    const st = readStat(Number(name));
    // Members of our group were all started after the leader.
    if (st && st.pgrp === id.pid && !isDead(st.state) && Number(st.startTime) >= since) out.push(st);
  }
  return out;
}

/**
 * isFrozen tells whether every thread of group member m is stopped (SIGSTOP
 * took effect), or it is gone. One more case counts as frozen: a process
 * blocked in vfork() ('D', waiting in the kernel's clone path) while its
 * child is stopped before exec; it cannot run until that child is resumed.
 * Shells such as dash spawn every command this way.
 */
export function isFrozen(m: ProcStat, group: readonly ProcStat[]): boolean {
  let tids: string[];
  try {
    tids = readdirSync(`/proc/${m.pid}/task`);
  } catch {
    return true;
  }
  return tids.every((tid) => {
    const st = readStat(m.pid, `/proc/${m.pid}/task/${tid}/stat`);
    if (st === null || isStoppedState(st.state) || isDead(st.state)) return true;
    return st.state === 'D' && inFork(m.pid, tid) && group.some((c) => c.ppid === m.pid && isStoppedState(c.state));
  });
}

function isStoppedState(state: string): boolean {
  return state === 'T' || state === 't';
}

/** inFork tells whether the thread sleeps in fork/clone; when the kernel does not say, it may. */
function inFork(pid: number, tid: string): boolean {
  let wchan: string;
  try {
    wchan = readFileSync(`/proc/${pid}/task/${tid}/wchan`, 'utf8').trim();
  } catch {
    return true;
  }
  return wchan === '0' || wchan === '' || /fork|clone/.test(wchan);
}

/** signalGroup sends sig to process group pgid; false when no process is left in it. */
export function signalGroup(pgid: number, sig: NodeJS.Signals): boolean {
  // kill(0) and kill(-1) would reach our own group or every process we may signal.
  if (!Number.isSafeInteger(pgid) || pgid <= 1) return false;
  try {
    process.kill(-pgid, sig);
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ESRCH') return false;
    throw err;
  }
}

function listPids(): string[] {
  try {
    return readdirSync('/proc').filter((n) => n.charCodeAt(0) >= 48 && n.charCodeAt(0) <= 57);
  } catch {
    return [];
  }
}
