/**
 * The catalogue webhooks' contract on SQLite (a file per test in a temp
 * directory); the same suite runs on PostgreSQL in
 * test/catalogue-postgres.test.ts.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll } from 'vitest';
import { webhooksSuite } from './webhooks-testing.js';

let dir: string;
let n = 0;
beforeAll(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'kova-webhooks-'));
});
afterAll(() => {
  fs.rmSync(dir, { recursive: true, force: true });
});

webhooksSuite('SQLite', { fresh: () => Promise.resolve(`sqlite:${path.join(dir, `w${++n}.db`)}`) });
