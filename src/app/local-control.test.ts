/**
 * mirrorKeys: the catalogue's users and keys are copied into the node's
 * journal (what an off-node catalogue document takes along), revocations
 * included, and running it again changes nothing.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { CatalogueKeys } from '../control/keys.js';
import { ManualClock } from '../core/clock.js';
import { Store } from '../db/store.js';
import { mirrorKeys, openLocalCatalogue } from './local-control.js';

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
});

describe('mirrorKeys', () => {
  it("copies the catalogue's users and keys into kova.db, revocations included", async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'kova-mirror-'));
    dirs.push(dir);
    const clock = new ManualClock(1_700_000_000_000);
    const store = Store.open(path.join(dir, 'kova.db'));
    const catalogue = await openLocalCatalogue(dir, clock);
    try {
      const keys = new CatalogueKeys(catalogue, clock);
      const bob = await catalogue.ensureUser('bob', 'user', clock.now());
      const kept = await keys.create(bob.id, 'laptop');
      const gone = await keys.create(bob.id, 'old');
      // A journal user of the same name but another id, written before the catalogue existed.
      store.users.insert({ id: 'u_journal_carol', name: 'carol', createdAt: clock.now() });
      const carol = await catalogue.ensureUser('carol', 'user', clock.now());
      const carols = await keys.create(carol.id, null);

      await mirrorKeys(catalogue, store);
      expect(store.users.get(bob.id)).toMatchObject({ name: 'bob' });
      expect(store.users.get(carol.id)).toMatchObject({ name: carol.id });
      for (const k of [kept.key, gone.key, carols.key]) {
        const stored = (await catalogue.allKeys()).find((c) => c.prefix === k.prefix)!;
        expect(store.apiKeys.get(k.prefix)).toMatchObject({ userId: stored.userId, secretHash: stored.secretHash, revokedAt: null });
      }

      clock.advance(5_000);
      await keys.revoke(gone.key.prefix, bob.id);
      await mirrorKeys(catalogue, store);
      await mirrorKeys(catalogue, store);
      expect(store.apiKeys.get(gone.key.prefix)?.revokedAt).toBe(clock.now());
      expect(store.apiKeys.get(kept.key.prefix)?.revokedAt).toBeNull();
      expect(store.apiKeys.list()).toHaveLength(3);
    } finally {
      await catalogue.close();
      store.close();
    }
  });
});
