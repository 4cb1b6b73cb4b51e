// What a person at the browser waits for, in headless Chromium, driven by
// bench/bench.py (the `browser` phase) against the SPA behind nginx:
//   - from the click on "Start run" to the first log line on the run page;
//   - from each row of the run page's results table appearing, in the
//     page's own clock (the bench aligns them with the test's verdict).
// The page is left to its own one-second polling; nothing is forced.
//
//   node bench/browser.cjs BASE_URL RUNS TEST_FILE
//
// Prints one JSON object: {"runs": [{"run_id", "click_ms", "first_log_ms",
// "rows": {nodeid: epoch_ms}}]}; epoch milliseconds, from the page's
// Date.now() (same machine, same clock as the test's stamps).
'use strict';

const { chromium } = require('playwright-core');

const [BASE_ARG, RUNS_ARG, TEST_FILE] = process.argv.slice(2);
if (!BASE_ARG || !RUNS_ARG || !TEST_FILE) {
  console.error('usage: browser.cjs BASE_URL RUNS TEST_FILE');
  process.exit(2);
}
const BASE = BASE_ARG.replace(/\/$/, '');
const RUNS = Number(RUNS_ARG);
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
const CASES = Number(process.env.BENCH_BROWSER_CASES || '5');
const RUN_TIMEOUT = 120_000;

const FLAGS = [
  '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync',
  '--disable-dev-shm-usage',
];

// Runs in the page: records when the log pane first shows text and when
// each result row first appears, as the DOM changes.
function watch() {
  const seen = { firstLog: null, rows: {}, click: null };
  window.__bench = seen;
  const look = () => {
    const now = Date.now();
    if (seen.firstLog === null) {
      const pane = document.querySelector('.log-pane');
      if (pane && !pane.querySelector('.log-empty') && pane.textContent.trim().length > 0) {
        seen.firstLog = now;
      }
    }
    for (const code of document.querySelectorAll('section.cases tbody tr code.nodeid')) {
      const nodeid = code.textContent.trim();
      if (!(nodeid in seen.rows)) seen.rows[nodeid] = now;
    }
  };
  new MutationObserver(look).observe(document.body, {
    childList: true, subtree: true, characterData: true,
  });
  // The moment of the click itself, before the SPA handles it.
  document.addEventListener('click', (event) => {
    const button = event.target.closest('button');
    if (button && button.textContent.includes('Start run') && seen.click === null) {
      seen.click = Date.now();
    }
  }, true);
}

async function main() {
  const browser = await chromium.launch({ executablePath: CHROMIUM, args: FLAGS });
  const password = (process.env.BENCH_ADMIN_PASSWORD || '').trim();
  const context = await browser.newContext();
  const page = await context.newPage();
  const out = [];
  try {
    // A person logs in once, as the SPA asks; the session cookie does the rest.
    if (password) {
      await page.goto(`${BASE}/login`);
      await page.fill('#login-username', 'admin');
      await page.fill('#login-password', password);
      await page.getByRole('button', { name: 'Log in' }).click();
      await page.waitForURL((url) => url.pathname !== '/login');
    }
    for (let i = 0; i < RUNS; i += 1) {
      // Environments 1, 2, …: each run starts on an idle one.
      const environment = String((i % 100) + 1);
      await page.goto(`${BASE}/runs/new`);
      await page.getByRole('heading', { name: 'New run' }).waitFor();
      // With accounts, a run is its caller's: the form's name must be ours.
      await page.fill('#username', password ? 'admin' : 'bench-browser');
      await page.selectOption('#environment', environment);
      await page.fill('#test-search', TEST_FILE.split('/').pop().replace(/\.py$/, ''));
      await page.getByLabel(`Test file ${TEST_FILE}`).check();
      await page.evaluate(watch);
      await page.getByRole('button', { name: 'Start run' }).click();
      await page.waitForURL(/\/runs\/\d+$/, { timeout: 15_000 });
      const runId = Number(new URL(page.url()).pathname.split('/').pop());
      await page.waitForFunction(
        (cases) => window.__bench.firstLog !== null && Object.keys(window.__bench.rows).length >= cases,
        CASES, { timeout: RUN_TIMEOUT, polling: 100 });
      const seen = await page.evaluate(() => window.__bench);
      out.push({ run_id: runId, click_ms: seen.click, first_log_ms: seen.firstLog, rows: seen.rows });
      console.error(`[browser] run ${runId}: first log line ${seen.firstLog - seen.click} ms after the click`);
    }
  } finally {
    await browser.close();
  }
  process.stdout.write(JSON.stringify({ runs: out }) + '\n');
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
