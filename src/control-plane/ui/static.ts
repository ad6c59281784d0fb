/**
 * @module Serves the admin UI (built by Vite into `ui/dist` at install time) at /ui. The files
 * are public; the page asks for a key and talks to /graphql with it.
 */
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import express, { type Request, type Response, type Router } from 'express';
import helmet from 'helmet';

/** The folder holding package.json: this file runs from `src/` under vitest and from `dist/src/` when built. */
function packageRoot(start: string): string {
  let folder = start;
  while (!existsSync(join(folder, 'package.json'))) {
    const parent = dirname(folder);
    if (parent === folder) return start;
    folder = parent;
  }
  return folder;
}

export const UI_DIST = join(packageRoot(__dirname), 'ui', 'dist');

/**
 * What the built UI needs and nothing more: its own scripts, styles and GraphQL endpoint
 * (CSP 3 lets 'self' cover ws:/wss: to the same host, for the live subscription), the
 * inline SVG favicon as a data: image. No framing (clickjacking of the block buttons), no
 * MIME sniffing, no referrer leaving the page. HSTS is left to whoever terminates TLS.
 */
const UI_SECURITY_HEADERS = helmet({
  contentSecurityPolicy: {
    useDefaults: false,
    directives: {
      'default-src': ["'none'"],
      'script-src': ["'self'"],
      'style-src': ["'self'"],
      'img-src': ["'self'", 'data:'],
      'font-src': ["'self'"],
      'connect-src': ["'self'"],
      'manifest-src': ["'self'"],
      'base-uri': ["'none'"],
      'form-action': ["'self'"],
      'frame-ancestors': ["'none'"],
      'object-src': ["'none'"],
    },
  },
  frameguard: { action: 'deny' },
  noSniff: true,
  referrerPolicy: { policy: 'no-referrer' },
  strictTransportSecurity: false,
  crossOriginEmbedderPolicy: false,
});

export function adminUi(distFolder: string = UI_DIST): Router {
  const router = express.Router();
  router.use(UI_SECURITY_HEADERS);
  router.use(
    express.static(distFolder, {
      index: 'index.html',
      setHeaders: (response, path) => {
        // Vite puts a content hash in every asset name, so those never change; the page itself must be re-read.
        const hashed = path.includes(`${join(distFolder, 'assets')}`);
        response.setHeader('cache-control', hashed ? 'public, max-age=31536000, immutable' : 'no-cache');
      },
    }),
  );
  router.use((request: Request, response: Response) => {
    if (!existsSync(join(distFolder, 'index.html'))) {
      response.status(503).type('text/plain').send('The admin UI is not built. Run `npm run build` (npm install does it) and restart.');
      return;
    }
    response.status(404).type('text/plain').send(`No file ${request.originalUrl}.`);
  });
  return router;
}
