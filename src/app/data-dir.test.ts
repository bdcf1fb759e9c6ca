/** data-dir: the data directory ends 0700, or the server refuses to start. */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ensurePrivateDataDir } from './data-dir.js';

let root: string;
let warnings: unknown[][];
const log = { warn: (...args: unknown[]) => void warnings.push(args) };
const mode = (f: string): number => fs.statSync(f).mode & 0o777;

beforeEach(() => {
  root = fs.mkdtempSync(path.join(os.tmpdir(), 'kova-datadir-'));
  warnings = [];
});
afterEach(() => {
  fs.rmSync(root, { recursive: true, force: true });
});

describe('ensurePrivateDataDir', () => {
  it('creates a missing directory 0700, quietly', () => {
    const dir = path.join(root, 'a', '.kova');
    expect(ensurePrivateDataDir(dir, log)).toBe(false);
    expect(mode(dir)).toBe(0o700);
    expect(warnings).toEqual([]);
  });

  it('leaves a private directory alone', () => {
    fs.chmodSync(root, 0o700);
    expect(ensurePrivateDataDir(root, log)).toBe(false);
    expect(warnings).toEqual([]);
  });

  it.each([0o755, 0o750, 0o701, 0o777])('narrows an existing Kova data directory of mode %o to 0700, with a warning', (m) => {
    fs.writeFileSync(path.join(root, 'kova.db'), '');
    fs.chmodSync(root, m);
    expect(ensurePrivateDataDir(root, log)).toBe(true);
    expect(mode(root)).toBe(0o700);
    expect(JSON.stringify(warnings)).toMatch(/0700/);
  });

  it('narrows an empty existing directory', () => {
    fs.chmodSync(root, 0o755);
    expect(ensurePrivateDataDir(root, log)).toBe(true);
    expect(mode(root)).toBe(0o700);
  });

  it('refuses, and changes nothing, for an open directory that is not a Kova data directory', () => {
    fs.writeFileSync(path.join(root, 'other-program.conf'), '');
    fs.chmodSync(root, 0o755);
    expect(() => ensurePrivateDataDir(root, log)).toThrow(
      expect.objectContaining({ code: 'DATA_DIR_UNSAFE', message: expect.stringMatching(/0755.*chmod 700/) }),
    );
    expect(mode(root)).toBe(0o755);
  });

  it.skipIf(process.getuid?.() !== 0)('refuses a directory owned by another user (needs root to chown)', () => {
    fs.chownSync(root, 12345, 12345);
    fs.chmodSync(root, 0o700);
    expect(() => ensurePrivateDataDir(root, log)).toThrow(
      expect.objectContaining({ code: 'DATA_DIR_UNSAFE', message: expect.stringMatching(/uid 12345/) }),
    );
  });
});
