import { fileURLToPath, URL } from 'node:url'

import vue from '@vitejs/plugin-vue'
import { defineConfig } from 'vite'

import { precompress } from './build/precompress.ts'

// In development the page talks to a running stack (Traefik on :8080 routes
// /api/* to the app replicas), exactly as it does in production.
const apiTarget = process.env.SCALEOUT_API ?? 'http://localhost:8080'

export default defineConfig({
  plugins: [vue(), precompress()],
  resolve: {
    alias: {
      '@': fileURLToPath(new URL('./src', import.meta.url)),
    },
  },
  server: {
    proxy: {
      '/api': { target: apiTarget, changeOrigin: true },
    },
  },
  build: {
    sourcemap: false,
    reportCompressedSize: false,
  },
})
