// location: a local repository opens without loading the S3 client.
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

describe('openRepository', () => {
  it('does not load the S3 SDK for a local repository', () => {
    const location = fileURLToPath(new URL('./location.ts', import.meta.url));
    // A fresh process: the test runner itself may have loaded the SDK already.
    const script = `
      import { createRequire } from 'node:module';
      const { openRepository } = await import(${JSON.stringify(location)});
      await openRepository('/nonexistent/kova-repo').catch(() => undefined);
      const cache = Object.keys(createRequire(import.meta.url).cache);
      console.log(JSON.stringify(cache.filter((k) => k.includes('@aws-sdk'))));
    `;
    const out = execFileSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { encoding: 'utf8' });
    expect(JSON.parse(out.trim().split('\n').pop()!)).toEqual([]);
  });
});
