/**
 * serve: `kova serve`, the API and dashboard on this node.
 */
import type { Command } from 'commander';
import type { ConfigInput } from '../app/config.js';
import { type Io, note } from './output.js';

export function registerServe(program: Command, io: Io): void {
  program
    .command('serve')
    .description('serve the API and the dashboard (flags override KOVA_* environment variables)')
    .option('--data-dir <dir>', 'database, volumes and snapshots [KOVA_DATA_DIR] (default ./.kova)')
    .option('--host <host>', 'address to listen on [KOVA_HOST] (default 127.0.0.1)')
    .option('--port <port>', 'port to listen on [KOVA_PORT] (default 8080)')
    .option(
      '--runtime <kind>',
      'auto, docker or process [KOVA_RUNTIME] (default auto: Docker, and no start if it does not answer; process: no isolation, development only)',
    )
    .option('--docker-host <url>', 'Docker socket, unix:///path [KOVA_DOCKER_HOST] (default /var/run/docker.sock)')
    .option('--docker-network <mode>', 'network mode of containers [KOVA_DOCKER_NETWORK] (default bridge)')
    .option('--min-snapshot-interval <duration>', 'smallest automatic snapshot interval [KOVA_MIN_SNAPSHOT_INTERVAL] (default 1h)')
    .option('--gc-interval <duration>', 'batched gc runs this long after the first snapshot delete [KOVA_GC_INTERVAL] (default 1h)')
    .option('--rate-limit <n>', 'requests a minute per API key [KOVA_RATE_LIMIT] (default 100)')
    .option('--user-rate-limit <n>', 'requests a minute per user, all keys together [KOVA_USER_RATE_LIMIT] (default 3 × --rate-limit)')
    .option('--max-keys-per-user <n>', 'active API keys a user may have [KOVA_MAX_KEYS_PER_USER] (default 20)')
    .option('--stop-timeout <seconds>', 'grace period when stopping services [KOVA_STOP_TIMEOUT] (default 10)')
    .option(
      '--metrics-token-file <file>',
      'bearer token GET /metrics takes [KOVA_METRICS_TOKEN_FILE] (default DATA_DIR/metrics.token, created if missing)',
    )
    .option(
      '--webhooks-allow-private',
      'let webhooks call loopback, private and link-local addresses [KOVA_WEBHOOKS_ALLOW_PRIVATE] (default: refused)',
    )
    .option('--offsite <url>', 'copy every snapshot and the catalogue to s3://BUCKET/PREFIX, encrypted [KOVA_OFFSITE] (default: none)')
    .option('--s3-endpoint <url>', 'S3-compatible service of --offsite/--recover-from [KOVA_S3_ENDPOINT] (default AWS S3)')
    .option('--offsite-key-file <file>', "the operator's master key for off-node copies [KOVA_OFFSITE_KEY_FILE]")
    .option(
      '--recover-from <url>',
      'on a fresh --data-dir, bring a lost node back from s3://BUCKET/PREFIX before serving [KOVA_RECOVER_FROM]; copies then go on there unless --offsite says otherwise',
    )
    .option('--log-level <level>', 'trace, debug, info, warn, error [KOVA_LOG_LEVEL] (default info)')
    .action(async (o: Record<string, string | boolean | undefined>) => {
      const flags: ConfigInput = {
        dataDir: o.dataDir,
        host: o.host,
        port: o.port,
        runtime: o.runtime,
        dockerHost: o.dockerHost,
        dockerNetwork: o.dockerNetwork,
        minSnapshotIntervalMs: o.minSnapshotInterval,
        gcIntervalMs: o.gcInterval,
        rateLimitPerMinute: o.rateLimit,
        userRateLimitPerMinute: o.userRateLimit,
        maxKeysPerUser: o.maxKeysPerUser,
        stopTimeoutSec: o.stopTimeout,
        logLevel: o.logLevel,
        metricsTokenFile: o.metricsTokenFile,
        webhooksAllowPrivate: o.webhooksAllowPrivate,
        offsite: o.offsite,
        s3Endpoint: o.s3Endpoint,
        offsiteKeyFile: o.offsiteKeyFile,
        recoverFrom: o.recoverFrom,
      };
      // Loaded here, not at the top: every other command, `kova repo` above
      // all, would pay about 0.1 s at each start for modules it never uses.
      const [{ loadConfig }, { startServer }, { PROCESS_ISOLATION_WARNING }] = await Promise.all([
        import('../app/config.js'),
        import('../app/server.js'),
        import('../services/views.js'),
      ]);
      const server = await startServer(loadConfig(flags));
      if (server.services.ctx.runtime.kind === 'process') note(io, `WARNING: ${PROCESS_ISOLATION_WARNING}`);
      if (server.recovered)
        note(
          io,
          `recovered ${server.recovered.users} users, ${server.recovered.deployments} deployments and ${server.recovered.snapshots} snapshots`,
        );
      if (server.adminKeyFile)
        note(io, `created user "admin"; its API key is in ${server.adminKeyFile} (sign in to the dashboard with it)`);
      note(io, `kova is serving on ${server.url} (dashboard: ${server.url}/)`);
      await new Promise<void>((resolve) => {
        const stop = (): void => {
          process.off('SIGINT', stop);
          process.off('SIGTERM', stop);
          note(io, 'stopping…');
          void server.close().then(resolve, resolve);
        };
        process.on('SIGINT', stop);
        process.on('SIGTERM', stop);
      });
    });
}
