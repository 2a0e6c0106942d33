// Writes deterministic .gz and .br siblings for compressible build outputs, so
// `scaleout web` can serve them precompressed. Output depends only on the file
// contents: gzip headers carry no name and mtime 0, brotli has no header at all.
import { brotliCompressSync, constants, gzipSync } from 'node:zlib'
import type { Plugin } from 'vite'

const COMPRESSIBLE = /\.(?:js|mjs|css|html|svg|json|txt|map)$/
const MIN_BYTES = 1024

export function precompress(): Plugin {
  return {
    name: 'scaleout:precompress',
    apply: 'build',
    enforce: 'post',
    generateBundle(_options, bundle) {
      for (const fileName of Object.keys(bundle).sort()) {
        if (!COMPRESSIBLE.test(fileName)) continue
        const item = bundle[fileName]
        if (item === undefined) continue
        const source = item.type === 'chunk' ? item.code : item.source
        const bytes = typeof source === 'string' ? Buffer.from(source) : Buffer.from(source)
        if (bytes.length < MIN_BYTES) continue
        const gz = gzipSync(bytes, { level: 9 })
        // Byte 9 of a gzip header is the OS field; pin it so the output does
        // not depend on the platform that ran the build.
        gz[9] = 0xff
        const br = brotliCompressSync(bytes, {
          params: {
            [constants.BROTLI_PARAM_QUALITY]: 11,
            [constants.BROTLI_PARAM_SIZE_HINT]: bytes.length,
          },
        })
        if (gz.length < bytes.length) this.emitFile({ type: 'asset', fileName: `${fileName}.gz`, source: gz })
        if (br.length < bytes.length) this.emitFile({ type: 'asset', fileName: `${fileName}.br`, source: br })
      }
    },
  }
}
