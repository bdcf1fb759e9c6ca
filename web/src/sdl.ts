/**
 * sdl: helpers around the SDL text in the editor. The API names the field an
 * error is about (`services.web.image`,
 * `profiles.compute.web.resources.storage[1].size`); sdlErrorLine finds that
 * field's line so the editor can point at it.
 */

export const EXAMPLE_SDL = `version: "2.0"
services:
  web:
    image: busybox:1.36
    command: ["sh", "-c"]
    args:
      - "while true; do date >> /data/visits.log; sleep 5; done"
    params:
      storage:
        data:
          mount: /data
profiles:
  compute:
    web:
      resources:
        cpu:
          units: 0.5
        memory:
          size: 512Mi
        storage:
          - size: 1Gi
          - name: data
            size: 10Gi
            attributes:
              persistent: true
deployment:
  web:
    local:
      profile: web
      count: 1
`;

/** errorPath extracts the field path from an INVALID_SDL message ("invalid SDL: a.b.c: …"). */
export function errorPath(message: string): string | null {
  const m = /^invalid SDL: ([A-Za-z0-9_.\-[\]"]+): /.exec(message);
  return m ? m[1]! : null;
}

type Segment = { key: string } | { index: number };

function segments(path: string): Segment[] {
  const out: Segment[] = [];
  for (const part of path.split('.')) {
    const m = /^([^[]*)((?:\[\d+\])*)$/.exec(part);
    if (!m) return [];
    if (m[1]) out.push({ key: m[1].replace(/^"|"$/g, '') });
    for (const idx of m[2]!.matchAll(/\[(\d+)\]/g)) out.push({ index: Number(idx[1]) });
  }
  return out;
}

interface Line {
  /** 0-based line number. */
  no: number;
  /** Indent of the line's first character (the "-" of a list item). */
  indent: number;
  /** Whether the line starts a list item. */
  item: boolean;
  /** The mapping key on this line (after "- " for an item), and its column. */
  key: string | null;
  keyIndent: number;
}

function scan(text: string): Line[] {
  const out: Line[] = [];
  text.split('\n').forEach((raw, no) => {
    const trimmed = raw.trimStart();
    if (trimmed === '' || trimmed.startsWith('#')) return;
    const indent = raw.length - trimmed.length;
    const item = /^-(\s|$)/.test(trimmed);
    const rest = item ? trimmed.replace(/^-\s*/, '') : trimmed;
    const keyIndent = item ? indent + (trimmed.length - rest.length) : indent;
    const km = /^(?:"([^"]*)"|'([^']*)'|([^\s:#][^:#]*?))\s*:(\s|$)/.exec(rest);
    const key = km ? (km[1] ?? km[2] ?? km[3] ?? null) : null;
    out.push({ no, indent, item, key, keyIndent });
  });
  return out;
}

/**
 * sdlErrorLine returns the 1-based line of `path` in block-style YAML, or of
 * the deepest part of it found, or null when not even the first part is.
 */
export function sdlErrorLine(text: string, path: string): number | null {
  const lines = scan(text);
  let scope = lines;
  let found: number | null = null;
  for (const seg of segments(path)) {
    let hit: Line | undefined;
    let rest: Line[] = [];
    if ('key' in seg) {
      const col = scope[0]?.keyIndent;
      const at = scope.findIndex((l) => l.keyIndent === col && l.key === seg.key);
      hit = scope[at];
      if (hit) {
        const after = scope.slice(at + 1);
        const stop = after.findIndex((l) => l.indent <= hit!.keyIndent && !(l.item && l.indent === hit!.keyIndent));
        rest = stop === -1 ? after : after.slice(0, stop);
      }
    } else {
      const col = scope.find((l) => l.item)?.indent;
      const items = scope.map((l, i) => [l, i] as const).filter(([l]) => l.item && l.indent === col);
      const entry = items[seg.index];
      if (entry) {
        hit = entry[0];
        const after = scope.slice(entry[1] + 1);
        const stop = after.findIndex((l) => l.indent <= hit!.indent);
        // The item's own line holds its first key: keep it in the scope.
        rest = [hit, ...(stop === -1 ? after : after.slice(0, stop))];
      }
    }
    if (!hit) break;
    found = hit.no + 1;
    scope = rest;
  }
  return found;
}
