/**
 * The panel's build: Preact + TSX from panel/ into dist/panel/ (the control plane serves it at
 * `/`). No inline scripts or styles (the server sends a strict CSP), hashed file names (they
 * may be cached for ever), nothing from a CDN (machines may be offline).
 */
import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vite';
import preact from '@preact/preset-vite';

const root = fileURLToPath(new URL('.', import.meta.url));

export default defineConfig({
  root,
  base: '/',
  plugins: [preact({ prerender: { enabled: false } })],
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
