/**
 * nodes: `kova nodes add|list|drain|remove`, the operator's view of the
 * nodes in the control plane's database. `add` prints the node's token once
 * (only its hash is stored); `remove` is refused while deployments are
 * placed on the node.
 */
import type { Command } from 'commander';
import { type Catalogue, type CatalogueNode, nodeStatus } from '../control/catalogue.js';
import { NodeNotFoundError } from '../control/store/errors.js';
import { iso, systemClock } from '../core/clock.js';
import { InvalidInputError } from '../core/errors.js';
import { formatBytes, parseDuration } from '../core/units.js';
import { DATABASE_OPTION, databaseUrl, withCatalogue } from './catalogue.js';
import { type Io, printJson, println, table } from './output.js';

/** After how long without a heartbeat `list` shows a node offline (the control plane's default). */
const DEFAULT_NODE_TIMEOUT = '30s';

function capacitySummary(n: CatalogueNode): string {
  const c = n.capacity;
  if (!c) return '-';
  const health = c.health === 'ok' ? '' : ` (${c.health})`;
  return `${formatBytes(c.diskFreeBytes)} free of ${formatBytes(c.diskTotalBytes)}, ${c.runningServices} running${health}`;
}

async function findNode(c: Catalogue, name: string): Promise<CatalogueNode> {
  const n = await c.node(name);
  if (!n) throw new NodeNotFoundError(name);
  return n;
}

export function registerNodes(program: Command, io: Io): void {
  const nodes = program.command('nodes').description("manage the nodes in the control plane's database");

  nodes
    .command('add')
    .description("add a node; prints its token on the last line (shown once: give it to the node's `kova node`)")
    .argument('<name>', 'a unique name: lower-case letters, digits, . - _')
    .option(...DATABASE_OPTION)
    .action(async (name: string, o: { database?: string }) => {
      await withCatalogue(databaseUrl(o.database), async (c) => {
        const { hashNodeToken, newNodeToken } = await import('../control/store/index.js');
        const token = newNodeToken();
        const node = await c.addNode(name, hashNodeToken(token), systemClock.now());
        println(io, `added node ${node.name} (${node.id}); its token:`);
        println(io, token);
      });
    });

  nodes
    .command('list')
    .description('list nodes: status, last heartbeat, capacity, deployments')
    .option('--json', 'print JSON')
    .option('--node-timeout <duration>', 'offline after this long without a heartbeat', DEFAULT_NODE_TIMEOUT)
    .option(...DATABASE_OPTION)
    .action(async (o: { json?: boolean; nodeTimeout: string; database?: string }) => {
      const timeoutMs = parseDuration(o.nodeTimeout);
      if (timeoutMs === null) throw new InvalidInputError(`--node-timeout ${o.nodeTimeout} is not a duration like 30s or 2m`);
      await withCatalogue(databaseUrl(o.database), async (c) => {
        const now = systemClock.now();
        const list = await c.nodes();
        const rows = list.map((n) => ({
          id: n.id,
          name: n.name,
          status: nodeStatus(n, now, timeoutMs),
          draining: n.draining,
          lastHeartbeatAt: n.lastHeartbeatAt === null ? null : iso(n.lastHeartbeatAt),
          capacity: n.capacity,
          deployments: n.deployments,
          version: n.version,
          runtime: n.runtime,
          createdAt: iso(n.createdAt),
        }));
        if (o.json) return printJson(io, rows);
        if (rows.length === 0) return println(io, 'no nodes');
        table(
          io,
          ['NAME', 'ID', 'STATUS', 'LAST HEARTBEAT', 'CAPACITY', 'DEPLOYMENTS'],
          rows.map((r, i) => [
            r.name,
            r.id,
            r.draining && r.status === 'offline' ? 'offline, draining' : r.status,
            r.lastHeartbeatAt ?? 'never',
            capacitySummary(list[i]!),
            String(r.deployments),
          ]),
        );
      });
    });

  nodes
    .command('drain')
    .description('stop placing new deployments on a node (those on it stay); --undo to place again')
    .argument('<name>', 'the node (name or id)')
    .option('--undo', 'end draining')
    .option(...DATABASE_OPTION)
    .action(async (name: string, o: { undo?: boolean; database?: string }) => {
      await withCatalogue(databaseUrl(o.database), async (c) => {
        const n = await findNode(c, name);
        await c.setDraining(n.id, !o.undo);
        println(io, o.undo ? `node ${n.name} takes new deployments again` : `node ${n.name} is draining: it gets no new deployments`);
      });
    });

  nodes
    .command('remove')
    .description('remove a node and its token; refused while deployments are placed on it')
    .argument('<name>', 'the node (name or id)')
    .option(...DATABASE_OPTION)
    .action(async (name: string, o: { database?: string }) => {
      await withCatalogue(databaseUrl(o.database), async (c) => {
        const n = await findNode(c, name);
        await c.removeNode(n.id);
        println(io, `removed node ${n.name} (${n.id})`);
      });
    });
}
