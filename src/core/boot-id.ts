/**
 * boot-id: this machine's boot id (/proc/sys/kernel/random/boot_id), which
 * changes at every reboot. A pid and start time recorded on disk only name
 * the same process while the boot id is the same; locks and process records
 * store it for that reason. Empty when the kernel does not provide it.
 */
import { readFileSync } from 'node:fs';

function readBootId(): string {
  try {
    return readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim();
  } catch {
    return '';
  }
}

/** The boot id, read once at load. */
export const BOOT_ID = readBootId();
