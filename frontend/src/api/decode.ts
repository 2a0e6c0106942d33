// Decoders driven by the generated `schema`: the page never trusts `response.json()`
// (which is `any`), and a response that drifts from the contract fails loudly and clearly.
// What each response holds is written once, in the Rust types (see generated.ts); this
// file only knows how to check each kind of field.
import { schema, type ApiTypes } from './generated'

export class DecodeError extends Error {
  override name = 'DecodeError'
}

/** One field's type, as generated.ts writes it. */
export type Field =
  | 'string'
  | 'number'
  | 'boolean'
  | { readonly ref: keyof ApiTypes }
  | { readonly array: Field }
  | { readonly nullable: Field }
  | { readonly optional: Field }

/** One type: an object's fields, or one of a few strings. */
export type Shape = { readonly fields: Readonly<Record<string, Field>> } | { readonly oneOf: readonly string[] }

type Obj = Record<string, unknown>

function obj(u: unknown, what: string): Obj {
  if (typeof u !== 'object' || u === null || Array.isArray(u)) {
    throw new DecodeError(`${what}: expected an object`)
  }
  return u as Obj
}

/** What a field should be, in words, for error messages. */
function expected(f: Field): string {
  if (typeof f === 'string') return `a ${f}`
  if ('ref' in f) {
    const s: Shape = schema[f.ref]
    return 'oneOf' in s ? `one of ${s.oneOf.map((v) => `"${v}"`).join(', ')}` : `a ${f.ref}`
  }
  if ('array' in f) return 'an array'
  if ('nullable' in f) return `${expected(f.nullable)} or null`
  return expected(f.optional)
}

/** Checks value `v` of field `key` against `f`; returns it, with nested objects decoded. */
function value(key: string, f: Field, v: unknown): unknown {
  const wrong = (): never => {
    throw new DecodeError(`field "${key}" should be ${expected(f)}`)
  }
  if (typeof f === 'string') {
    if (typeof v !== f || (f === 'number' && !Number.isFinite(v))) wrong()
    return v
  }
  if ('nullable' in f) return v === null || v === undefined ? null : value(key, f.nullable, v)
  if ('optional' in f) return v === undefined ? undefined : value(key, f.optional, v)
  if ('array' in f) {
    if (!Array.isArray(v)) wrong()
    return (v as unknown[]).map((item) => value(key, f.array, item))
  }
  const s: Shape = schema[f.ref]
  if ('oneOf' in s && !(typeof v === 'string' && s.oneOf.includes(v))) wrong()
  return 'fields' in s ? decodeShape(f.ref, s, v) : v
}

function decodeShape(name: string, s: Shape, u: unknown): unknown {
  if ('oneOf' in s) return value(name, { ref: name as keyof ApiTypes }, u)
  const o = obj(u, name)
  const out: Obj = {}
  for (const [key, f] of Object.entries(s.fields)) {
    const v = value(key, f, o[key])
    if (v !== undefined) out[key] = v
  }
  return out
}

/** Checks `u` against the schema of type `name`; extra fields are dropped. */
export function decode<K extends keyof ApiTypes>(name: K, u: unknown): ApiTypes[K] {
  return decodeShape(name, schema[name], u) as ApiTypes[K]
}

export const decodeSession = (u: unknown) => decode('SessionResponse', u)
export const decodeInstances = (u: unknown) => decode('InstancesResponse', u)
export const decodeKv = (u: unknown) => decode('KvResponse', u)
export const decodeEnqueue = (u: unknown) => decode('EnqueueResponse', u)
export const decodeJobs = (u: unknown) => decode('JobsResponse', u)
export const decodeRedis = (u: unknown) => decode('RedisTier', u)

/** The `error` sentence of an error body, if the body has one. */
export function errorMessage(u: unknown): string | null {
  if (typeof u !== 'object' || u === null) return null
  const v = (u as Obj).error
  return typeof v === 'string' && v.length > 0 ? v : null
}
