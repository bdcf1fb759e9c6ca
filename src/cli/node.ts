/**
 * node: `kova node`, a provider node in network mode: the runtime, volumes
 * and snapshots of `kova serve`, driven by a control plane it dials out to.
 */
import type { Command } from 'commander';
import type { NodeConfigInput } from '../app/node-config.js';
import { type Io, note } from './output.js';

export function registerNode(program: Command, io: Io): void {
  program
    .command('node')
    .description('run this machine as a node of a control plane (flags override KOVA_* environment variables)')
    .option('--control-plane <urls>', "the control plane's URL, or several replicas' separated by commas [KOVA_CONTROL_PLANE]")
    .option('--token <token>', "this node's token, kova_node_… [KOVA_NODE_TOKEN]")
    .option('--ca <file>', 'PEM certificate to trust for https control-plane URLs (self-signed) [KOVA_CONTROL_PLANE_CA]')
    .option('--data-dir <dir>', 'database, volumes and snapshots [KOVA_DATA_DIR] (default ./.kova)')
    .option(
      '--runtime <kind>',
      'auto, docker or process [KOVA_RUNTIME] (default auto: Docker, and no start if it does not answer; process: no isolation, development only)',
    )
    .option('--docker-host <url>', 'Docker socket, unix:///path [KOVA_DOCKER_HOST] (default /var/run/docker.sock)')
    .option('--docker-network <mode>', 'network mode of containers [KOVA_DOCKER_NETWORK] (default bridge)')
    .option(
      '--offsite <url>',
      "copy every deployment's snapshots to s3://BUCKET/PREFIX, encrypted; every node of a network names the same [KOVA_OFFSITE] (default: none)",
    )
    .option('--s3-endpoint <url>', 'S3-compatible service of --offsite [KOVA_S3_ENDPOINT] (default AWS S3)')
    .option('--offsite-key-file <file>', "the operator's master key for off-node copies [KOVA_OFFSITE_KEY_FILE]")
    .option('--min-snapshot-interval <duration>', 'smallest automatic snapshot interval [KOVA_MIN_SNAPSHOT_INTERVAL] (default 1h)')
    .option('--gc-interval <duration>', 'batched gc runs this long after the first snapshot delete [KOVA_GC_INTERVAL] (default 1h)')
    .option('--stop-timeout <seconds>', 'grace period when stopping services [KOVA_STOP_TIMEOUT] (default 10)')
    .option('--log-level <level>', 'trace, debug, info, warn, error [KOVA_LOG_LEVEL] (default info)')
    .action(async (o: Record<string, string | undefined>) => {
      const flags: NodeConfigInput = {
        controlPlane: o.controlPlane,
        token: o.token,
        ca: o.ca,
        dataDir: o.dataDir,
        runtime: o.runtime,
        dockerHost: o.dockerHost,
        dockerNetwork: o.dockerNetwork,
        offsite: o.offsite,
        s3Endpoint: o.s3Endpoint,
        offsiteKeyFile: o.offsiteKeyFile,
        minSnapshotIntervalMs: o.minSnapshotInterval,
        gcIntervalMs: o.gcInterval,
        stopTimeoutSec: o.stopTimeout,
        logLevel: o.logLevel,
      };
      // Loaded here, not at the top: other commands need none of the node.
      const [{ loadNodeConfig }, { startNode }, { PROCESS_ISOLATION_WARNING }] = await Promise.all([
        import('../app/node-config.js'),
        import('../app/node.js'),
        import('../services/views.js'),
      ]);
      const cfg = loadNodeConfig(flags);
      const node = await startNode(cfg);
      if (node.services.ctx.runtime.kind === 'process') note(io, `WARNING: ${PROCESS_ISOLATION_WARNING}`);
      note(io, `kova node is running; control plane: ${cfg.controlPlanes.join(', ')}`);
      await new Promise<void>((resolve, reject) => {
        const stop = (): void => {
          process.off('SIGINT', stop);
          process.off('SIGTERM', stop);
          note(io, 'stopping…');
          void node.close().then(resolve, resolve);
        };
        process.on('SIGINT', stop);
        process.on('SIGTERM', stop);
        // A refused token ends the node: the error becomes the exit message and code 1.
        node.done.catch((err: unknown) => {
          process.off('SIGINT', stop);
          process.off('SIGTERM', stop);
          reject(err as Error);
        });
      });
    });
}
