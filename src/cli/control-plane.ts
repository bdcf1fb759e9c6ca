/**
 * control-plane: `kova control-plane`, the API and dashboard of network
 * mode, from a catalogue in PostgreSQL; `kova node` processes dial out to it
 * and run the deployments. Several replicas may serve one database.
 */
import type { Command } from 'commander';
import type { ControlPlaneInput } from '../app/control-plane.js';
import { type Io, note } from './output.js';

export function registerControlPlane(program: Command, io: Io): void {
  program
    .command('control-plane')
    .description('serve the API, the dashboard and the node endpoints from a shared database (flags override KOVA_* variables)')
    .option('--database <url>', 'the catalogue, postgres://user:password@host/db [KOVA_DATABASE_URL] (required)')
    .option('--host <host>', 'address to listen on [KOVA_HOST] (default 127.0.0.1)')
    .option('--port <port>', 'port to listen on [KOVA_PORT] (default 8080)')
    .option('--node-timeout <duration>', 'a node without a heartbeat this long is offline [KOVA_NODE_TIMEOUT] (default 30s)')
    .option('--node-wait <duration>', "how long a request waits for its node's answer [KOVA_NODE_WAIT] (default 10s)")
    .option(
      '--min-snapshot-interval <duration>',
      "the nodes' smallest automatic snapshot interval [KOVA_MIN_SNAPSHOT_INTERVAL] (default 1h)",
    )
    .option('--rate-limit <n>', 'requests a minute per API key, all replicas together [KOVA_RATE_LIMIT] (default 100)')
    .option('--user-rate-limit <n>', 'requests a minute per user [KOVA_USER_RATE_LIMIT] (default 3 × --rate-limit)')
    .option('--tls-cert <file>', 'serve HTTPS with this PEM certificate (and chain) [KOVA_TLS_CERT] (with --tls-key)')
    .option('--tls-key <file>', 'the PEM private key of --tls-cert [KOVA_TLS_KEY]')
    .option(
      '--webhooks-allow-private',
      'let webhooks call loopback, private and link-local addresses [KOVA_WEBHOOKS_ALLOW_PRIVATE] (default: refused)',
    )
    .option('--log-level <level>', 'trace, debug, info, warn, error [KOVA_LOG_LEVEL] (default info)')
    .action(async (o: Record<string, string | undefined> & { webhooksAllowPrivate?: boolean }) => {
      const flags: ControlPlaneInput = {
        databaseUrl: o.database,
        host: o.host,
        port: o.port,
        nodeTimeoutMs: o.nodeTimeout,
        waitMs: o.nodeWait,
        minSnapshotIntervalMs: o.minSnapshotInterval,
        rateLimitPerMinute: o.rateLimit,
        userRateLimitPerMinute: o.userRateLimit,
        logLevel: o.logLevel,
        tlsCertFile: o.tlsCert,
        tlsKeyFile: o.tlsKey,
        webhooksAllowPrivate: o.webhooksAllowPrivate === true ? 'true' : undefined,
      };
      // Loaded here, not at the top: client commands need none of the server.
      const { loadControlPlaneConfig, startControlPlane } = await import('../app/control-plane.js');
      const server = await startControlPlane(loadControlPlaneConfig(flags));
      note(io, `kova control plane is serving on ${server.url} (dashboard: ${server.url}/, nodes: ${server.url}/node/v1)`);
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
