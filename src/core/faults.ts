/**
 * faults: named crash points for tests. When the environment variable
 * KOVA_FAULT names a point, the process kills itself (SIGKILL, no cleanup)
 * on reaching it, which is how the crash-recovery tests stop the server at
 * an exact step of a restore or snapshot. Unset, a point costs one
 * comparison.
 */
const armed = process.env.KOVA_FAULT ?? '';

export function faultPoint(name: string): void {
  if (armed !== '' && armed === name) process.kill(process.pid, 'SIGKILL');
}
