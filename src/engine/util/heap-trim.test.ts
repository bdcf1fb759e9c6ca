/** The trimmer trims once per threshold of files or bytes, never per file, and only above a resident size when given one. */
import { describe, expect, it } from 'vitest';
import { HeapTrimmer } from './heap-trim.js';

describe('HeapTrimmer', () => {
  it('trims once every `everyFiles` files', () => {
    let trims = 0;
    const t = new HeapTrimmer({ everyFiles: 100, everyBytes: 1e12, trim: () => trims++ });
    for (let i = 0; i < 1000; i++) t.fileDone(10);
    expect(trims).toBe(10);
  });

  it('trims once every `everyBytes` bytes, and counts files afresh after a trim', () => {
    let trims = 0;
    const t = new HeapTrimmer({ everyFiles: 100, everyBytes: 1000, trim: () => trims++ });
    t.fileDone(999);
    expect(trims).toBe(0);
    t.fileDone(1);
    expect(trims).toBe(1);
    for (let i = 0; i < 99; i++) t.fileDone(0);
    expect(trims).toBe(1);
    t.fileDone(0);
    expect(trims).toBe(2);
  });

  it("counts a directory's files at once, and trims only above `aboveRss` when given", () => {
    let trims = 0;
    let rss = 100;
    const t = new HeapTrimmer({ everyFiles: 100, everyBytes: 1e12, aboveRss: 200, rss: () => rss, trim: () => trims++ });
    t.filesDone(250);
    expect(trims).toBe(0); // 100 bytes resident: not worth a trim
    rss = 300;
    t.filesDone(99);
    expect(trims).toBe(0);
    t.filesDone(1);
    expect(trims).toBe(1);
    rss = 200;
    t.filesDone(100);
    expect(trims).toBe(1);
  });

  it('calls malloc_trim through the addon by default', () => {
    expect(() => new HeapTrimmer({ everyFiles: 1 }).fileDone(0)).not.toThrow();
  });
});
