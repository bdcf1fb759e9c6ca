/**
 * SDL parsing (parse-sdl.ts, sizes.ts): valid SDLs become the expected
 * Manifest; every rule violation is reported with the path of the offending
 * field; hostile YAML (huge, alias bombs, merge keys) is refused.
 */
import { describe, expect, it } from 'vitest';
import YAML from 'yaml';
import { KovaError } from '../core/errors.js';
import { MAX_SDL_BYTES, SdlError, parseSdl, parseSdlOrThrow } from './parse-sdl.js';
import { GiB, MiB, TiB, parseSize } from './sizes.js';
import type { Manifest, SdlIssue } from './types.js';

/** The example SDL from the docs: a busybox service appending to a file on its volume. */
const EXAMPLE_SDL = `
version: "2.0"
services:
  app:
    image: busybox:1.36
    command: ["sh", "-c"]
    args:
      - 'while true; do date >> /data/log.txt; sleep 5; done'
    env:
      - GREETING=hello
    params:
      storage:
        data:
          mount: /data
      snapshot:
        pre: ["sync"]
profiles:
  compute:
    app:
      resources:
        cpu:
          units: 0.1
        memory:
          size: 64Mi
        storage:
          - size: 512Mi
          - name: data
            size: 1Gi
            attributes:
              persistent: true
              class: beta2
  placement:
    local:
      pricing:
        app:
          denom: uakt
          amount: 100
deployment:
  app:
    local:
      profile: app
      count: 1
`;

/** Two services, one with two volumes, hooks, env and expose. */
const FULL_SDL = `
version: "2.0"
services:
  db:
    image: postgres:16
    args: ["-c", "wal_level=replica"]
    env:
      - POSTGRES_PASSWORD=s3cret=with=equals
      - PGDATA=/var/lib/postgresql/data/pgdata
      - EMPTY=
    expose:
      - port: 5432
        to:
          - service: web
    params:
      storage:
        pgdata:
          mount: /var/lib/postgresql/data/
        wal:
          mount: /wal
          readOnly: true
      snapshot:
        pre: ["psql", "-U", "postgres", "-c", "CHECKPOINT"]
        post: ["sh", "-c", "echo thawed"]
  web:
    image: ghcr.io/example/web@sha256:0123456789abcdef
    command: ["node"]
    args: ["server.js", "--port", "3000"]
    expose:
      - port: 3000
        as: 80
        proto: tcp
        to:
          - global: true
    params:
      storage:
        uploads:
          mount: /srv/uploads
    dependencies:
      - service: db
profiles:
  compute:
    db:
      resources:
        cpu:
          units: 2
        memory:
          size: 2Gi
        storage:
          - size: 1Gi
          - name: wal
            size: 100M
            attributes:
              persistent: true
          - name: pgdata
            size: 1.5Gi
            attributes:
              persistent: true
              class: beta3
          - name: spare
            size: 1Ti
            attributes:
              persistent: true
    web:
      resources:
        cpu:
          units: 500m
        memory:
          size: 512Mi
        storage:
          - size: 512Mi
          - name: uploads
            size: 10737418240
            attributes:
              persistent: true
  placement:
    dc1:
      attributes:
        region: eu-west
      pricing:
        db: { denom: uakt, amount: 1000 }
        web: { denom: uakt, amount: 500 }
deployment:
  db:
    dc1:
      profile: db
      count: 1
  web:
    dc1:
      profile: web
      count: 1
`;

/** The smallest SDL accepted: no deployment section, the profile is named after the service. */
const MINIMAL_SDL = `
version: "2.0"
services:
  web:
    image: nginx:1.27
profiles:
  compute:
    web:
      resources:
        cpu:
          units: 0.5
        memory:
          size: 128Mi
`;

/** A valid SDL as a plain object, for tests that change one field of it. */
const BASE = {
  version: '2.0',
  services: {
    web: {
      image: 'busybox:1.36',
      command: ['sh', '-c'],
      args: ['sleep 3600'],
      env: ['FOO=bar'],
      expose: [{ port: 80, as: 8080, proto: 'tcp', to: [{ global: true }] }],
      params: { storage: { data: { mount: '/data' } }, snapshot: { pre: ['sync'] } },
    },
  },
  profiles: {
    compute: {
      web: {
        resources: {
          cpu: { units: 0.5 },
          memory: { size: '128Mi' },
          storage: [{ size: '1Gi' }, { name: 'data', size: '2Gi', attributes: { persistent: true, class: 'beta2' } }],
        },
      },
    },
    placement: { dcloud: { pricing: { web: { denom: 'uakt', amount: 100 } } } },
  },
  deployment: { web: { dcloud: { profile: 'web', count: 1 } } },
};

const REMOVE = Symbol('remove');

/**
 * BASE with some fields changed, as YAML. Keys are dot paths
 * ("services.web.env", "profiles.compute.web.resources.storage.1.size");
 * REMOVE deletes the field.
 */
function sdlWith(changes: Record<string, unknown>): string {
  const doc = structuredClone(BASE) as Record<string, unknown>;
  for (const [p, value] of Object.entries(changes)) {
    const keys = p.split('.');
    const last = keys.pop() as string;
    let obj = doc;
    for (const k of keys) obj = obj[k] as Record<string, unknown>;
    if (value === REMOVE) delete obj[last];
    else obj[last] = value;
  }
  return YAML.stringify(doc);
}

/** The issues of an SDL that must be rejected. */
function issuesOf(text: string): SdlIssue[] {
  const result = parseSdl(text);
  if (result.ok) throw new Error(`expected the SDL to be rejected, got ${JSON.stringify(result.manifest)}`);
  return result.issues;
}

/** Asserts the SDL is rejected with exactly one issue, at `path`, whose message contains `message`. */
function expectOnlyIssue(text: string, path: string, message: string): void {
  const issues = issuesOf(text);
  expect(issues).toEqual([{ path, message: expect.stringContaining(message) }]);
}

function manifestOf(text: string): Manifest {
  const result = parseSdl(text);
  if (!result.ok) throw new Error(`expected a valid SDL, got ${JSON.stringify(result.issues)}`);
  return result.manifest;
}

describe('parseSdl: valid SDLs', () => {
  it('turns a full two-service SDL into the manifest, services and volumes in YAML order', () => {
    expect(manifestOf(FULL_SDL)).toEqual({
      services: [
        {
          name: 'db',
          image: 'postgres:16',
          command: [],
          args: ['-c', 'wal_level=replica'],
          env: { POSTGRES_PASSWORD: 's3cret=with=equals', PGDATA: '/var/lib/postgresql/data/pgdata', EMPTY: '' },
          expose: [{ port: 5432, as: 5432 }],
          volumes: [
            { name: 'pgdata', mount: '/var/lib/postgresql/data', sizeBytes: 1.5 * GiB, readOnly: false },
            { name: 'wal', mount: '/wal', sizeBytes: 100_000_000, readOnly: true },
          ],
          hooks: { pre: ['psql', '-U', 'postgres', '-c', 'CHECKPOINT'], post: ['sh', '-c', 'echo thawed'] },
          resources: { cpus: 2, memoryBytes: 2 * GiB },
        },
        {
          name: 'web',
          image: 'ghcr.io/example/web@sha256:0123456789abcdef',
          command: ['node'],
          args: ['server.js', '--port', '3000'],
          env: {},
          expose: [{ port: 3000, as: 80 }],
          volumes: [{ name: 'uploads', mount: '/srv/uploads', sizeBytes: 10 * GiB, readOnly: false }],
          hooks: { pre: null, post: null },
          resources: { cpus: 0.5, memoryBytes: 512 * MiB },
        },
      ],
    });
  });

  it('accepts a minimal SDL without a deployment section, using the profile named after the service', () => {
    expect(manifestOf(MINIMAL_SDL)).toEqual({
      services: [
        {
          name: 'web',
          image: 'nginx:1.27',
          command: [],
          args: [],
          env: {},
          expose: [],
          volumes: [],
          hooks: { pre: null, post: null },
          resources: { cpus: 0.5, memoryBytes: 128 * MiB },
        },
      ],
    });
  });

  it('accepts the documented busybox example', () => {
    const manifest = manifestOf(EXAMPLE_SDL);
    expect(manifest.services).toHaveLength(1);
    expect(manifest.services[0]).toMatchObject({
      name: 'app',
      image: 'busybox:1.36',
      command: ['sh', '-c'],
      args: ['while true; do date >> /data/log.txt; sleep 5; done'],
      env: { GREETING: 'hello' },
      volumes: [{ name: 'data', mount: '/data', sizeBytes: GiB, readOnly: false }],
      hooks: { pre: ['sync'], post: null },
    });
  });

  it('uses the profile named after each service when deployment is absent, volumes included', () => {
    const manifest = manifestOf(sdlWith({ deployment: REMOVE }));
    expect(manifest.services[0]?.volumes).toEqual([{ name: 'data', mount: '/data', sizeBytes: 2 * GiB, readOnly: false }]);
  });

  it('accepts version as the string "2.0" or the number 2.0', () => {
    expect(parseSdl(sdlWith({ version: '2.0' })).ok).toBe(true);
    expect(parseSdl(sdlWith({ version: 2 })).ok).toBe(true);
    expect(parseSdl(YAML.stringify(BASE).replace("version: '2.0'", 'version: 2.0')).ok).toBe(true);
  });

  it('accepts a single {size} mapping as the storage of a profile', () => {
    const manifest = manifestOf(sdlWith({ 'services.web.params': REMOVE, 'profiles.compute.web.resources.storage': { size: '1Gi' } }));
    expect(manifest.services[0]?.volumes).toEqual([]);
  });

  it('ignores persistent storage no service mounts, and the fields kept only for compatibility', () => {
    const text = sdlWith({
      'profiles.compute.web.resources.storage': [
        { size: '1Gi' },
        { name: 'data', size: '2Gi', attributes: { persistent: true } },
        { name: 'unused', size: '5Gi', attributes: { persistent: true } },
      ],
      'profiles.compute.web.resources.gpu': { units: 0 },
      'services.web.dependencies': [{ service: 'other' }],
      'services.web.credentials': { host: 'ghcr.io', username: 'u', password: 'p' },
      endpoints: { myip: { kind: 'ip' } },
    });
    expect(manifestOf(text).services[0]?.volumes).toEqual([{ name: 'data', mount: '/data', sizeBytes: 2 * GiB, readOnly: false }]);
  });

  it('defaults expose.as to the port and accepts udp in any case', () => {
    const manifest = manifestOf(
      sdlWith({
        'services.web.expose': [
          { port: 53, proto: 'UDP' },
          { port: 80, as: 8080 },
        ],
      }),
    );
    expect(manifest.services[0]?.expose).toEqual([
      { port: 53, as: 53 },
      { port: 80, as: 8080 },
    ]);
  });

  it('keeps a variable named __proto__ as plain data', () => {
    const env = manifestOf(sdlWith({ 'services.web.env': ['__proto__=x', 'A=1'] })).services[0]?.env;
    expect(Object.getPrototypeOf(env)).toBe(Object.prototype);
    expect(Object.entries(env ?? {})).toEqual([
      ['__proto__', 'x'],
      ['A', '1'],
    ]);
  });

  it('accepts a few YAML anchors and aliases (a shared env list)', () => {
    const text = `
version: "2.0"
services:
  a:
    image: busybox
    env: &env [A=1, B=2]
  b:
    image: busybox
    env: *env
profiles:
  compute:
    a: { resources: {} }
    b: { resources: {} }
`;
    const manifest = manifestOf(text);
    expect(manifest.services.map((s) => s.env)).toEqual([
      { A: '1', B: '2' },
      { A: '1', B: '2' },
    ]);
  });

  it('accepts an input of exactly the maximum size', () => {
    const base = YAML.stringify(BASE);
    const text = base + '#'.repeat(MAX_SDL_BYTES - Buffer.byteLength(base) - 1) + '\n';
    expect(Buffer.byteLength(text)).toBe(MAX_SDL_BYTES);
    expect(parseSdl(text).ok).toBe(true);
  });
});

describe('parseSdl: YAML and document limits', () => {
  it('rejects input over 256 KiB before parsing it', () => {
    const text = YAML.stringify(BASE) + '#'.repeat(MAX_SDL_BYTES);
    expectOnlyIssue(text, '', `at most ${MAX_SDL_BYTES} bytes (256 KiB)`);
  });

  it('counts the limit in UTF-8 bytes, not characters', () => {
    const text = `# ${'é'.repeat(MAX_SDL_BYTES / 2)}\n`;
    expect(text.length).toBeLessThan(MAX_SDL_BYTES);
    expectOnlyIssue(text, '', 'at most 262144 bytes');
  });

  it('reports a YAML syntax error with its line and column', () => {
    const text = ['version: "2.0"', 'services:', '  web:', '    image: busybox', '   bad: [oops'].join('\n');
    const issues = issuesOf(text);
    expect(issues[0]).toEqual({ path: '', message: expect.stringMatching(/^YAML syntax error at line 5, column \d+: /) });
  });

  it('reports a duplicate key as a YAML error with its line', () => {
    const text = ['version: "2.0"', 'services:', '  web:', '    image: a', '    image: b'].join('\n');
    expectOnlyIssue(text, '', 'YAML syntax error at line 5, column 5: Map keys must be unique');
  });

  it('rejects several YAML documents in one SDL', () => {
    expectOnlyIssue('version: "2.0"\n---\nservices: {}\n', '', 'must be a single YAML document');
  });

  it('rejects an empty SDL and one that is not a mapping', () => {
    expectOnlyIssue('', '', 'the SDL is empty');
    expectOnlyIssue('# nothing here\n', '', 'the SDL is empty');
    expectOnlyIssue('- a\n- b\n', '', 'must be a mapping with version, services, profiles and deployment (got a list)');
  });

  it('rejects an alias bomb without expanding it', () => {
    const lines = ['version: "2.0"', 'l0: &l0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]'];
    for (let i = 1; i <= 9; i++)
      lines.push(
        `l${i}: &l${i} [${Array(9)
          .fill(`*l${i - 1}`)
          .join(', ')}]`,
      );
    const started = Date.now();
    expectOnlyIssue(lines.join('\n'), '', 'YAML aliases expand too much');
    expect(Date.now() - started).toBeLessThan(2000);
  });

  it('rejects an alias to an anchor that does not exist', () => {
    expectOnlyIssue('version: *nope\n', '', 'YAML aliases could not be expanded');
  });

  it('rejects YAML merge keys', () => {
    const text = sdlWith({}).replace('  web:\n', '  web:\n    <<: { image: evil }\n');
    expectOnlyIssue(text, 'services.web["<<"]', 'YAML merge keys (<<) are not supported');
  });

  it('reads YAML 1.2 only: a %YAML 1.1 directive (merge keys, yes/no booleans) is refused', () => {
    const text = `%YAML 1.1\n---\n${sdlWith({}).replace('  web:\n', '  web:\n    <<: { image: evil }\n')}`;
    expectOnlyIssue(text, '', 'only YAML 1.2 is supported (remove the %YAML 1.1 directive)');
    expect(parseSdl(`%YAML 1.2\n---\n${sdlWith({})}`).ok).toBe(true);
  });

  it('requires mapping keys to be strings', () => {
    const text = 'version: "2.0"\nservices:\n  ? [a, b]\n  : { image: busybox }\n';
    expectOnlyIssue(text, '', 'YAML syntax error at line 3, column 5');
  });

  it('rejects unknown top-level fields and suggests the likely one', () => {
    const text = sdlWith({ deployments: { web: {} } });
    expectOnlyIssue(text, 'deployments', 'unknown field (did you mean "deployment"?)');
  });

  it('reports every problem at once, not only the first', () => {
    const issues = issuesOf(sdlWith({ version: '3', 'services.web.image': '', 'services.web.params.storage.data.mount': 'data' }));
    expect(issues.map((i) => i.path)).toEqual(['version', 'services.web.image', 'services.web.params.storage.data.mount']);
  });

  it('caps the number of issues reported and counts the rest', () => {
    const issues = issuesOf(sdlWith({ 'services.web.env': Array.from({ length: 250 }, (_, i) => `bad${i}`) }));
    expect(issues).toHaveLength(101);
    expect(issues[0]).toEqual({ path: 'services.web.env[0]', message: 'must be KEY=value (got the string "bad0")' });
    expect(issues[100]).toEqual({ path: '', message: '150 more issues not shown' });
  });
});

describe('parseSdl: version and services', () => {
  it('requires version "2.0"', () => {
    expectOnlyIssue(sdlWith({ version: REMOVE }), 'version', 'required: must be "2.0"');
    expectOnlyIssue(sdlWith({ version: '2.1' }), 'version', 'must be "2.0" (got the string "2.1")');
    expectOnlyIssue(sdlWith({ version: 1 }), 'version', 'must be "2.0" (got number 1)');
  });

  it('requires a non-empty services mapping', () => {
    expect(issuesOf(sdlWith({ services: REMOVE }))).toContainEqual({
      path: 'services',
      message: 'required: a mapping of service name to service',
    });
    expect(issuesOf(sdlWith({ services: {} }))).toContainEqual({ path: 'services', message: 'must define at least one service' });
    expect(issuesOf(sdlWith({ services: ['web'] }))).toContainEqual({
      path: 'services',
      message: 'must be a mapping of service name to service (got a list)',
    });
  });

  it('allows at most 16 services', () => {
    const services: Record<string, unknown> = {};
    const compute: Record<string, unknown> = {};
    for (let i = 0; i < 17; i++) {
      services[`s${i}`] = { image: 'busybox' };
      compute[`s${i}`] = { resources: {} };
    }
    const text = YAML.stringify({ version: '2.0', services, profiles: { compute } });
    expectOnlyIssue(text, 'services', 'at most 16 services are allowed (got 17)');
  });

  it.each(['Web', '1web', 'web_1', 'web.app', `w${'x'.repeat(63)}`])('rejects the service name %j', (svcName) => {
    const text = YAML.stringify({
      version: '2.0',
      services: { [svcName]: { image: 'busybox' } },
      profiles: { compute: { [svcName]: { resources: {} } } },
    });
    const path = /^[A-Za-z0-9_-]+$/.test(svcName) ? `services.${svcName}` : `services[${JSON.stringify(svcName)}]`;
    expectOnlyIssue(text, path, 'service name must start with a lowercase letter');
  });

  it('requires the image, a non-empty reference without whitespace', () => {
    expectOnlyIssue(sdlWith({ 'services.web.image': REMOVE }), 'services.web.image', 'required: the container image');
    expectOnlyIssue(sdlWith({ 'services.web.image': '' }), 'services.web.image', 'must be a non-empty image reference');
    expectOnlyIssue(sdlWith({ 'services.web.image': 'busy box' }), 'services.web.image', 'without whitespace');
    expectOnlyIssue(sdlWith({ 'services.web.image': 42 }), 'services.web.image', '(got number 42)');
  });

  it('requires command and args to be lists of strings, with an example when a string is given', () => {
    expectOnlyIssue(
      sdlWith({ 'services.web.command': 'sh -c "sleep 1"' }),
      'services.web.command',
      'must be a list of strings (got the string "sh -c \\"sleep 1\\""), e.g. [sh, -c]',
    );
    expectOnlyIssue(sdlWith({ 'services.web.args': ['ok', 3] }), 'services.web.args[1]', 'must be a string (got number 3)');
    expectOnlyIssue(sdlWith({ 'services.web.args': ['a\0b'] }), 'services.web.args[0]', 'must not contain NUL characters');
  });

  it('requires env to be a list of KEY=value strings with valid, unique names', () => {
    expectOnlyIssue(
      sdlWith({ 'services.web.env': { FOO: 'bar' } }),
      'services.web.env',
      'must be a list of KEY=value strings (got a mapping)',
    );
    expectOnlyIssue(sdlWith({ 'services.web.env': ['FOO'] }), 'services.web.env[0]', 'must be KEY=value');
    expectOnlyIssue(
      sdlWith({ 'services.web.env': ['A=1', '1X=2'] }),
      'services.web.env[1]',
      'variable name "1X" must start with a letter or "_"',
    );
    expectOnlyIssue(
      sdlWith({ 'services.web.env': ['FOO=1', 'BAR=2', 'FOO=3'] }),
      'services.web.env[2]',
      'duplicate variable FOO (already set at services.web.env[0])',
    );
  });

  it('validates expose ports', () => {
    expectOnlyIssue(sdlWith({ 'services.web.expose': [{ port: 0 }] }), 'services.web.expose[0].port', 'must be from 1 to 65535 (got 0)');
    expectOnlyIssue(sdlWith({ 'services.web.expose': [{ port: 65536 }] }), 'services.web.expose[0].port', 'must be from 1 to 65535');
    expectOnlyIssue(
      sdlWith({ 'services.web.expose': [{ port: '80' }] }),
      'services.web.expose[0].port',
      'must be an integer from 1 to 65535',
    );
    expectOnlyIssue(sdlWith({ 'services.web.expose': [{ as: 80 }] }), 'services.web.expose[0].port', 'required');
    expectOnlyIssue(sdlWith({ 'services.web.expose': [{ port: 80, as: 1.5 }] }), 'services.web.expose[0].as', 'must be an integer');
    expectOnlyIssue(
      sdlWith({ 'services.web.expose': [{ port: 80, proto: 'sctp' }] }),
      'services.web.expose[0].proto',
      'must be tcp or udp',
    );
    expectOnlyIssue(sdlWith({ 'services.web.expose': [{ port: 80, to: 'global' }] }), 'services.web.expose[0].to', 'must be a list');
    expectOnlyIssue(
      sdlWith({ 'services.web.expose': { port: 80 } }),
      'services.web.expose',
      'must be a list of {port, as, proto, to} entries',
    );
  });

  it('rejects unknown fields in a service, suggesting the likely one', () => {
    expectOnlyIssue(
      sdlWith({ 'services.web.ports': [80] }),
      'services.web.ports',
      'unknown field; expected one of: image, command, args, env, expose, params',
    );
    expectOnlyIssue(sdlWith({ 'services.web.enviroment': [] }), 'services.web.enviroment', 'unknown field');
    expectOnlyIssue(sdlWith({ 'services.web.Args': [] }), 'services.web.Args', 'unknown field (did you mean "args"?)');
    expectOnlyIssue(sdlWith({ 'services.web.params.storge': {} }), 'services.web.params.storge', 'unknown field (did you mean "storage"?)');
  });
});

describe('parseSdl: volumes and hooks (params)', () => {
  it.each([
    ['data', 'must be an absolute path (got the string "data")'],
    ['/data/../etc', 'must not contain ".." segments'],
    ['/', 'must not be / (the root of the container)'],
    ['//', 'must not be / (the root of the container)'],
    ['/data:ro', 'must not contain ":"'],
    ['/da\tta', 'must not contain control characters'],
    ['/proc', 'must not be /proc: /proc and the paths below it are system paths the container needs (/proc, /sys, /dev)'],
    ['/proc/self', 'must not be /proc/self: /proc and the paths below it are system paths'],
    ['/sys/fs/cgroup/', 'must not be /sys/fs/cgroup: /sys and the paths below it are system paths'],
    ['/dev', 'must not be /dev: /dev and the paths below it'],
    ['/dev/shm', 'must not be /dev/shm: /dev and the paths below it'],
    ['//proc', 'must not be /proc: /proc'],
    ['/./sys', 'must not be /sys: /sys'],
  ])('rejects the mount path %j', (mount, message) => {
    expectOnlyIssue(sdlWith({ 'services.web.params.storage.data.mount': mount }), 'services.web.params.storage.data.mount', message);
  });

  it.each(['/process', '/system', '/devices', '/data/proc', '/srv/dev'])(
    'accepts the mount path %j, which only looks like a system path',
    (mount) => {
      expect(manifestOf(sdlWith({ 'services.web.params.storage.data.mount': mount })).services[0]?.volumes[0]?.mount).toBe(mount);
    },
  );

  it('refuses a system mount path with INVALID_SDL naming the path', () => {
    const err = (() => {
      try {
        parseSdlOrThrow(sdlWith({ 'services.web.params.storage.data.mount': '/proc/self' }));
      } catch (e) {
        return e;
      }
      return undefined;
    })();
    expect(err).toBeInstanceOf(SdlError);
    expect((err as SdlError).code).toBe('INVALID_SDL');
    expect((err as SdlError).message).toBe(
      'invalid SDL: services.web.params.storage.data.mount: must not be /proc/self: /proc and the paths below it are system paths the container needs (/proc, /sys, /dev)',
    );
  });

  it('names the first issue in the SdlError message', () => {
    expect(() => parseSdlOrThrow(sdlWith({ 'services.web.params.storage.data.mount': 'data' }))).toThrow(
      'invalid SDL: services.web.params.storage.data.mount: must be an absolute path',
    );
  });

  it('requires the mount and rejects unknown volume fields', () => {
    expectOnlyIssue(sdlWith({ 'services.web.params.storage.data': {} }), 'services.web.params.storage.data.mount', 'required');
    expectOnlyIssue(
      sdlWith({ 'services.web.params.storage.data': { mount: '/data', mont: '/x' } }),
      'services.web.params.storage.data.mont',
      'unknown field (did you mean "mount"?)',
    );
    expectOnlyIssue(sdlWith({ 'services.web.params.storage.data': null }), 'services.web.params.storage.data', 'must be a mapping');
  });

  it('requires readOnly to be a boolean', () => {
    expectOnlyIssue(
      sdlWith({ 'services.web.params.storage.data.readOnly': 'yes' }),
      'services.web.params.storage.data.readOnly',
      'must be true or false (got the string "yes")',
    );
  });

  it('requires mount paths to be unique within a service, after normalizing them', () => {
    const text = sdlWith({
      'services.web.params.storage': { data: { mount: '/data' }, logs: { mount: '/data/' } },
      'profiles.compute.web.resources.storage': [
        { name: 'data', size: '1Gi', attributes: { persistent: true } },
        { name: 'logs', size: '1Gi', attributes: { persistent: true } },
      ],
    });
    expectOnlyIssue(text, 'services.web.params.storage.logs.mount', '/data is already the mount of volume data');
  });

  it('validates volume names', () => {
    const text = sdlWith({
      'services.web.params.storage': { Data_1: { mount: '/data' } },
      'profiles.compute.web.resources.storage': [{ size: '1Gi' }],
    });
    expectOnlyIssue(text, 'services.web.params.storage.Data_1', 'volume name must start with a lowercase letter');
  });

  it('requires every mounted volume to exist in the service profile', () => {
    expectOnlyIssue(
      sdlWith({ 'services.web.params.storage': { data: { mount: '/data' }, cache: { mount: '/cache' } } }),
      'services.web.params.storage.cache',
      'no storage named cache in profiles.compute.web.resources.storage',
    );
  });

  it('only mounts persistent storage', () => {
    const message =
      'storage data of profiles.compute.web is not persistent: only persistent storage (attributes.persistent: true) can be mounted and snapshotted';
    expectOnlyIssue(
      sdlWith({ 'profiles.compute.web.resources.storage.1.attributes': { persistent: false } }),
      'services.web.params.storage.data',
      message,
    );
    expectOnlyIssue(
      sdlWith({ 'profiles.compute.web.resources.storage.1.attributes': REMOVE }),
      'services.web.params.storage.data',
      message,
    );
  });

  it('requires hooks to be non-empty command lines', () => {
    expectOnlyIssue(
      sdlWith({ 'services.web.params.snapshot.pre': 'sync' }),
      'services.web.params.snapshot.pre',
      'must be a list of strings (got the string "sync"), e.g. [sh, -c, "sync"]',
    );
    expectOnlyIssue(sdlWith({ 'services.web.params.snapshot.post': [] }), 'services.web.params.snapshot.post', 'must not be empty');
    expectOnlyIssue(
      sdlWith({ 'services.web.params.snapshot.pre': ['', 'x'] }),
      'services.web.params.snapshot.pre[0]',
      'must not be empty: it is the program',
    );
    expectOnlyIssue(
      sdlWith({ 'services.web.params.snapshot': { before: ['sync'] } }),
      'services.web.params.snapshot.before',
      'unknown field; expected one of: pre, post',
    );
  });
});

describe('parseSdl: profiles', () => {
  const storage = 'profiles.compute.web.resources.storage';

  it('requires profiles.compute', () => {
    expectOnlyIssue(sdlWith({ profiles: REMOVE }), 'profiles', 'required: profiles.compute must define');
    expectOnlyIssue(sdlWith({ 'profiles.compute': REMOVE }), 'profiles.compute', 'required');
    expectOnlyIssue(sdlWith({ 'profiles.placement': 'x' }), 'profiles.placement', 'must be a mapping');
    expectOnlyIssue(sdlWith({ 'profiles.computer': {} }), 'profiles.computer', 'unknown field (did you mean "compute"?)');
  });

  it('requires resources in a compute profile', () => {
    expectOnlyIssue(sdlWith({ 'profiles.compute.web.resources': REMOVE }), 'profiles.compute.web.resources', 'required');
    expectOnlyIssue(
      sdlWith({ 'profiles.compute.web.resources.disk': {} }),
      'profiles.compute.web.resources.disk',
      'unknown field; expected one of: cpu, memory, storage',
    );
  });

  it('validates cpu units and memory size', () => {
    expectOnlyIssue(
      sdlWith({ 'profiles.compute.web.resources.cpu.units': 0 }),
      'profiles.compute.web.resources.cpu.units',
      'must be a positive number of CPUs',
    );
    expectOnlyIssue(
      sdlWith({ 'profiles.compute.web.resources.cpu.units': 'lots' }),
      'profiles.compute.web.resources.cpu.units',
      'e.g. 0.5 or 500m',
    );
    expectOnlyIssue(sdlWith({ 'profiles.compute.web.resources.cpu': {} }), 'profiles.compute.web.resources.cpu.units', 'required');
    expectOnlyIssue(
      sdlWith({ 'profiles.compute.web.resources.memory.size': '1 gig' }),
      'profiles.compute.web.resources.memory.size',
      'must be a size such as 512Mi',
    );
    expectOnlyIssue(
      sdlWith({ 'profiles.compute.web.resources.memory.size': '5Mi' }),
      'profiles.compute.web.resources.memory.size',
      'must be at least 6Mi',
    );
    expectOnlyIssue(
      sdlWith({ 'profiles.compute.web.resources.memory': {} }),
      'profiles.compute.web.resources.memory.size',
      'required: e.g. 512Mi',
    );
    expectOnlyIssue(
      sdlWith({ 'profiles.compute.web.resources.cpu.units': '0.1m' }),
      'profiles.compute.web.resources.cpu.units',
      'must be from 1m to 1024 CPUs',
    );
    expectOnlyIssue(
      sdlWith({ 'profiles.compute.web.resources.cpu.units': 5000 }),
      'profiles.compute.web.resources.cpu.units',
      'must be from 1m to 1024 CPUs',
    );
  });

  it('gives each service the cpu and memory of its profile as limits', () => {
    expect(
      manifestOf(sdlWith({ 'profiles.compute.web.resources.cpu.units': '250m', 'profiles.compute.web.resources.memory.size': '6Mi' }))
        .services[0]?.resources,
    ).toEqual({
      cpus: 0.25,
      memoryBytes: 6 * MiB,
    });
    const unlimited = sdlWith({ 'profiles.compute.web.resources.cpu': REMOVE, 'profiles.compute.web.resources.memory': REMOVE });
    expect(manifestOf(unlimited).services[0]?.resources).toEqual({ cpus: null, memoryBytes: null });
  });

  it.each([
    ['10 gigs', 'must be a size such as 512Mi, 1Gi, 100M or a number of bytes (got the string "10 gigs")'],
    ['1.5', 'must be a size such as 512Mi'],
    [-1, 'must be a size such as 512Mi'],
    ['0Gi', 'must be greater than zero'],
    [0, 'must be greater than zero'],
    ['17Ti', 'must be at most 16Ti'],
  ])('rejects the storage size %j', (value, message) => {
    expectOnlyIssue(sdlWith({ [`${storage}.1.size`]: value }), `${storage}[1].size`, message);
  });

  it('accepts a storage size of exactly 16Ti', () => {
    const manifest = manifestOf(sdlWith({ [`${storage}.1.size`]: '16Ti' }));
    expect(manifest.services[0]?.volumes[0]?.sizeBytes).toBe(16 * TiB);
  });

  it('requires the size of a storage entry', () => {
    expectOnlyIssue(sdlWith({ [`${storage}.1.size`]: REMOVE }), `${storage}[1].size`, 'required: e.g. 1Gi');
  });

  it('validates storage entry names: format, uniqueness, one root storage', () => {
    expectOnlyIssue(sdlWith({ [`${storage}.0.name`]: 'Root' }), `${storage}[0].name`, 'volume name must start with a lowercase letter');
    expectOnlyIssue(
      sdlWith({
        [storage]: [
          { name: 'data', size: '1Gi', attributes: { persistent: true } },
          { name: 'data', size: '2Gi' },
        ],
      }),
      `${storage}[1].name`,
      `duplicate storage name data (also at ${storage}[0])`,
    );
    expect(issuesOf(sdlWith({ [storage]: [{ size: '1Gi' }, { size: '2Gi' }] }))).toContainEqual({
      path: `${storage}[1]`,
      message: `only one storage entry may have no name (the root storage), as ${storage}[0] does`,
    });
  });

  it('requires a name on persistent storage', () => {
    expect(issuesOf(sdlWith({ [`${storage}.0.attributes`]: { persistent: true } }))).toContainEqual({
      path: `${storage}[0].name`,
      message: 'required for persistent storage: services mount it by name',
    });
  });

  it('validates storage attributes', () => {
    expectOnlyIssue(
      sdlWith({ [`${storage}.1.attributes.persistent`]: 'true' }),
      `${storage}[1].attributes.persistent`,
      'must be true or false',
    );
    expectOnlyIssue(sdlWith({ [`${storage}.1.attributes.class`]: '' }), `${storage}[1].attributes.class`, 'must be a non-empty string');
    expect(issuesOf(sdlWith({ [`${storage}.1.attributes`]: { persistant: true } }))).toContainEqual({
      path: `${storage}[1].attributes.persistant`,
      message: 'unknown field (did you mean "persistent"?); expected one of: persistent, class',
    });
  });

  it('requires storage to be a mapping or a list', () => {
    expectOnlyIssue(sdlWith({ [storage]: '1Gi' }), storage, 'must be a {size} mapping or a list of {name, size, attributes} entries');
  });

  it('reports a broken profile once, not again for the services using it', () => {
    const issues = issuesOf(sdlWith({ [`${storage}.1.size`]: 'huge' }));
    expect(issues.map((i) => i.path)).toEqual([`${storage}[1].size`]);
  });
});

describe('parseSdl: deployment', () => {
  it('requires every service to have a deployment entry', () => {
    const text = sdlWith({
      'services.worker': { image: 'busybox' },
      'profiles.compute.worker': { resources: {} },
    });
    expectOnlyIssue(text, 'deployment.worker', 'missing: service worker needs an entry naming its compute profile');
  });

  it('rejects a deployment entry for a service that does not exist', () => {
    expectOnlyIssue(sdlWith({ 'deployment.api': { dcloud: { profile: 'web' } } }), 'deployment.api', 'no service named api in services');
  });

  it('requires the profile to exist in profiles.compute', () => {
    expectOnlyIssue(
      sdlWith({ 'deployment.web.dcloud.profile': 'large' }),
      'deployment.web.dcloud.profile',
      'no compute profile named large in profiles.compute',
    );
    expectOnlyIssue(sdlWith({ 'deployment.web.dcloud.profile': REMOVE }), 'deployment.web.dcloud.profile', 'required');
  });

  it('requires count 1, explaining why when the service has persistent volumes', () => {
    expectOnlyIssue(
      sdlWith({ 'deployment.web.dcloud.count': 2 }),
      'deployment.web.dcloud.count',
      "must be 1: persistent volumes can't be shared between replicas (got number 2)",
    );
    expectOnlyIssue(
      sdlWith({ 'services.web.params': REMOVE, 'deployment.web.dcloud.count': 3 }),
      'deployment.web.dcloud.count',
      'must be 1: Kova runs one instance of each service (got number 3)',
    );
    expect(parseSdl(sdlWith({ 'deployment.web.dcloud.count': REMOVE })).ok).toBe(true);
  });

  it('requires exactly one placement per service', () => {
    expectOnlyIssue(
      sdlWith({ 'deployment.web.other': { profile: 'web', count: 1 } }),
      'deployment.web',
      'must have exactly one placement: Kova runs each service once, on this node (got 2: dcloud, other)',
    );
    expectOnlyIssue(sdlWith({ 'deployment.web': {} }), 'deployment.web', 'must name one placement');
  });

  it('rejects unknown placement fields', () => {
    expectOnlyIssue(
      sdlWith({ 'deployment.web.dcloud.replicas': 1 }),
      'deployment.web.dcloud.replicas',
      'unknown field; expected one of: profile, count',
    );
  });

  it('without deployment, requires a profile named after each service', () => {
    const text = sdlWith({ deployment: REMOVE, 'profiles.compute': { small: BASE.profiles.compute.web } });
    expectOnlyIssue(
      text,
      'profiles.compute.web',
      'required: without a deployment section, service web uses the compute profile named after it',
    );
  });

  it('checks volumes against the profile the deployment names', () => {
    const text = sdlWith({
      'profiles.compute.small': { resources: { storage: [{ size: '1Gi' }] } },
      'deployment.web.dcloud.profile': 'small',
    });
    expectOnlyIssue(text, 'services.web.params.storage.data', 'no storage named data in profiles.compute.small.resources.storage');
  });
});

describe('parseSdlOrThrow and SdlError', () => {
  it('returns the manifest of a valid SDL', () => {
    expect(parseSdlOrThrow(FULL_SDL)).toEqual(manifestOf(FULL_SDL));
  });

  it('throws an SdlError: INVALID_SDL, status 400, every issue in details', () => {
    let caught: unknown;
    try {
      parseSdlOrThrow(sdlWith({ 'services.web.params.storage.data.mount': 'data', 'services.web.image': '' }));
    } catch (err) {
      caught = err;
    }
    expect(caught).toBeInstanceOf(SdlError);
    expect(caught).toBeInstanceOf(KovaError);
    const err = caught as SdlError;
    expect(err.code).toBe('INVALID_SDL');
    expect(err.status).toBe(400);
    expect(err.message).toBe(
      'invalid SDL: services.web.image: must be a non-empty image reference without whitespace (got the string "") (and 1 more)',
    );
    expect(err.details.issues).toEqual([
      { path: 'services.web.image', message: expect.any(String) },
      { path: 'services.web.params.storage.data.mount', message: 'must be an absolute path (got the string "data")' },
    ]);
  });

  it('words a document-level issue without an empty path', () => {
    expect(() => parseSdlOrThrow('')).toThrow(/^invalid SDL: the SDL is empty$/);
  });
});

describe('parseSize', () => {
  it.each([
    ['512Mi', 512 * MiB],
    ['1Gi', GiB],
    ['1Ti', TiB],
    ['100M', 100_000_000],
    ['1G', 1_000_000_000],
    ['1k', 1000],
    ['1K', 1000],
    ['1Ki', 1024],
    ['10GB', 10_000_000_000],
    ['512MiB', 512 * MiB],
    ['100B', 100],
    ['1073741824', GiB],
    [1073741824, GiB],
    ['1.5Gi', 1.5 * GiB],
    ['0.3k', 300],
    ['0.0001Ki', 1],
    [' 2Gi ', 2 * GiB],
  ])('parses %j', (value, bytes) => {
    expect(parseSize(value)).toBe(bytes);
  });

  it.each(['', 'Gi', '1 Gi', '1gi', '1Gb', '1.5', '-1', '1e9', '0x10', 'ten', '1..5Gi', true, null, 1.5, -3, [1]])(
    'rejects %j',
    (value) => {
      expect(parseSize(value)).toBeNull();
    },
  );

  it('reports sizes beyond safe integers as Infinity', () => {
    expect(parseSize('100Ei')).toBe(Infinity);
    expect(parseSize(2 ** 60)).toBe(Infinity);
  });
});
