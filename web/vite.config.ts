// The dashboard's build: `vite build web` writes web/dist, which `kova serve`
// serves at /. `vite web` runs a dev server that proxies the API to a local
// `kova serve` (KOVA_API, default http://127.0.0.1:8080).
import react from '@vitejs/plugin-react';
import { defineConfig } from 'vite';

const api = (globalThis as { process?: { env: Record<string, string | undefined> } }).process?.env.KOVA_API ?? 'http://127.0.0.1:8080';

export default defineConfig({
  plugins: [react()],
  build: { outDir: 'dist', emptyOutDir: true, sourcemap: false },
  server: { proxy: { '/api': api } },
});
