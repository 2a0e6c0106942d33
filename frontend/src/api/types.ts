// The API's response types, for `import type { Job } from '@/api/types'`. They are
// generated from the Rust types that produce each body: see generated.ts.
export type * from './generated'
