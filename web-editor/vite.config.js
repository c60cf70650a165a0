import { defineConfig } from 'vite';
import react from '@vitejs/plugin-react';

// Served by `kaskad serve` at /editor; `npm run dev` proxies the API to a local server.
export default defineConfig({
  base: '/editor/',
  plugins: [react()],
  build: { outDir: 'dist', emptyOutDir: true, chunkSizeWarningLimit: 800 },
  server: { proxy: { '/api': 'http://127.0.0.1:8000' } },
  test: { include: ['test/**/*.test.{js,jsx}'], environment: 'node' },
});
