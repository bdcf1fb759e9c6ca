/**
 * images: builds the local images the integration tests run, with no
 * registry: a root filesystem made of busybox-static and its applet links,
 * imported through the Engine API. Idempotent: an image already present is
 * reused, so only the first run on a machine pays for the import (~1 s).
 */
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { DockerClient, streamError } from '../../src/runtime/docker/docker-client.js';

const execFileP = promisify(execFile);

export const BUSYBOX_IMAGE = 'kova-test/busybox:1';
const BUSYBOX_CANDIDATES = ['/bin/busybox', '/usr/bin/busybox', '/usr/local/bin/busybox'];

/**
 * ensureBusyboxImage makes sure `kova-test/busybox:1` exists and returns its
 * reference. The image has a POSIX shell and coreutils (sh, echo, cat, sleep,
 * sync, …) in /bin and no entrypoint.
 */
export async function ensureBusyboxImage(opts: { socketPath?: string } = {}): Promise<string> {
  const client = new DockerClient({ socketPath: opts.socketPath, timeoutMs: 120_000 });
  try {
    if (await client.imageExists(BUSYBOX_IMAGE)) return BUSYBOX_IMAGE;
    const tar = await busyboxRootfsTar();
    const [repo, tag] = BUSYBOX_IMAGE.split(':') as [string, string];
    const res = await client.request('POST', '/images/create', {
      query: { fromSrc: '-', repo, tag, changes: ['ENV PATH=/bin', 'CMD ["/bin/sh"]'] },
      body: tar,
      contentType: 'application/x-tar',
    });
    const err = streamError(res.body);
    if (err !== null) throw new Error(`importing ${BUSYBOX_IMAGE} failed: ${err}`);
    if (!(await client.imageExists(BUSYBOX_IMAGE))) throw new Error(`importing ${BUSYBOX_IMAGE} produced no image`);
    return BUSYBOX_IMAGE;
  } finally {
    client.close();
  }
}

/** Finds a statically linked busybox on this machine (Debian: busybox-static). */
function findStaticBusybox(): string {
  for (const p of BUSYBOX_CANDIDATES) {
    if (!fs.existsSync(p)) continue;
    if (isStaticElf(fs.readFileSync(p))) return p;
    throw new Error(`${p} is dynamically linked and cannot run alone in a container: install busybox-static`);
  }
  throw new Error('busybox not found: install busybox-static (apt-get install busybox-static)');
}

/** An ELF executable with no PT_INTERP program header needs no dynamic loader. */
function isStaticElf(b: Buffer): boolean {
  if (b.length < 64 || b.readUInt32BE(0) !== 0x7f454c46) return false;
  const is64 = b[4] === 2;
  const le = b[5] === 1;
  const u16 = (o: number): number => (le ? b.readUInt16LE(o) : b.readUInt16BE(o));
  const u32 = (o: number): number => (le ? b.readUInt32LE(o) : b.readUInt32BE(o));
  const phoff = is64 ? Number(le ? b.readBigUInt64LE(32) : b.readBigUInt64BE(32)) : u32(28);
  const phentsize = u16(is64 ? 54 : 42);
  const phnum = u16(is64 ? 56 : 44);
  for (let i = 0; i < phnum; i++) {
    if (u32(phoff + i * phentsize) === 3) return false; // PT_INTERP
  }
  return true;
}

/** Builds the root filesystem in a temp dir and returns it as a tar. */
async function busyboxRootfsTar(): Promise<Buffer> {
  const busybox = findStaticBusybox();
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'kova-busybox-rootfs-'));
  try {
    for (const d of ['bin', 'etc', 'tmp', 'proc', 'sys', 'dev', 'data']) fs.mkdirSync(path.join(root, d));
    fs.chmodSync(path.join(root, 'tmp'), 0o1777);
    fs.copyFileSync(busybox, path.join(root, 'bin', 'busybox'));
    fs.chmodSync(path.join(root, 'bin', 'busybox'), 0o755);
    const { stdout } = await execFileP(busybox, ['--list']);
    for (const applet of stdout.split('\n').map((s) => s.trim())) {
      if (applet === '' || applet === 'busybox' || applet.includes('/')) continue;
      fs.symlinkSync('busybox', path.join(root, 'bin', applet));
    }
    fs.writeFileSync(path.join(root, 'etc', 'passwd'), 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n');
    fs.writeFileSync(path.join(root, 'etc', 'group'), 'root:x:0:\nnogroup:x:65534:\n');
    const { stdout: tar } = await execFileP('tar', ['-C', root, '--numeric-owner', '--owner=0', '--group=0', '-cf', '-', '.'], {
      encoding: 'buffer',
      maxBuffer: 256 * 1024 * 1024,
    });
    return tar;
  } finally {
    fs.rmSync(root, { recursive: true, force: true });
  }
}
