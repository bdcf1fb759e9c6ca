/**
 * process-identity: who a process is, robustly against pid reuse: its pid
 * plus its start time (/proc/PID/stat field 22), plus the boot id for
 * reboots. Used to tell whether the owner of a lock or temp file still runs.
 */
import { readFileSync } from 'node:fs';
import { BOOT_ID } from '../../core/boot-id.js';

/** processStartTime reads a process's start time, or null when it is gone. */
export function processStartTime(pid: number): string | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name (field 2) may contain spaces; fields resume after ')'.
    const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return rest[19] ?? null;
  } catch {
    return null;
  }
}

export { BOOT_ID };
export const SELF_START = processStartTime(process.pid) ?? '';

/** isAlive tells whether the process (pid, start time) still runs on this boot. */
export function isAlive(pid: number, start: string): boolean {
  const now = processStartTime(pid);
  return now !== null && (start === '' || now === start);
}
