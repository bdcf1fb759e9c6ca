/**
 * deployments: `kova deployments ls|get|create|update|restart|recover|close`.
 */
import fs from 'node:fs/promises';
import type { Command } from 'commander';
import { printJson, println, table } from '../output.js';
import { type ClientContext, type CommonOpts, client, clientCommand, confirm } from './common.js';
import { deploymentTable, printDeployment } from './format.js';
import { deploymentFailure, finishOperation, waitForDeployment } from './wait.js';

/** readSdl reads an SDL file, or stdin for "-". */
async function readSdl(file: string): Promise<string> {
  if (file !== '-') return fs.readFile(file, 'utf8');
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

export function registerDeployments(program: Command, ctx: ClientContext): void {
  const { io } = ctx;
  const deployments = program.command('deployments').alias('deployment').description('manage your deployments on a Kova server');
  const wait = ['--wait', 'wait until the operation has finished and the services run'] as const;

  clientCommand(deployments, 'ls', 'list your deployments, newest first')
    .alias('list')
    .action(async (o: CommonOpts) => {
      const list = await (await client(ctx, o)).listDeployments();
      if (o.json) return printJson(io, list);
      if (list.length === 0) return println(io, 'no deployments');
      const { headers, rows } = deploymentTable(list);
      table(io, headers, rows);
    });

  clientCommand(deployments, 'get', 'show a deployment, its services and volumes')
    .argument('<deployment>', 'deployment id')
    .action(async (id: string, o: CommonOpts) => {
      const d = await (await client(ctx, o)).getDeployment(id);
      if (o.json) return printJson(io, d);
      printDeployment(io, d);
    });

  clientCommand(deployments, 'create', 'create a deployment from an SDL file; prints its id')
    .requiredOption('-f, --file <sdl.yaml>', 'the SDL (version 2.0), or - for stdin')
    .option('--name <name>', 'a display name (default: the first service name)')
    .option(...wait)
    .action(async (o: CommonOpts & { file: string; name?: string; wait?: boolean }) => {
      const sdl = await readSdl(o.file);
      const c = await client(ctx, o);
      const d = await c.createDeployment(sdl, o.name);
      await finishOperation(io, c, d, o, {
        done: `created deployment ${d.id}`,
        pending: `deployment ${d.id} is being deployed (--wait waits for it)`,
      });
    });

  clientCommand(deployments, 'update', 'apply a new SDL and restart the services (a before-update snapshot is taken first)')
    .argument('<deployment>', 'deployment id')
    .requiredOption('-f, --file <sdl.yaml>', 'the new SDL, or - for stdin')
    .option('--no-snapshot', 'do not take a before-update snapshot')
    .option(...wait)
    .action(async (id: string, o: CommonOpts & { file: string; snapshot: boolean; wait?: boolean }) => {
      const sdl = await readSdl(o.file);
      const c = await client(ctx, o);
      const d = await c.updateDeployment(id, sdl, o.snapshot);
      await finishOperation(io, c, d, o, {
        done: `updated deployment ${d.id}`,
        pending: `deployment ${d.id} is being updated${o.snapshot ? ' after a before-update snapshot' : ''} (--wait waits for it)`,
      });
    });

  clientCommand(deployments, 'restart', 'restart the services')
    .argument('<deployment>', 'deployment id')
    .option(...wait)
    .action(async (id: string, o: CommonOpts & { wait?: boolean }) => {
      const c = await client(ctx, o);
      const d = await c.restartDeployment(id);
      await finishOperation(io, c, d, o, {
        done: `restarted deployment ${d.id}`,
        pending: `deployment ${d.id} is restarting (--wait waits for it)`,
      });
    });

  clientCommand(
    deployments,
    'recover',
    'network mode: run a deployment whose node is offline or gone on another node, from a snapshot copied off its node',
  )
    .argument('<deployment>', 'deployment id')
    .option('--snapshot <id>', 'the snapshot to start from (default: the newest one whose off-node copy is complete)')
    .option('-y, --yes', 'do not ask for confirmation')
    .option(...wait)
    .action(async (id: string, o: CommonOpts & { snapshot?: string; yes?: boolean; wait?: boolean }) => {
      const c = await client(ctx, o);
      await confirm(ctx, o, {
        action: `recover deployment ${id}`,
        question: `Recover deployment ${id} on another node from ${o.snapshot ? `snapshot ${o.snapshot}` : 'its newest copied snapshot'}?`,
        warning: [
          'Its volumes start from that snapshot: anything written after it on the lost node is not recovered.',
          'If the lost node comes back, it stops the deployment there and keeps its data directory for you to remove.',
        ],
      });
      const { deployment, recovery } = await c.recoverDeployment(id, o.snapshot);
      const final = o.wait ? await waitForDeployment(c, deployment.id) : deployment;
      const failure = o.wait ? deploymentFailure(final, `recovery of ${id}`) : null;
      if (o.json) printJson(io, { deployment: final, recovery });
      else {
        const from = recovery.fromNode.name ?? `${recovery.fromNode.id} (removed)`;
        println(io, final.id);
        println(
          io,
          `recovering on node ${recovery.toNode.name} (was ${from}) from snapshot ${recovery.snapshotId}, operation ${recovery.operationId}`,
        );
        if (o.wait && !failure) println(io, `recovered deployment ${final.id}; its services are running`);
      }
      if (failure) throw failure;
    });

  clientCommand(deployments, 'close', 'close a deployment: stop its services, delete its volumes and all its snapshots')
    .argument('<deployment>', 'deployment id')
    .option('-y, --yes', 'do not ask for confirmation')
    .action(async (id: string, o: CommonOpts & { yes?: boolean }) => {
      const c = await client(ctx, o);
      let what = `deployment ${id}`;
      if (!o.yes && ctx.terminal.interactive) {
        // Name what is about to go (and fail early on a wrong id).
        const d = await c.getDeployment(id);
        const n = d.snapshots?.count ?? 0;
        what = `deployment ${d.id} (${d.name}, ${n} snapshot${n === 1 ? '' : 's'})`;
      }
      await confirm(ctx, o, {
        action: `close deployment ${id}`,
        question: `Close ${what}?`,
        warning: [`Closing a deployment stops its services and deletes its volumes and all its snapshots. This cannot be undone.`],
      });
      const d = await c.closeDeployment(id);
      if (o.json) return printJson(io, d);
      println(io, `closed deployment ${d.id}`);
    });
}
