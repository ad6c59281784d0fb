// The admin UI: built by `npm run build` (so by npm install / npm ci and before npm test) into
// ui/dist, which the control plane serves at /ui. `npx vite ui` runs it against a local gateway.
import { defineConfig } from 'vite';
import react from '@vitejs/plugin-react';

const gateway = process.env.TOLLGATE_URL ?? 'http://127.0.0.1:4000';

export default defineConfig({
  base: '/ui/',
  plugins: [react()],
  build: { outDir: 'dist', emptyOutDir: true, chunkSizeWarningLimit: 400 },
  server: { proxy: { '/graphql': { target: gateway, ws: true } } },
});
