/**
 * webhooks: `kova webhooks list|add|rm|deliveries`: the caller's webhooks
 * (docs/api.md, "Webhooks") and their delivery logs.
 */
import type { Command } from 'commander';
import { note, printJson, println, table } from '../output.js';
import type { Webhook, WebhookDelivery } from './api-client.js';
import { type ClientContext, type CommonOpts, client, clientCommand } from './common.js';
import { ago } from './format.js';

/** The event names the server accepts (docs/api.md); the server checks them. */
const EVENTS_HELP = 'snapshot.failed, snapshot.missed, restore.completed, restore.failed, offsite.failed, verification.failed';

function lastDelivery(w: Webhook, now: number): string {
  const d = w.lastDelivery;
  return d ? `${d.event} ${d.status} ${ago(d.createdAt, now)}` : '-';
}

function outcome(d: WebhookDelivery): string {
  if (d.status === 'delivered') return `HTTP ${d.responseStatus ?? ''}`.trim();
  return d.error ?? (d.responseStatus === null ? '' : `HTTP ${d.responseStatus}`);
}

export function registerWebhooks(program: Command, ctx: ClientContext): void {
  const { io } = ctx;
  const webhooks = program
    .command('webhooks')
    .alias('webhook')
    .description('manage the webhooks that tell you about failed snapshots and restores');

  clientCommand(webhooks, 'list', 'list your webhooks, newest first')
    .alias('ls')
    .action(async (o: CommonOpts) => {
      const list = await (await client(ctx, o)).listWebhooks();
      if (o.json) return printJson(io, list);
      if (list.length === 0) return println(io, 'no webhooks');
      const now = Date.now();
      table(
        io,
        ['ID', 'URL', 'EVENTS', 'CREATED', 'LAST DELIVERY'],
        list.map((w) => [w.id, w.url, w.events.join(','), ago(w.createdAt, now), lastDelivery(w, now)]),
      );
    });

  clientCommand(webhooks, 'add', 'add a webhook; prints its id and, once, its signing secret')
    .argument('<url>', 'http:// or https:// URL the events are posted to')
    .requiredOption('--event <event...>', `events to send (${EVENTS_HELP})`)
    .option('--secret <secret>', 'the signing secret (16 to 256 printable characters; default: generated)')
    .action(async (url: string, o: CommonOpts & { event: string[]; secret?: string }) => {
      const events = o.event.flatMap((e) => e.split(',')).filter((e) => e !== '');
      const { webhook, secret } = await (await client(ctx, o)).createWebhook(url, events, o.secret);
      if (o.json) return printJson(io, { webhook, secret });
      println(io, webhook.id);
      println(io, `secret: ${secret}`);
      note(io, 'the secret is shown only now: keep it to check the X-Kova-Signature of each request');
    });

  clientCommand(webhooks, 'rm', 'delete a webhook and its delivery log')
    .alias('delete')
    .argument('<webhook>', 'webhook id')
    .action(async (id: string, o: CommonOpts) => {
      await (await client(ctx, o)).deleteWebhook(id);
      if (o.json) return printJson(io, { deleted: id });
      println(io, `deleted webhook ${id}`);
    });

  clientCommand(webhooks, 'deliveries', "show a webhook's delivery log, newest first")
    .argument('<webhook>', 'webhook id')
    .option('--limit <n>', 'deliveries to show (1 to 200)', '50')
    .action(async (id: string, o: CommonOpts & { limit: string }) => {
      const page = await (await client(ctx, o)).webhookDeliveries(id, { limit: Number(o.limit) });
      if (o.json) return printJson(io, page.deliveries);
      if (page.deliveries.length === 0) return println(io, 'no deliveries');
      const now = Date.now();
      table(
        io,
        ['ID', 'EVENT', 'STATUS', 'ATTEMPTS', 'CREATED', 'RESULT', 'NEXT ATTEMPT'],
        page.deliveries.map((d) => [
          d.id,
          d.event,
          d.status,
          String(d.attempts),
          ago(d.createdAt, now),
          outcome(d),
          d.nextAttemptAt ? ago(d.nextAttemptAt, now) : '',
        ]),
      );
      if (page.cursor) note(io, `more deliveries than shown: pass a larger --limit`);
    });
}
