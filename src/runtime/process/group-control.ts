/**
 * group-control: stopping, freezing and inspecting one service's process
 * group, identified by its leader's recorded identity (see proc.ts).
 *
 * Signals go to the whole group (kill(-pgid)) and only after the identity
 * check, so a recycled pid is never signalled. Stopping and freezing are
 * confirmed in /proc, not assumed: signals are delivered asynchronously.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { ServiceState } from '../types.js';
import { RuntimeError } from '../types.js';
import { type ProcessIdentity, groupMembers, isFrozen, leaderAlive, ownsGroup, signalGroup } from './proc.js';

/** How long processes may take to disappear after SIGKILL before stop gives up. */
const KILL_WAIT_MS = 5000;

/** serviceState: running, paused (every process of the group stopped) or stopped (the leader is gone). */
export function serviceState(id: ProcessIdentity | undefined): Exclude<ServiceState, 'missing'> {
  if (!id || !leaderAlive(id)) return 'stopped';
  const members = groupMembers(id);
  return members.length > 0 && members.every((m) => isFrozen(m, members)) ? 'paused' : 'running';
}

/** signalOwnGroup sends sig to the group if it is still ours. */
export function signalOwnGroup(id: ProcessIdentity, sig: NodeJS.Signals): void {
  if (ownsGroup(id)) signalGroup(id.pid, sig);
}

/** stopGroup ends every process of the group: SIGTERM, then SIGKILL past stopTimeoutMs. */
export async function stopGroup(id: ProcessIdentity, stopTimeoutMs: number): Promise<void> {
  if (groupMembers(id).length === 0) return;
  // TERM first, then CONT: a frozen process resumes with the TERM already pending.
  signalGroup(id.pid, 'SIGTERM');
  signalGroup(id.pid, 'SIGCONT');
  if (await waitGone(id, stopTimeoutMs)) return;
  signalOwnGroup(id, 'SIGKILL');
  if (await waitGone(id, KILL_WAIT_MS)) return;
  throw new RuntimeError(`processes of group ${id.pid} still run ${KILL_WAIT_MS} ms after SIGKILL`);
}

/** freezeGroup sends SIGSTOP and returns once every thread of every member is stopped. */
export async function freezeGroup(id: ProcessIdentity, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (let i = 0; ; i++) {
    // Sent again each round: it also reaches a child forked while the others were stopping.
    signalOwnGroup(id, 'SIGSTOP');
    const members = groupMembers(id);
    const running = members.filter((m) => !isFrozen(m, members));
    if (running.length === 0) return;
    if (Date.now() >= deadline) {
      const which = running.map((m) => `${m.pid} (state ${m.state})`).join(', ');
      throw new RuntimeError(`processes did not stop within ${timeoutMs} ms: ${which}`);
    }
    await sleep(i < 20 ? 1 : 10);
  }
}

/** waitGone polls until no process of the group is left; false on timeout. */
async function waitGone(id: ProcessIdentity, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  for (let i = 0; ; i++) {
    if (groupMembers(id).length === 0) return true;
    if (Date.now() >= deadline) return false;
    await sleep(Math.min(1 + i, 20));
  }
}
