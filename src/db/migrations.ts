/**
 * migrations: the schema, one entry per version. Never edit a released
 * entry; append a new one. Times are milliseconds since the epoch.
 */
export const MIGRATIONS: readonly string[] = [
  `
  CREATE TABLE users (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    created_at INTEGER NOT NULL
  );
  CREATE TABLE api_keys (
    prefix TEXT PRIMARY KEY,
    user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    secret_hash TEXT NOT NULL,
    label TEXT,
    created_at INTEGER NOT NULL,
    last_used_at INTEGER,
    revoked_at INTEGER
  );
  CREATE TABLE deployments (
    id TEXT PRIMARY KEY,
    user_id TEXT NOT NULL REFERENCES users(id),
    name TEXT NOT NULL,
    sdl TEXT NOT NULL,
    manifest TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('active', 'closed')),
    cloned_from TEXT,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    closed_at INTEGER
  );
  CREATE INDEX deployments_by_user ON deployments(user_id, created_at);
  CREATE TABLE snapshots (
    id TEXT PRIMARY KEY,
    deployment_id TEXT NOT NULL REFERENCES deployments(id),
    label TEXT,
    status TEXT NOT NULL CHECK (status IN ('creating', 'ready', 'failed', 'deleting')),
    trigger TEXT NOT NULL CHECK (trigger IN ('manual', 'automatic', 'before-update', 'before-restore')),
    created_at INTEGER NOT NULL,
    ready_at INTEGER,
    engine_id TEXT,
    size_bytes INTEGER,
    stored_bytes INTEGER,
    files INTEGER,
    consistency TEXT CHECK (consistency IN ('frozen', 'live')),
    freeze_ms INTEGER,
    error TEXT,
    warning TEXT,
    progress_done INTEGER,
    progress_total INTEGER
  );
  CREATE INDEX snapshots_by_deployment ON snapshots(deployment_id, created_at);
  CREATE TABLE restores (
    id TEXT PRIMARY KEY,
    deployment_id TEXT NOT NULL REFERENCES deployments(id),
    snapshot_id TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('pending', 'restoring', 'swapping', 'completed', 'failed')),
    safety_snapshot INTEGER NOT NULL,
    safety_snapshot_id TEXT,
    journal TEXT,
    created_at INTEGER NOT NULL,
    started_at INTEGER,
    finished_at INTEGER,
    downtime_ms INTEGER,
    error TEXT,
    progress_done INTEGER,
    progress_total INTEGER
  );
  CREATE INDEX restores_by_deployment ON restores(deployment_id, created_at);
  CREATE TABLE snapshot_settings (
    deployment_id TEXT PRIMARY KEY REFERENCES deployments(id),
    enabled INTEGER NOT NULL,
    interval_ms INTEGER NOT NULL,
    retention INTEGER NOT NULL,
    next_run_at INTEGER,
    updated_at INTEGER NOT NULL
  );
  CREATE TABLE jobs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    deployment_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    payload TEXT NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('queued', 'running', 'done', 'failed')),
    attempts INTEGER NOT NULL DEFAULT 0,
    error TEXT,
    created_at INTEGER NOT NULL,
    started_at INTEGER,
    finished_at INTEGER
  );
  CREATE INDEX jobs_by_state ON jobs(state, id);
  CREATE INDEX jobs_by_deployment ON jobs(deployment_id, state);
  `,
  `
  -- The interval as the user wrote it ("24h" stays "24h", not "1d").
  ALTER TABLE snapshot_settings ADD COLUMN interval_text TEXT;
  `,
  `
  -- Which snapshot volume a restore puts into which current volume (JSON).
  ALTER TABLE restores ADD COLUMN volumes TEXT;
  `,
  `
  -- Deployments whose repository holds garbage from deleted snapshots: gc
  -- runs in a batch at due_at (since: the first delete that made it due).
  CREATE TABLE gc_due (
    deployment_id TEXT PRIMARY KEY REFERENCES deployments(id),
    since INTEGER NOT NULL,
    due_at INTEGER NOT NULL
  );
  `,
  `
  -- Calendar retention tiers: the newest automatic snapshot of each of the last N hours, days, weeks, months (NULL = not set).
  ALTER TABLE snapshot_settings ADD COLUMN keep_hourly INTEGER;
  ALTER TABLE snapshot_settings ADD COLUMN keep_daily INTEGER;
  ALTER TABLE snapshot_settings ADD COLUMN keep_weekly INTEGER;
  ALTER TABLE snapshot_settings ADD COLUMN keep_monthly INTEGER;
  `,
  `
  -- A restore of selected paths: {paths, mode, into, items} (JSON); NULL for a full restore.
  ALTER TABLE restores ADD COLUMN selection TEXT;
  `,
  `
  -- Webhooks: each user's receivers of event notifications, and every
  -- delivery to them (pending ones are resumed after a restart). The secret
  -- is kept as given: the server signs each request with it.
  CREATE TABLE webhooks (
    id TEXT PRIMARY KEY,
    user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    url TEXT NOT NULL,
    events TEXT NOT NULL,
    secret TEXT NOT NULL,
    created_at INTEGER NOT NULL
  );
  CREATE INDEX webhooks_by_user ON webhooks(user_id, created_at);
  CREATE TABLE webhook_deliveries (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    webhook_id TEXT NOT NULL REFERENCES webhooks(id) ON DELETE CASCADE,
    event_id TEXT NOT NULL,
    event TEXT NOT NULL,
    body TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('pending', 'delivered', 'failed')),
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at INTEGER,
    response_status INTEGER,
    error TEXT,
    created_at INTEGER NOT NULL,
    last_attempt_at INTEGER,
    finished_at INTEGER
  );
  CREATE INDEX webhook_deliveries_by_hook ON webhook_deliveries(webhook_id, seq);
  CREATE INDEX webhook_deliveries_due ON webhook_deliveries(status, next_attempt_at);
  -- Missed automatic snapshots: the due time the scheduler last queued, and
  -- the due time a snapshot.missed event was last sent for.
  ALTER TABLE snapshot_settings ADD COLUMN last_due_at INTEGER;
  ALTER TABLE snapshot_settings ADD COLUMN missed_due_at INTEGER;
  `,
  `
  -- Network mode (kova node): every operation id the node applied, with its result, so a repeat is answered, not re-applied.
  CREATE TABLE applied_operations (
    id TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    result TEXT NOT NULL,
    applied_at INTEGER NOT NULL
  );
  -- Per deployment, a version that grows with every change to its rows (the triggers below), the version of its
  -- last change that is not progress alone, the version the control plane acknowledged and a digest of the live part
  -- (service states, volume bytes) last counted as a change.
  CREATE TABLE sync_versions (
    deployment_id TEXT PRIMARY KEY,
    version INTEGER NOT NULL,
    urgent_version INTEGER NOT NULL,
    acked INTEGER NOT NULL DEFAULT 0,
    live_hash TEXT
  );
  ${syncTriggers()}
  `,
  `
  -- Off-node copies (services/offsite-service.ts). Per snapshot queued for
  -- copying: its state in the bucket; rows not yet copied are the pending
  -- copies, resumed after a restart.
  CREATE TABLE offsite_copies (
    snapshot_id TEXT PRIMARY KEY,
    deployment_id TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('pending', 'copying', 'copied', 'failed')),
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at INTEGER NOT NULL,
    copied_at INTEGER,
    error TEXT,
    created_at INTEGER NOT NULL
  );
  CREATE INDEX offsite_copies_due ON offsite_copies(status, next_attempt_at);
  CREATE INDEX offsite_copies_by_deployment ON offsite_copies(deployment_id);
  -- Snapshot records to delete from a deployment's bucket repository.
  CREATE TABLE offsite_deletes (
    deployment_id TEXT NOT NULL,
    engine_id TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at INTEGER NOT NULL,
    PRIMARY KEY (deployment_id, engine_id)
  );
  -- Batched gc of a deployment's bucket repository, due at due_at.
  CREATE TABLE offsite_gc_due (
    deployment_id TEXT PRIMARY KEY,
    due_at INTEGER NOT NULL
  );
  -- A deployment's choice about off-node copies; no row: the default (on when a target is configured).
  CREATE TABLE offsite_settings (
    deployment_id TEXT PRIMARY KEY,
    enabled INTEGER NOT NULL
  );
  `,
  `
  -- Scheduled verification (services/verification-service.ts): each deployment's setting (on by default, weekly),
  -- where its rotation stands, every check, and the snapshots a failed check found damaged.
  ALTER TABLE snapshot_settings ADD COLUMN verify_enabled INTEGER NOT NULL DEFAULT 1;
  ALTER TABLE snapshot_settings ADD COLUMN verify_interval_ms INTEGER NOT NULL DEFAULT 604800000;
  ALTER TABLE snapshot_settings ADD COLUMN verify_interval_text TEXT;
  CREATE TABLE verification_schedule (
    deployment_id TEXT PRIMARY KEY REFERENCES deployments(id),
    next_run_at INTEGER NOT NULL,
    next_part INTEGER NOT NULL,
    parts INTEGER NOT NULL
  );
  CREATE TABLE verifications (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    deployment_id TEXT NOT NULL REFERENCES deployments(id),
    trigger TEXT NOT NULL CHECK (trigger IN ('scheduled', 'manual')),
    part INTEGER,
    parts INTEGER NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('queued', 'running', 'ok', 'failed')),
    created_at INTEGER NOT NULL,
    started_at INTEGER,
    finished_at INTEGER,
    steps_done INTEGER NOT NULL DEFAULT 0,
    bytes_read INTEGER NOT NULL DEFAULT 0,
    packs_read INTEGER NOT NULL DEFAULT 0,
    findings INTEGER NOT NULL DEFAULT 0,
    finding_list TEXT NOT NULL DEFAULT '[]',
    damaged_snapshots TEXT NOT NULL DEFAULT '[]',
    error TEXT
  );
  CREATE INDEX verifications_by_deployment ON verifications(deployment_id, seq);
  ALTER TABLE snapshots ADD COLUMN damaged_at INTEGER;
  CREATE TRIGGER sync_snapshots_damaged AFTER UPDATE OF damaged_at ON snapshots BEGIN
    INSERT INTO sync_versions (deployment_id, version, urgent_version) VALUES (NEW.deployment_id, 1, 1)
      ON CONFLICT (deployment_id) DO UPDATE SET version = version + 1, urgent_version = version + 1;
  END;
  `,
  `
  -- Network mode: a deployment's document carries its snapshots' off-node copies and its off-node
  -- setting (node/state-sync.ts), so changes to them bump its version like its other rows.
  ${offsiteSyncTriggers()}
  `,
  `
  -- Network mode: a deployment's document carries where its checks stand (node/state-sync.ts), so its checks and
  -- their schedule bump its version like its other rows; a running check's counters alone are progress.
  ${verificationSyncTriggers()}
  -- Every deployment's document is sent once more, now with where its checks stand.
  UPDATE sync_versions SET version = version + 1, urgent_version = version + 1;
  `,
];

/**
 * syncTriggers: the triggers that bump sync_versions on every change to a
 * deployment's rows. Changes to progress columns alone bump `version` but
 * not `urgent_version` (the node throttles those documents).
 */
function syncTriggers(): string {
  const bump = (dep: string, urgent: boolean): string =>
    `INSERT INTO sync_versions (deployment_id, version, urgent_version) VALUES (${dep}, 1, 1)
       ON CONFLICT (deployment_id) DO UPDATE SET version = version + 1${urgent ? ', urgent_version = version + 1' : ''};`;
  const trigger = (name: string, event: string, table: string, dep: string, urgent = true): string =>
    `CREATE TRIGGER sync_${name} AFTER ${event} ON ${table} BEGIN ${bump(dep, urgent)} END;`;
  const rows: Array<[string, string, string]> = [
    ['deployments', 'deployments', 'id'],
    ['settings', 'snapshot_settings', 'deployment_id'],
    ['jobs', 'jobs', 'deployment_id'],
  ];
  const out: string[] = [];
  for (const [name, table, col] of rows) {
    out.push(trigger(`${name}_insert`, 'INSERT', table, `NEW.${col}`));
    out.push(trigger(`${name}_update`, 'UPDATE', table, `NEW.${col}`));
    out.push(trigger(`${name}_delete`, 'DELETE', table, `OLD.${col}`));
  }
  const progressed: Array<[string, string]> = [
    [
      'snapshots',
      'label, status, trigger, created_at, ready_at, engine_id, size_bytes, stored_bytes, files, consistency, freeze_ms, error, warning',
    ],
    ['restores', 'snapshot_id, status, safety_snapshot, safety_snapshot_id, volumes, journal, started_at, finished_at, downtime_ms, error'],
  ];
  for (const [table, columns] of progressed) {
    out.push(trigger(`${table}_insert`, 'INSERT', table, 'NEW.deployment_id'));
    out.push(trigger(`${table}_delete`, 'DELETE', table, 'OLD.deployment_id'));
    out.push(trigger(`${table}_update`, `UPDATE OF ${columns}`, table, 'NEW.deployment_id'));
    out.push(trigger(`${table}_progress`, 'UPDATE OF progress_done, progress_total', table, 'NEW.deployment_id', false));
  }
  return out.join('\n  ');
}

/** verificationSyncTriggers: the triggers that bump sync_versions when a deployment's checks or their schedule change. */
function verificationSyncTriggers(): string {
  const bump = (row: string, urgent: boolean): string =>
    `INSERT INTO sync_versions (deployment_id, version, urgent_version) VALUES (${row}.deployment_id, 1, 1)
      ON CONFLICT (deployment_id) DO UPDATE SET version = version + 1${urgent ? ', urgent_version = version + 1' : ''};`;
  const trigger = (name: string, event: string, table: string, row: string, urgent = true): string =>
    `CREATE TRIGGER sync_${name} AFTER ${event} ON ${table} BEGIN
    ${bump(row, urgent)}
  END;`;
  return [
    trigger('verifications_insert', 'INSERT', 'verifications', 'NEW'),
    trigger('verifications_delete', 'DELETE', 'verifications', 'OLD'),
    trigger('verifications_update', 'UPDATE OF status, started_at, finished_at, damaged_snapshots, error', 'verifications', 'NEW'),
    trigger(
      'verifications_progress',
      'UPDATE OF steps_done, bytes_read, packs_read, findings, finding_list',
      'verifications',
      'NEW',
      false,
    ),
    trigger('verification_schedule_insert', 'INSERT', 'verification_schedule', 'NEW'),
    trigger('verification_schedule_update', 'UPDATE', 'verification_schedule', 'NEW'),
    trigger('verification_schedule_delete', 'DELETE', 'verification_schedule', 'OLD'),
  ].join('\n  ');
}

/** offsiteSyncTriggers: the triggers that bump sync_versions when a deployment's off-node copies or setting change. */
function offsiteSyncTriggers(): string {
  const out: string[] = [];
  for (const [name, table] of [
    ['offsite_copies', 'offsite_copies'],
    ['offsite_settings', 'offsite_settings'],
  ] as const) {
    for (const [event, row] of [
      ['INSERT', 'NEW'],
      ['UPDATE', 'NEW'],
      ['DELETE', 'OLD'],
    ] as const) {
      out.push(
        `CREATE TRIGGER sync_${name}_${event.toLowerCase()} AFTER ${event} ON ${table} BEGIN
    INSERT INTO sync_versions (deployment_id, version, urgent_version) VALUES (${row}.deployment_id, 1, 1)
      ON CONFLICT (deployment_id) DO UPDATE SET version = version + 1, urgent_version = version + 1;
  END;`,
      );
    }
  }
  return out.join('\n  ');
}
