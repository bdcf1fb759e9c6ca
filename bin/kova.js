#!/usr/bin/env node
// Entry point of the `kova` command: runs the compiled CLI.
// Hashing, directory scans and file I/O share libuv's thread pool; size it
// before anything uses it (hence the dynamic import below).
process.env.UV_THREADPOOL_SIZE ??= '8';
const { main } = await import('../dist/cli/main.js');

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (err) => {
    console.error(`kova: ${err instanceof Error ? err.message : String(err)}`);
    process.exitCode = 1;
  },
);
