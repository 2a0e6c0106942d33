// Browser test of the dashboard against a REAL running stack (Traefik, app
// replicas, worker, Redis), driving Debian's Chromium through playwright-core.
//
//   BASE_URL=http://localhost:8080 npm run test:e2e
//
// Prints one line per check and a closing "N passed, N failed" line; exits 1 on
// any failure. Every wait is bounded, and a watchdog ends the run if anything hangs.
// Screenshots go to e2e/artifacts/ (not committed).
import { mkdirSync } from 'node:fs'
import { fileURLToPath } from 'node:url'

import { chromium } from 'playwright-core'

const BASE_URL = (process.env.BASE_URL ?? 'http://localhost:8080').replace(/\/+$/, '')
const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium'
const ARTIFACTS = fileURLToPath(new URL('./artifacts/', import.meta.url))
const WATCHDOG_MS = 150_000

const LOOPBACK = new Set(['localhost', '127.0.0.1', '[::1]'])
const host = new URL(BASE_URL).hostname
if (!LOOPBACK.has(host) && !host.startsWith('127.')) {
  console.error(`refusing to test ${BASE_URL}: this test only talks to loopback addresses`)
  process.exit(2)
}

const watchdog = setTimeout(() => {
  console.error(`watchdog: the run took longer than ${WATCHDOG_MS / 1000} s`)
  console.log('0 passed, 1 failed')
  process.exit(1)
}, WATCHDOG_MS)

/** @type {string[]} */
const consoleErrors = []
/** @type {{ name: string, ok: boolean, detail: string }[]} */
const results = []
/** Set when the page itself does not load: the other checks are then not run. */
let pageDown = false

/**
 * @param {string} name
 * @param {() => Promise<string | void>} fn
 */
async function check(name, fn) {
  if (pageDown) {
    results.push({ name, ok: false, detail: 'not run: the page did not load' })
    console.log(`FAIL ${name} — not run: the page did not load`)
    return
  }
  const t0 = Date.now()
  try {
    const detail = (await fn()) ?? ''
    results.push({ name, ok: true, detail })
    console.log(`ok   ${name} (${Date.now() - t0} ms)${detail ? ` — ${detail}` : ''}`)
  } catch (err) {
    const detail = err instanceof Error ? (err.message.split('\n')[0] ?? '') : String(err)
    results.push({ name, ok: false, detail })
    console.log(`FAIL ${name} (${Date.now() - t0} ms) — ${detail}`)
  }
}

/** @param {number} ms */
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))

/**
 * Polls `probe` until it returns a value other than undefined, for at most `ms`.
 * @template T
 * @param {() => Promise<T | undefined>} probe
 * @param {number} ms
 * @param {string} what
 * @returns {Promise<T>}
 */
async function waitFor(probe, ms, what) {
  const deadline = Date.now() + ms
  for (;;) {
    const value = await probe()
    if (value !== undefined) return value
    if (Date.now() > deadline) throw new Error(`timed out after ${ms / 1000} s waiting for ${what}`)
    await sleep(200)
  }
}

/**
 * @param {import('playwright-core').Page} page
 * @param {string} testid
 * @returns {Promise<string | undefined>}
 */
async function text(page, testid) {
  const loc = page.locator(`[data-testid="${testid}"]`)
  if ((await loc.count()) === 0) return undefined
  const t = (await loc.first().textContent({ timeout: 1000 }))?.trim()
  return t === undefined || t === '' ? undefined : t
}

/** @param {string} s */
const toNumber = (s) => Number(s.replace(/[^0-9]/g, ''))

/** @param {import('playwright-core').Page} page */
function watchConsole(page) {
  page.on('console', (msg) => {
    if (msg.type() === 'error') {
      consoleErrors.push(`${msg.text()} (${msg.location().url || 'page'})`)
    }
  })
  page.on('pageerror', (err) => consoleErrors.push(`uncaught: ${err.message}`))
}

mkdirSync(ARTIFACTS, { recursive: true })

const browser = await chromium.launch({
  executablePath: CHROMIUM,
  headless: true,
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--no-first-run'],
  timeout: 30_000,
})

try {
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 }, colorScheme: 'dark' })
  context.setDefaultTimeout(10_000)
  const page = await context.newPage()
  watchConsole(page)

  await check('page loads and shows a first answer', async () => {
    const res = await page.goto(`${BASE_URL}/`, { waitUntil: 'domcontentloaded', timeout: 15_000 })
    if (res === null || !res.ok()) throw new Error(`GET / answered ${res?.status() ?? 'nothing'}`)
    const first = await waitFor(() => text(page, 'served-by'), 10_000, 'the first "served by"')
    return `first served by ${first}`
  })
  pageDown = results.at(-1)?.ok !== true

  await check('served-by takes at least 2 distinct values within 10 s', async () => {
    const seen = new Set()
    const deadline = Date.now() + 10_000
    while (Date.now() < deadline && seen.size < 2) {
      const v = await text(page, 'served-by')
      if (v !== undefined) seen.add(v)
      await sleep(250)
    }
    if (seen.size < 2) throw new Error(`only saw ${[...seen].join(', ') || 'nothing'}`)
    return [...seen].join(', ')
  })

  await check('session_count increases and session_id stays the same', async () => {
    const sid0 = await waitFor(() => text(page, 'session-id'), 5000, 'session_id')
    const n0 = toNumber(await waitFor(() => text(page, 'session-count'), 5000, 'session_count'))
    const n1 = await waitFor(
      async () => {
        const t = await text(page, 'session-count')
        const n = t === undefined ? NaN : toNumber(t)
        return n > n0 ? n : undefined
      },
      8000,
      `session_count to grow past ${n0}`,
    )
    const sid1 = await text(page, 'session-id')
    if (sid1 !== sid0) throw new Error(`session_id changed from ${sid0} to ${sid1}`)
    return `${n0} → ${n1}, session ${sid0.slice(0, 8)}…`
  })

  await check('an enqueued job reaches done', async () => {
    const name = `e2e-${Date.now().toString(36)}`
    const input = page.getByLabel('Job name', { exact: true })
    await input.fill(name)
    await input.press('Enter') // the form is keyboard-usable
    const row = page.locator(`tr[data-job-name="${name}"]`)
    const status = await waitFor(
      async () => {
        if ((await row.count()) === 0) return undefined
        const s = await row.first().getAttribute('data-status')
        return s === 'done' || s === 'dead' ? s : undefined
      },
      20_000,
      `job ${name} to finish`,
    )
    if (status !== 'done') throw new Error(`job ${name} ended ${status}`)
    const worker = (await row.first().locator('[data-replica]').first().getAttribute('data-replica')) ?? '?'
    return `${name} done by ${worker}`
  })

  await check('a shared key round-trips through set and get', async () => {
    const key = `e2e-key-${Date.now().toString(36)}`
    const value = `value-${Math.random().toString(36).slice(2, 8)}`
    await page.getByLabel('Key', { exact: true }).fill(key)
    await page.getByLabel('Value', { exact: true }).fill(value)
    await page.getByRole('button', { name: 'Set', exact: true }).click()
    const setBy = await waitFor(
      () =>
        page
          .locator(`li[data-op="set"][data-key="${key}"]`)
          .first()
          .getAttribute('data-served-by', { timeout: 500 })
          .then((v) => v ?? undefined)
          .catch(() => undefined),
      5000,
      'the set to be answered',
    )
    await page.getByLabel('Value', { exact: true }).fill('')
    await page.getByRole('button', { name: 'Get', exact: true }).click()
    const got = page.locator(`li[data-op="get"][data-key="${key}"]`).first()
    await got.waitFor({ timeout: 5000 })
    const gotValue = await got.getAttribute('data-value')
    const getBy = await got.getAttribute('data-served-by')
    if (gotValue !== value) throw new Error(`get ${key} returned ${gotValue ?? 'nothing'}, expected ${value}`)
    return `set on ${setBy}, read back on ${getBy}`
  })

  await check('a key the proxy refuses gets a readable message, not a bare HTTP 400', async () => {
    // Its own context, not watched: Chromium logs the refused request (400) as a console
    // error, which here is the expected outcome.
    const ctx = await browser.newContext()
    try {
      const p = await ctx.newPage()
      await p.goto(`${BASE_URL}/`, { waitUntil: 'domcontentloaded', timeout: 15_000 })
      const key = `e2e/${Date.now().toString(36)}`
      await p.getByLabel('Key', { exact: true }).fill(key)
      await p.getByRole('button', { name: 'Set', exact: true }).click()
      const entry = p.locator(`li[data-op="set"][data-key="${key}"]`).first()
      await entry.waitFor({ timeout: 5000 })
      const message = (await entry.locator('.error').textContent({ timeout: 1000 }))?.trim() ?? ''
      if (!message.includes('the proxy refuses keys containing /')) throw new Error(`shown: "${message}"`)
      return message
    } finally {
      await ctx.close()
    }
  })

  await check('the Redis panel shows the standalone Redis', async () => {
    // The host-mode stack runs one standalone redis-server.
    const view = await waitFor(
      async () => {
        const v = await page.locator('[data-testid="redis"]').first().getAttribute('data-view', { timeout: 1000 })
        return v === 'standalone' || v === 'unavailable' ? v : undefined
      },
      10_000,
      'the Redis panel to leave "loading"',
    )
    if (view !== 'standalone') throw new Error(`panel view: ${view}`)
    const line = await waitFor(() => text(page, 'redis-standalone'), 1000, 'the standalone line')
    if (!/^standalone Redis at \S+:\d+/.test(line)) throw new Error(`shown: "${line}"`)
    if (!line.includes('reachable') || line.includes('unreachable')) throw new Error(`primary not reachable: "${line}"`)
    return line.replace(/\s+/g, ' ')
  })

  // Let a few more polls fill the chart, then keep a picture for people to look at.
  if (!pageDown) {
    await sleep(3000)
    await page.screenshot({ path: `${ARTIFACTS}dashboard.png`, fullPage: true })
  }

  await check('fits a phone-width screen (375 px)', async () => {
    const phone = await browser.newContext({ viewport: { width: 375, height: 812 }, colorScheme: 'dark' })
    try {
      const p = await phone.newPage()
      watchConsole(p)
      await p.goto(`${BASE_URL}/`, { waitUntil: 'domcontentloaded', timeout: 15_000 })
      await waitFor(() => text(p, 'served-by'), 10_000, '"served by" on the phone')
      await sleep(2000)
      const overflow = await p.evaluate(() => document.documentElement.scrollWidth - window.innerWidth)
      await p.screenshot({ path: `${ARTIFACTS}dashboard-phone.png`, fullPage: true })
      if (overflow > 0) throw new Error(`page is ${overflow} px wider than the screen`)
      return 'no horizontal overflow'
    } finally {
      await phone.close()
    }
  })

  await check('no console errors', async () => {
    if (consoleErrors.length > 0) throw new Error(consoleErrors.slice(0, 5).join(' | '))
  })

  await context.close()
} finally {
  await browser.close()
  clearTimeout(watchdog)
}

const passed = results.filter((r) => r.ok).length
const failed = results.length - passed
if (!pageDown) console.log(`screenshots: ${ARTIFACTS}dashboard.png, ${ARTIFACTS}dashboard-phone.png`)
console.log(`${passed} passed, ${failed} failed`)
process.exit(failed === 0 ? 0 : 1)
