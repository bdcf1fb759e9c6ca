/**
 * store: all tables of one database, and transactions across them.
 */
import { ApiKeys } from './api-keys.js';
import { type Db, openDatabase } from './database.js';
import { Deployments } from './deployments.js';
import { GcDue } from './gc-due.js';
import { Jobs } from './jobs.js';
import { Offsite } from './offsite.js';
import { Restores } from './restores.js';
import { Settings } from './settings.js';
import { Snapshots } from './snapshots.js';
import { Users } from './users.js';
import { Verifications } from './verifications.js';
import { Webhooks } from './webhooks.js';

export class Store {
  readonly users: Users;
  readonly apiKeys: ApiKeys;
  readonly deployments: Deployments;
  readonly snapshots: Snapshots;
  readonly restores: Restores;
  readonly settings: Settings;
  readonly jobs: Jobs;
  readonly gcDue: GcDue;
  readonly webhooks: Webhooks;
  readonly offsite: Offsite;
  readonly verifications: Verifications;

  constructor(readonly db: Db) {
    this.users = new Users(db);
    this.apiKeys = new ApiKeys(db);
    this.deployments = new Deployments(db);
    this.snapshots = new Snapshots(db);
    this.restores = new Restores(db);
    this.settings = new Settings(db);
    this.jobs = new Jobs(db);
    this.gcDue = new GcDue(db);
    this.webhooks = new Webhooks(db);
    this.offsite = new Offsite(db);
    this.verifications = new Verifications(db);
  }

  static open(file: string): Store {
    return new Store(openDatabase(file));
  }

  /** tx runs fn in one transaction: all its changes happen, or none. */
  tx<T>(fn: () => T): T {
    return this.db.transaction(fn)();
  }

  close(): void {
    this.db.close();
  }
}
