/**
 * The panel's build: Preact + TSX from panel/ into dist/panel/ (the control plane serves it at
 * `/`). No inline scripts or styles (the server sends a strict CSP), hashed file names (they
 * may be cached for ever), nothing from a CDN (machines may be offline).
 */
import { builtinModules } from 'node:module';
import { fileURLToPath } from 'node:url';
import { defineConfig, type Plugin } from 'vite';
import preact from '@preact/preset-vite';

const root = fileURLToPath(new URL('.', import.meta.url));

/**
 * Vite only warns when browser code imports a Node module (and leaves an empty stub that
 * fails at run time): here it is an error naming the importer, so a Node-only import that
 * creeps into a browser-safe SDK module fails the build (test/panel-bundle.test.ts).
 */
export const noNodeModules: Plugin = {
  name: 'butter-no-node-modules',
  enforce: 'pre',
  resolveId(id, importer) {
    if (id.startsWith('node:') || builtinModules.includes(id)) this.error(`${importer ?? 'the panel'} imports ${id}: the panel runs in a browser (keep Node-only code in node-only modules, e.g. src/sdk/node-client.ts)`);
    return null;
  },
};

export default defineConfig({
  root,
  base: '/',
  plugins: [noNodeModules, preact({ prerender: { enabled: false } })],
  build: {
    outDir: '../dist/panel',
    emptyOutDir: true,
    // Never inline assets as data: URLs or the module preload polyfill as an inline script.
    assetsInlineLimit: 0,
    modulePreload: { polyfill: false },
    sourcemap: false,
    rollupOptions: {
      output: { entryFileNames: 'assets/[name]-[hash].js', chunkFileNames: 'assets/[name]-[hash].js', assetFileNames: 'assets/[name]-[hash][extname]' },
    },
  },
});
