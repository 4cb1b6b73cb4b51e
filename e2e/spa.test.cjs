// End-to-end test of the SPA in headless Chromium, through nginx, against
// the real backend and Postgres. Started by scripts/e2e.sh, which sets:
//   E2E_BASE_URL     nginx, e.g. http://127.0.0.1:18000
//   E2E_SCREENSHOTS  where the screenshots go (target/screenshots)
//   CHROMIUM         the browser (default /usr/bin/chromium)
//   E2E_ADMIN_TOKEN  the backend's ADMIN_TOKEN, for the test's own API calls
// and puts .local/node/node_modules on NODE_PATH for playwright-core.
'use strict';

const fs = require('fs');
const http = require('http');
const path = require('path');
const { chromium } = require('playwright-core');

const BASE = (process.env.E2E_BASE_URL || 'http://127.0.0.1:8000').replace(/\/$/, '');
const SHOTS = process.env.E2E_SCREENSHOTS || path.join(__dirname, '..', 'target', 'screenshots');
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
// A run of the fixtures takes a few seconds; leave room for a slow machine.
const RUN_TIMEOUT = 90_000;
const ADMIN_TOKEN = process.env.E2E_ADMIN_TOKEN || '';
// The browser's user: an admin, so that every page and button shows.
const USER = 'e2e-alice';
const PASSWORD = 'e2e-alice-password';

const FLAGS = [
  '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync',
  '--disable-dev-shm-usage',
];

fs.mkdirSync(SHOTS, { recursive: true });

let page;
let shotCount = 0;
const pageErrors = [];
const failedRequests = [];

async function shot(name, options = {}) {
  shotCount += 1;
  const file = path.join(SHOTS, `${String(shotCount).padStart(2, '0')}-${name}.png`);
  await page.screenshot({ path: file, fullPage: true, ...options });
  console.log(`    screenshot ${path.relative(process.cwd(), file)}`);
}

function assert(condition, message) {
  if (!condition) throw new Error(`assertion failed: ${message}`);
}

async function api(method, url, body) {
  const headers = { authorization: `Bearer ${ADMIN_TOKEN}` };
  if (body) headers['content-type'] = 'application/json';
  const response = await fetch(BASE + url, {
    method,
    headers,
    body: body ? JSON.stringify(body) : undefined,
  });
  const text = await response.text();
  if (!response.ok) throw new Error(`${method} ${url}: ${response.status} ${text}`);
  return text ? JSON.parse(text) : null;
}

/** Waits until the run's row on the runs page shows `status`. */
async function waitForRowStatus(id, status, timeout = RUN_TIMEOUT) {
  await page.locator(`tr[data-run-id="${id}"] .badge[data-status="${status}"]`)
    .waitFor({ state: 'visible', timeout });
}

/** Polls the API until run `id` is finished; answers the run. */
async function waitForRunFinished(id, timeout = RUN_TIMEOUT) {
  const deadline = Date.now() + timeout;
  for (;;) {
    const run = await api('GET', `/api/runs/${id}`);
    if (!['queued', 'running'].includes(run.status)) return run;
    if (Date.now() > deadline) throw new Error(`run ${id} is still ${run.status} after ${timeout} ms`);
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
}

/** The outcome of a history cell, from its class. */
function outcomeOf(className) {
  const match = /outcome-(\w+)/.exec(className);
  return match ? match[1] : null;
}

async function runIdFromUrl() {
  await page.waitForURL(/\/runs\/\d+$/, { timeout: 15_000 });
  return Number(new URL(page.url()).pathname.split('/').pop());
}

const steps = [];
/** A critical step's failure stops the test: the later ones build on it. */
function step(name, body, { critical = false } = {}) { steps.push({ name, body, critical }); }

const state = {};

async function logIn(user, password) {
  await page.getByRole('heading', { name: 'Log in' }).waitFor();
  await page.fill('#login-username', user);
  await page.fill('#login-password', password);
  await page.getByRole('button', { name: 'Log in' }).click();
}

step('a stranger is sent to the login page; a wrong password is refused; the right one lets in', async () => {
  await api('POST', '/api/users', { username: USER, role: 'admin', password: PASSWORD });
  await page.goto(BASE + '/');
  await page.waitForURL(/\/login\?next=/);
  await shot('login');
  await logIn(USER, 'not the password');
  await page.getByText('wrong user name or password').waitFor();
  await logIn(USER, PASSWORD);
  await page.waitForURL(`${BASE}/`);
  await page.locator('.user-menu .user-name', { hasText: USER }).waitFor();
}, { critical: true });

step('the runs page renders, empty on a fresh database', async () => {
  await page.goto(BASE + '/');
  await page.getByRole('heading', { name: 'Runs' }).waitFor();
  await page.getByText('No runs yet').waitFor();
  // Survives client-side navigation only: a reload would lose it.
  await page.evaluate(() => { window.__e2eNoReload = true; });
  await shot('runs-empty');
}, { critical: true });

step('a validation error appears next to its field', async () => {
  await page.getByRole('link', { name: 'New run', exact: true }).first().click();
  await page.getByRole('heading', { name: 'New run' }).waitFor();
  await page.getByLabel('Test file e2e_smoke/test_quick.py').waitFor();
  await page.fill('#username', '   ');
  await page.getByRole('button', { name: 'Start run' }).click();
  // The server's 422 names both fields; each message sits by its field.
  const usernameError = page.locator('#username-error');
  await usernameError.waitFor();
  const usernameField = page.locator('.field', { has: page.locator('#username') });
  assert(await usernameField.locator('#username-error').count() === 1,
    'the user name error is inside the user name field');
  assert((await usernameError.textContent()).trim().length > 0, 'the user name error says something');
  await page.locator('#tests-error').waitFor();
  assert(await page.locator('#username').getAttribute('aria-invalid') === 'true',
    'the user name input is marked invalid');
  await shot('new-run-validation');
});

step('create a run through the form', async () => {
  await page.fill('#username', 'e2e-alice');
  await page.selectOption('#environment', '3');
  await page.fill('#test-search', 'quick');
  await page.getByLabel('Test file e2e_smoke/test_quick.py').check();
  await page.locator('.selection code', { hasText: 'e2e_smoke/test_quick.py' }).waitFor();
  // Fixing a field takes back the complaint about it.
  assert(await page.locator('#username-error').count() === 0, 'the user name error is gone');
  assert(await page.locator('#tests-error').count() === 0, 'the tests error is gone');
  await shot('new-run-filled');
  await page.getByRole('button', { name: 'Start run' }).click();
  state.runId = await runIdFromUrl();
  await page.getByRole('heading', { name: `Run #${state.runId}` }).waitFor();
}, { critical: true });

step('the runs page shows it reach success without reloading', async () => {
  await page.getByRole('link', { name: 'Runs', exact: true }).click();
  const row = page.locator(`tr[data-run-id="${state.runId}"]`);
  await row.waitFor();
  // Queued or running first (the run takes a couple of seconds).
  const status = await row.locator('.badge').getAttribute('data-status');
  console.log(`    first seen as ${status}`);
  if (status === 'running' || status === 'queued') {
    await waitForRowStatus(state.runId, 'running', 15_000).catch(() => {});
    if (await row.locator('.badge[data-status="running"]').count()) await shot('runs-running');
  }
  await waitForRowStatus(state.runId, 'success');
  assert(await page.evaluate(() => window.__e2eNoReload === true), 'the page was never reloaded');
  assert((await row.textContent()).includes('e2e-alice'), 'the row names the requester');
  // The chart of the latest finished runs follows the table.
  await page.locator(`.run-trend rect.bar.status-success`).first().waitFor();
  assert((await page.locator('.run-trend .pass-rate').textContent()) === '100 %', 'all passed so far');
  await shot('runs-success');
}, { critical: true });

step('the run shows its log and per-test results', async () => {
  await page.locator(`tr[data-run-id="${state.runId}"] td[data-label="Requested by"]`).click();
  await page.waitForURL(new RegExp(`/runs/${state.runId}$`));
  await page.locator('.log-pane[data-complete="true"]').waitFor({ timeout: RUN_TIMEOUT });
  const log = await page.locator('.log-pane').textContent();
  assert(log.includes('test_quick.py'), 'the log names the test file');
  assert(/passed/i.test(log), 'the log says passed');
  assert(!log.includes('\u001b') && !/\[\d+(;\d+)*m/.test(log), 'no raw ANSI codes in the log');
  assert(await page.locator('.log-pane span[class*="ansi-fg-"]').count() > 0,
    'pytest colours are rendered as coloured spans');
  const cases = page.locator('section.cases tbody tr');
  await cases.first().waitFor();
  assert(await cases.count() === 3, `three per-test results (got ${await cases.count()})`);
  const nodeids = await page.locator('section.cases .nodeid').allTextContents();
  assert(nodeids.some((n) => n.includes('test_takes_a_moment')), 'the slow test is listed');
  assert(await page.locator('section.cases .badge.outcome-passed').count() === 3, 'all passed');
  assert((await page.locator('ul.summary').textContent()).includes('3'), 'the summary counts 3');
  const raw = await page.getByRole('link', { name: 'Raw log' }).getAttribute('href');
  assert(raw === `/api/runs/${state.runId}/log.txt`, 'a link to the raw log');
  await shot('run-details');
});

step('a failing run lists its failures first, with their message', async () => {
  const run = await api('POST', '/api/runs', {
    environment_id: 4, paths: ['e2e_smoke/test_mixed.py'],
  });
  await page.goto(`${BASE}/runs/${run.id}`);
  await page.locator('.page-head .badge[data-status="failed"]').waitFor({ timeout: RUN_TIMEOUT });
  const first = page.locator('section.cases tbody tr').first();
  await first.waitFor();
  assert((await first.getAttribute('class')).includes('case-failed'), 'the failure comes first');
  assert((await first.textContent()).includes('test_fails'), 'it is test_fails');
  await first.locator('.case-message').waitFor();
  await page.getByRole('button', { name: 'Re-run failed' }).waitFor();
  await shot('run-failed');
  state.failedRunId = run.id;
});

const FLAKY = 'e2e_flaky/test_flaky.py::test_alternates';

step('a test that passes and fails by turns, run four times on one environment', async () => {
  // One after the other, so that run ids and the order of execution agree.
  state.flakyRuns = [];
  const statuses = [];
  for (let i = 0; i < 4; i += 1) {
    const run = await api('POST', '/api/runs', {
      environment_id: 12, paths: ['e2e_flaky/test_flaky.py'],
    });
    state.flakyRuns.push(run.id);
    statuses.push((await waitForRunFinished(run.id)).status);
  }
  assert(statuses.join() === 'success,failed,success,failed', `alternating results (${statuses})`);
}, { critical: true });

step('the Insights page lists the flaky test, and the window is kept in the URL', async () => {
  await page.getByRole('link', { name: 'Insights', exact: true }).click();
  await page.getByRole('heading', { name: 'Insights' }).waitFor();
  const flaky = page.locator('section[aria-labelledby="flaky-title"]');
  const row = flaky.locator(`tr[data-nodeid="${FLAKY}"]`);
  await row.waitFor();
  assert((await row.locator('.flips').textContent()) === '3', 'pass, fail, pass, fail: three flips');
  const runIds = await row.locator('.run-ids a').allTextContents();
  assert(runIds.length >= 2 && runIds.every((text) => /^#\d+$/.test(text)), `run links (${runIds})`);
  assert(runIds.includes(`#${state.flakyRuns[3]}`), 'the last flip\'s run is linked');
  assert(await flaky.locator('tr[data-nodeid="e2e_flaky/test_flaky.py::test_steady"]').count() === 0,
    'a steady test is not flaky');
  const failing = page.locator('section[aria-labelledby="failing-title"]');
  await failing.locator('tr[data-nodeid="e2e_smoke/test_mixed.py::test_fails"]').waitFor();
  assert(await flaky.locator('tr[data-nodeid="e2e_smoke/test_mixed.py::test_fails"]').count() === 0,
    'a test that always fails is failing, not flaky');
  assert(await page.getByRole('button', { name: '7 days' }).getAttribute('aria-pressed') === 'true',
    'a week by default');
  await shot('insights');
  await page.getByRole('button', { name: '30 days' }).click();
  await page.waitForURL(/\/insights\?days=30$/);
  assert(await page.getByRole('button', { name: '30 days' }).getAttribute('aria-pressed') === 'true',
    'the picked window is shown');
  await row.waitFor();
  await page.goto(`${BASE}/insights?days=1`);
  assert(await page.getByRole('button', { name: '1 day' }).getAttribute('aria-pressed') === 'true',
    'the window comes from the URL');
  await flaky.locator(`tr[data-nodeid="${FLAKY}"] .run-ids a`, { hasText: `#${state.flakyRuns[3]}` }).click();
  await page.waitForURL(new RegExp(`/runs/${state.flakyRuns[3]}$`));
});

step('a failed test shows its history; "Re-run failed" repeats only the failed test', async () => {
  const failedId = state.flakyRuns[3];
  await page.goto(`${BASE}/runs/${failedId}`);
  await page.locator('.page-head .badge[data-status="failed"]').waitFor({ timeout: RUN_TIMEOUT });
  const strip = page.locator(`section.cases tr.case-failed:has(code:text-is("${FLAKY}")) .history-strip`);
  await strip.waitFor();
  const cells = await strip.locator('a.history-cell').evaluateAll(
    (links) => links.map((a) => ({ id: Number(a.dataset.runId), className: a.className, title: a.title })));
  assert(cells.map((c) => c.id).join() === state.flakyRuns.join(), `oldest to newest (${cells.map((c) => c.id)})`);
  assert(cells.map((c) => outcomeOf(c.className)).join() === 'passed,failed,passed,failed',
    `the outcomes in order (${cells.map((c) => c.className)})`);
  assert(cells[3].className.includes('current'), 'this run is marked');
  assert(cells[0].title === `Run #${state.flakyRuns[0]}: passed`, `a tooltip (${cells[0].title})`);
  assert(await page.locator('section.cases tr.case-passed .history-strip').count() === 0,
    'only failures have a strip');
  await shot('run-history-strip');

  // The server's refusal is shown as it is.
  const rerunFailed = /\/api\/runs\/\d+\/rerun\?failed_only=true/;
  await page.route(rerunFailed, (route) => route.fulfill({
    status: 422,
    contentType: 'application/json',
    body: JSON.stringify({ error: { code: 'validation', message: 'e2e: nothing failed', fields: {} } }),
  }));
  await page.getByRole('button', { name: 'Re-run failed' }).click();
  await page.locator('.run-page .error[role="alert"]', { hasText: 'e2e: nothing failed' }).waitFor();
  await page.unroute(rerunFailed);

  await page.getByRole('button', { name: 'Re-run failed' }).click();
  await page.waitForURL((url) => /\/runs\/\d+$/.test(url.pathname) && !url.pathname.endsWith(`/${failedId}`));
  const rerunId = await runIdFromUrl();
  await page.getByRole('heading', { name: `Run #${rerunId}` }).waitFor();
  // The heading shows while the run is still loading: wait for its facts.
  await page.locator('.facts ul.paths li').first().waitFor();
  const paths = await page.locator('.facts ul.paths li').allTextContents();
  assert(paths.join() === FLAKY, `only the failed node id (${paths})`);
  assert((await page.locator('.facts').textContent()).includes(`#${failedId}`), 'it names the run it repeats');
  await page.locator('.page-head .badge[data-status="success"]').waitFor({ timeout: RUN_TIMEOUT });
  await page.locator('section.cases tbody tr').first().waitFor();
  const nodeids = await page.locator('section.cases .nodeid').allTextContents();
  assert(nodeids.join() === FLAKY, `only the failed test ran (${nodeids})`);
  await shot('rerun-failed');
});

step('the runs page charts the latest finished runs, with the pass rate and median', async () => {
  await page.goto(BASE + '/');
  const { items } = await api('GET', '/api/runs?per_page=50');
  const finished = items.filter((run) => !['queued', 'running'].includes(run.status));
  const judged = finished.filter((run) => run.status !== 'cancelled');
  const passed = judged.filter((run) => run.status === 'success').length;
  const percent = Math.floor((passed * 100 + Math.floor(judged.length / 2)) / judged.length);
  const chart = page.locator('.run-trend');
  await chart.locator(`text=Last ${finished.length} finished runs`).waitFor();
  assert(await chart.locator('rect.bar').count() === finished.length, 'a bar per finished run');
  assert(await chart.locator('rect.bar.status-failed').count() === finished.filter((r) => r.status === 'failed').length,
    'failed runs are drawn as such');
  assert((await chart.locator('.pass-rate').textContent()) === `${percent} %`, `the pass rate is ${percent} %`);
  assert(/\d/.test(await chart.locator('.median-duration').textContent()), 'a median duration');
  await shot('runs-trend');
  // With a filter the table shows other runs; the chart still shows them all.
  await page.goto(`${BASE}/?status=failed`);
  await chart.locator(`text=Last ${finished.length} finished runs`).waitFor();
  assert(await chart.locator('rect.bar').count() === finished.length, 'the chart ignores the filters');
  await chart.locator('rect.bar.status-failed').last().click();
  await page.waitForURL(/\/runs\/\d+$/);
  await page.locator('.page-head .badge[data-status="failed"]').waitFor();
});

step('a queued and a running run can be cancelled; the running one shows live progress', async () => {
  const running = await api('POST', '/api/runs', {
    environment_id: 7, paths: ['e2e_smoke/test_long.py'],
  });
  const queued = await api('POST', '/api/runs', {
    environment_id: 7, paths: ['e2e_smoke/test_long.py'],
  });
  await page.goto(`${BASE}/runs/${queued.id}`);
  await page.locator('.page-head .badge[data-status="queued"]').waitFor();
  // #2 until the first run is claimed, which a busy machine may take a moment to do.
  await page.locator('.facts', { hasText: '#1 in line' }).waitFor();
  await shot('run-queued');
  await page.getByRole('button', { name: 'Cancel' }).click();
  await page.locator('.page-head .badge[data-status="cancelled"]').waitFor();
  assert(await page.getByRole('button', { name: 'Cancel' }).count() === 0, 'no cancel once finished');

  await page.goto(`${BASE}/runs/${running.id}`);
  await page.locator('.page-head .badge[data-status="running"]').waitFor();
  // The log grows while the run runs, without a reload.
  await page.locator('.log-pane', { hasText: '[long] tick 3' }).waitFor({ timeout: 30_000 });
  await page.locator('.summary-block progress').waitFor();
  await shot('run-running');
  await page.getByRole('button', { name: 'Cancel' }).click();
  await page.locator('.page-head .badge[data-status="cancelled"]').waitFor({ timeout: 60_000 });
  await page.locator('.log-pane[data-complete="true"]').waitFor({ timeout: 30_000 });
});

step('upload a file into a new directory and run it', async () => {
  await page.getByRole('link', { name: 'Upload', exact: true }).click();
  await page.getByRole('heading', { name: 'Upload a test file' }).waitFor();
  state.uploadDir = `uploads/e2e-${Date.now().toString(36)}`;
  await page.setInputFiles('#upload-file', {
    name: 'test_uploaded.py',
    mimeType: 'text/x-python',
    buffer: Buffer.from('def test_uploaded():\n    print("uploaded and run")\n    assert True\n'),
  });
  await page.fill('#upload-directory', state.uploadDir);
  await page.getByRole('button', { name: 'Upload', exact: true }).click();
  const uploaded = page.locator('.verdict .uploaded-path');
  await uploaded.waitFor();
  assert((await uploaded.textContent()) === `${state.uploadDir}/test_uploaded.py`, 'the path is shown');
  await shot('upload-done');
  // The user name is remembered from the first run.
  assert(await page.inputValue('#quick-username') === 'e2e-alice', 'the user name is remembered');
  await page.getByRole('button', { name: 'Run it now' }).click();
  const id = await runIdFromUrl();
  await page.locator('.page-head .badge[data-status="success"]').waitFor({ timeout: RUN_TIMEOUT });
  await page.locator('.log-pane[data-complete="true"]').waitFor({ timeout: RUN_TIMEOUT });
  assert((await page.locator('.facts').textContent()).includes(`${state.uploadDir}/test_uploaded.py`),
    'the run names the uploaded file');
  await page.locator('section.cases .nodeid', { hasText: 'test_uploaded' }).waitFor();
  await shot('uploaded-run');
  state.uploadedRunId = id;
});

step('an upload with a Python syntax error shows the line', async () => {
  await page.getByRole('link', { name: 'Upload', exact: true }).click();
  await page.setInputFiles('#upload-file', {
    name: 'test_broken.py',
    mimeType: 'text/x-python',
    buffer: Buffer.from('def test_ok():\n    pass\n\ndef test_broken(:\n    pass\n'),
  });
  await page.fill('#upload-directory', state.uploadDir);
  await page.getByRole('button', { name: 'Upload', exact: true }).click();
  const problem = page.locator('form .field-error, form .error').first();
  await problem.waitFor();
  const text = await page.locator('form').textContent();
  assert(/line\s*4|:4\b|4:/i.test(text), `the syntax error names line 4 (${text.slice(0, 300)})`);
  await shot('upload-syntax-error');
});

step('the runs page filters by status and user, kept in the URL', async () => {
  await page.goto(`${BASE}/?status=success&username=e2e-alice`);
  await waitForRowStatus(state.runId, 'success');
  const statuses = await page.locator('tbody tr .badge').evaluateAll(
    (badges) => badges.map((b) => b.getAttribute('data-status')));
  assert(statuses.length >= 2 && statuses.every((s) => s === 'success'), `only successes (${statuses})`);
  assert(await page.locator(`tr[data-run-id="${state.failedRunId}"]`).count() === 0, 'no failed run');
  assert(await page.inputValue('#filter-status') === 'success', 'the status filter shows the URL');
  await page.selectOption('#filter-status', 'failed');
  await page.waitForURL(/status=failed/);
  await page.getByText('No run matches these filters.').waitFor();
  await shot('runs-filtered');
});

step('environments: list, edit and save', async () => {
  await page.goto(BASE + '/');
  await page.getByRole('link', { name: 'Environments', exact: true }).click();
  await page.locator('tr[data-environment-id="100"]').waitFor();
  assert(await page.locator('table.environments tbody tr').count() === 100, '100 environments');
  await shot('environments');
  await page.locator('tr[data-environment-id="5"]').getByRole('link', { name: 'Edit' }).click();
  await page.getByRole('heading', { name: 'Environment 5' }).waitFor();
  await page.fill('#env-name', 'e2e-env-5');
  await page.getByRole('button', { name: 'Add variable' }).click();
  await page.getByLabel('Name of variable 1').fill('API_URL');
  await page.getByLabel('Value of variable 1').fill('http://example.test');
  await page.getByRole('button', { name: 'Save' }).click();
  await page.getByText('Saved.').waitFor();
  const saved = await api('GET', '/api/environments/5');
  assert(saved.name === 'e2e-env-5' && saved.variables.API_URL === 'http://example.test', 'saved');
  await page.fill('#env-timeout', '0');
  await page.getByRole('button', { name: 'Save' }).click();
  await page.locator('#env-timeout-error').waitFor();
  await shot('environment-edit');
});

step('environments: delete one and create it again', async () => {
  await page.goto(`${BASE}/environments/99`);
  await page.getByRole('heading', { name: 'Environment 99' }).waitFor();
  await page.getByRole('button', { name: 'Delete' }).click();
  await page.getByRole('button', { name: 'Yes, delete' }).click();
  await page.waitForURL(/\/environments$/);
  await page.locator('tr[data-environment-id="100"]').waitFor();
  assert(await page.locator('tr[data-environment-id="99"]').count() === 0, 'environment 99 is gone');
  await page.getByRole('link', { name: 'New environment' }).click();
  await page.fill('#env-id', '98');
  await page.fill('#env-name', 'taken');
  await page.getByRole('button', { name: 'Create' }).click();
  // The server refuses an id in use (409): the form says so.
  await page.locator('form .error, #env-id-error').first().waitFor();
  await page.fill('#env-id', '99');
  await page.fill('#env-name', 'env-99 again');
  await page.fill('#env-description', 'created by the e2e test');
  await page.getByRole('button', { name: 'Create' }).click();
  await page.waitForURL(/\/environments\/99$/);
  const created = await api('GET', '/api/environments/99');
  assert(created.name === 'env-99 again', 'environment 99 exists again');
});

step('a run group: any environment of a label, split in two, followed as one', async () => {
  for (const id of [11, 12]) {
    await api('PUT', `/api/environments/${id}`, { labels: ['e2e-pool'] });
  }
  await page.getByRole('link', { name: 'New run', exact: true }).first().click();
  await page.getByRole('heading', { name: 'New run' }).waitFor();
  assert(await page.inputValue('#username') === USER, 'the user name is the logged-in user\'s');
  await page.selectOption('#environment', 'label:e2e-pool');
  await page.locator('#shards').waitFor();
  await page.fill('#shards', '2');
  await page.getByText('A run group: the test files split into up to 2 runs').waitFor();
  await page.fill('#test-search', 'e2e_smoke/test_');
  await page.getByLabel('Test file e2e_smoke/test_quick.py').check();
  await page.getByLabel('Test file e2e_smoke/test_mixed.py').check();
  await shot('new-run-group');
  await page.getByRole('button', { name: 'Start run' }).click();
  await page.waitForURL(/\/run-groups\/\d+$/, { timeout: 15_000 });
  const id = Number(new URL(page.url()).pathname.split('/').pop());
  await page.getByRole('heading', { name: `Run group #${id}` }).waitFor();
  await page.locator('table.shards tbody tr').nth(1).waitFor();
  assert(await page.locator('table.shards tbody tr').count() === 2, 'one row per shard');
  const deadline = Date.now() + RUN_TIMEOUT;
  let group;
  for (;;) {
    group = await api('GET', `/api/run-groups/${id}`);
    if (!['queued', 'running'].includes(group.status)) break;
    if (Date.now() > deadline) throw new Error(`run group ${id} is still ${group.status}`);
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
  await page.locator(`.page-head .badge[data-status="${group.status}"]`).waitFor();
  await page.getByText('2 of 2 shards finished').waitFor();
  for (const run of group.shard_runs) {
    assert([11, 12].includes(run.environment_id), `shard ran in the pool: ${run.environment_id}`);
  }
  const total = await page.locator('.summary .total .count-value').textContent();
  assert(Number(total) === group.summary.total, 'the summary adds the shards up');
  await shot('run-group');
  // A shard's page leads back to its group.
  await page.locator('table.shards tbody tr').first().locator('a').click();
  await page.getByRole('link', { name: new RegExp(`of group #${id}`) }).waitFor();
});

/** The board's tile of environment `id`. */
function tile(id) {
  return page.locator(`ul.board li[data-environment-id="${id}"]`);
}

step('the board shows every id with its state, holder and queue; a label filter narrows it', async () => {
  // Labels, a hold, a maintenance, a run going with one behind it, and an
  // id without an environment.
  await api('PUT', '/api/environments/21', { labels: ['e2e-eu', 'e2e-gpu'] });
  await api('PUT', '/api/environments/22', { labels: ['e2e-eu'] });
  await api('PUT', '/api/environments/23', { labels: ['e2e-us'] });
  await api('POST', '/api/environments/22/reservations',
    { minutes: 30, when: 'now', reason: 'e2e: a look' });
  await api('POST', '/api/environments/23/maintenance', { reason: 'e2e: new disks' });
  const long = await api('POST', '/api/runs',
    { environment_id: 24, paths: ['e2e_smoke/test_long.py'] });
  const behind = await api('POST', '/api/runs',
    { environment_id: 24, paths: ['e2e_smoke/test_quick.py'] });
  await api('DELETE', '/api/environments/97');

  await page.goto(BASE + '/');
  await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Board' }).click();
  await page.getByRole('heading', { name: 'Board' }).waitFor();
  await tile(100).waitFor();
  assert(await page.locator('ul.board li').count() === 100, 'a tile per id');
  await tile(22).locator('.badge', { hasText: 'held' }).waitFor();
  assert((await tile(22).textContent()).includes('admin'), 'the held tile names its holder');
  assert(await tile(23).getAttribute('data-state') === 'offline', 'maintenance without a run: offline');
  assert((await tile(23).textContent()).includes('e2e: new disks'), 'the offline tile says why');
  await tile(24).locator('.tile-holder', { hasText: 'admin' }).waitFor({ timeout: 30_000 });
  assert(await tile(24).getAttribute('data-state') === 'busy', 'the running run makes it busy');
  await tile(24).locator('.tile-queue', { hasText: '1 queued' }).waitFor();
  assert(/free ~\d\d:\d\d/.test(await tile(24).locator('.tile-queue').textContent()), 'an estimated free time');
  assert(await tile(97).getAttribute('data-state') === 'none', 'a deleted id is not set up');
  assert((await tile(97).textContent()).includes('not set up'), 'and says so in words');
  assert(await tile(1).locator('.badge').textContent() === 'free', 'a free environment says free');
  assert((await tile(21).locator('.label').allTextContents()).join() === 'e2e-eu,e2e-gpu', 'labels are shown');
  assert((await page.locator('.board-legend').textContent()).includes('1 held'), 'the legend counts states');
  await shot('board');

  await page.getByRole('button', { name: 'e2e-eu', exact: true }).click();
  await page.waitForURL(/\/board\?labels=e2e-eu$/);
  await tile(100).waitFor({ state: 'detached' });
  const shown = await page.locator('ul.board li').evaluateAll((tiles) => tiles.map((t) => t.dataset.environmentId));
  assert(shown.join() === '21,22', `only the environments labelled e2e-eu (${shown})`);
  await shot('board-filtered');
  await page.goto(`${BASE}/board?labels=e2e-gpu,e2e-eu`);
  await tile(21).waitFor();
  assert(await page.locator('ul.board li').count() === 1, 'both labels: one environment');
  assert(await page.getByRole('button', { name: 'e2e-gpu', exact: true }).getAttribute('aria-pressed') === 'true',
    'the filter comes from the URL');
  await tile(21).locator('a').click();
  await page.getByRole('heading', { name: 'Environment 21' }).waitFor();
  assert(await page.inputValue('#env-labels') === 'e2e-eu, e2e-gpu', 'the labels are editable');

  // An id without an environment: the tile opens the form, id filled in.
  await page.goto(BASE + '/board');
  await tile(97).locator('a').click();
  await page.waitForURL(/\/environments\/new\?id=97$/);
  assert(await page.inputValue('#env-id') === '97', 'the id is filled in');
  await page.fill('#env-name', 'env-97');
  await page.fill('#env-labels', 'e2e-us, spare');
  await page.getByRole('button', { name: 'Create' }).click();
  await page.waitForURL(/\/environments\/97$/);
  const created = await api('GET', '/api/environments/97');
  assert(created.labels.join() === 'e2e-us,spare', `labels saved (${created.labels})`);

  await api('POST', `/api/runs/${behind.id}/cancel`);
  await api('POST', `/api/runs/${long.id}/cancel`);
  await api('DELETE', '/api/environments/23/maintenance');
  await api('DELETE', `/api/reservations/${(await api('GET', '/api/environments/22')).hold.reservation_id}`);
});

step('reserve an environment: held, a queued run says why and when, release lets it run', async () => {
  await page.goto(`${BASE}/environments/30`);
  await page.getByRole('heading', { name: 'Environment 30' }).waitFor();
  await page.locator('.sharing-now[data-state="idle"]').waitFor();
  // A bad length is refused next to its field, before anything is sent.
  await page.fill('#res-owner', USER);
  await page.fill('#res-minutes', '0');
  await page.getByRole('button', { name: 'Reserve', exact: true }).click();
  const minutesError = page.locator('#res-minutes-error');
  await minutesError.waitFor();
  assert((await minutesError.textContent()).includes('1 to 480'), 'the minutes error says the range');
  assert(await page.locator('#res-minutes').getAttribute('aria-invalid') === 'true', 'the input is marked');
  await page.fill('#res-minutes', '20');
  assert(await minutesError.count() === 0, 'fixing the minutes takes the complaint back');
  await page.fill('#res-reason', 'e2e: trying a fix');
  await page.getByRole('button', { name: 'Reserve', exact: true }).click();
  await page.locator('.page-head .badge[data-state="held"]').waitFor();
  const active = page.locator('li.reservation.active', { hasText: USER });
  await active.waitFor();
  assert((await active.textContent()).includes('e2e: trying a fix'), 'the reason is shown');
  assert((await page.locator('.sharing-now').textContent()).includes(`Held by ${USER}`), 'who holds it');

  // Now again: the server's 409, said plainly, with the way out.
  await page.getByRole('button', { name: 'Reserve', exact: true }).click();
  const conflict = page.locator('form.reserve .error', { hasText: `held by ${USER}` });
  await conflict.waitFor();
  await page.locator('form.reserve .hint', { hasText: 'Next in line' }).waitFor();
  await shot('environment-held');

  // Someone else's run waits, and says why and when it should start.
  const waiting = await api('POST', '/api/runs',
    { environment_id: 30, paths: ['e2e_smoke/test_quick.py'] });
  await page.goto(`${BASE}/?environment_id=30`);
  const row = page.locator(`tr[data-run-id="${waiting.id}"]`);
  const reason = row.locator('.queue-reason', { hasText: `held by ${USER} until` });
  await reason.waitFor();
  const reasonText = await reason.textContent();
  assert(/until (\d{4}-\d\d-\d\d )?\d\d:\d\d$/.test(reasonText), `the hold's end in local time (${reasonText})`);
  const estimate = await row.locator('.starts-in').textContent();
  assert(/^starts in ~(19|20|21) min$/.test(estimate), `the start is after the hold (${estimate})`);
  await shot('runs-waiting-for-hold');
  await page.goto(`${BASE}/runs/${waiting.id}`);
  await page.locator('.facts .status-reason', { hasText: `held by ${USER}` }).waitFor();
  await page.locator('.facts .expected-start .starts-in').waitFor();
  await shot('run-waiting-for-hold');

  // Next in line, then taken back; the hold extended; then released.
  await page.goto(`${BASE}/environments/30`);
  await active.waitFor();
  await page.fill('#res-owner', USER);
  await page.getByLabel('Next in line', { exact: false }).check();
  await page.getByRole('button', { name: 'Reserve', exact: true }).click();
  const next = page.locator('li.reservation.waiting', { hasText: USER });
  await next.waitFor();
  assert((await page.locator('.sharing-now').textContent()).includes('1 reservation waiting'), 'the queue counts it');
  await next.getByRole('button', { name: 'Cancel reservation' }).click();
  await next.waitFor({ state: 'detached' });
  const before = (await api('GET', '/api/environments/30')).hold.until;
  await active.locator('input.minutes').fill('10');
  await active.getByRole('button', { name: 'Extend' }).click();
  await page.locator('.sharing .saved', { hasText: 'Extended until' }).waitFor();
  const after = (await api('GET', '/api/environments/30')).hold.until;
  assert(Date.parse(after) - Date.parse(before) >= 9 * 60_000, `ten more minutes (${before} → ${after})`);
  await active.getByRole('button', { name: 'Release' }).click();
  await page.locator('.sharing .saved', { hasText: 'Released.' }).waitFor();
  await active.waitFor({ state: 'detached' });
  assert((await waitForRunFinished(waiting.id)).status === 'success', 'the waiting run ran once released');
  await page.locator('.page-head .badge[data-state="idle"]').waitFor();
  await page.locator('details.ended summary', { hasText: 'Ended recently' }).waitFor();
  await shot('environment-released');
});

step('maintenance from the environment page: offline with its reason, then back', async () => {
  await page.goto(`${BASE}/environments/31`);
  await page.locator('.sharing-now[data-state="idle"]').waitFor();
  await page.getByRole('button', { name: 'Start maintenance' }).click();
  await page.locator('#mnt-reason-error').waitFor();
  await page.fill('#mnt-reason', 'e2e: swapping cables');
  await page.getByRole('button', { name: 'Start maintenance' }).click();
  await page.locator('.page-head .badge[data-state="offline"]').waitFor();
  assert((await page.locator('.sharing-now').textContent()).includes('e2e: swapping cables'), 'the reason shows');
  await shot('environment-maintenance');
  await page.getByRole('button', { name: 'End maintenance' }).click();
  await page.locator('.page-head .badge[data-state="idle"]').waitFor();
});

step('a run asks for a hold on failure; its failure keeps the environment for its user', async () => {
  await page.goto(`${BASE}/runs/new`);
  await page.getByLabel('Test file e2e_smoke/test_mixed.py').waitFor();
  assert(await page.inputValue('#username') === USER, 'the user name is the logged-in user\'s');
  await page.selectOption('#environment', '32');
  await page.getByLabel('Test file e2e_smoke/test_mixed.py').check();
  await page.fill('#hold-minutes', '121');
  await page.getByRole('button', { name: 'Start run' }).click();
  await page.locator('#hold-minutes-error').waitFor();
  await page.fill('#hold-minutes', '5');
  await page.getByRole('button', { name: 'Start run' }).click();
  const id = await runIdFromUrl();
  await page.locator('.facts', { hasText: 'Hold on failure' }).waitFor();
  await page.locator('.page-head .badge[data-status="failed"]').waitFor({ timeout: RUN_TIMEOUT });
  await page.goto(BASE + '/board');
  await tile(32).locator('.badge', { hasText: 'held' }).waitFor();
  assert((await tile(32).textContent()).includes(USER), 'held for the run\'s user');
  const hold = (await api('GET', '/api/environments/32')).hold;
  await api('DELETE', `/api/reservations/${hold.reservation_id}`);
  state.heldRunId = id;
});

step('webhooks: a bad URL is refused; the event of a run shows in the delivery log', async () => {
  await page.goto(BASE + '/');
  await page.getByRole('link', { name: 'Webhooks', exact: true }).click();
  await page.getByText('No webhooks yet.').waitFor();
  await page.fill('input[name="url"]', 'ftp://example.test/hook');
  await page.getByRole('button', { name: 'Add webhook' }).click();
  await page.getByText('must be an http or https URL').first().waitFor();
  // Nobody listens on port 9: each attempt fails and is retried.
  await page.fill('input[name="url"]', 'http://127.0.0.1:9/hook');
  await page.getByLabel('run.finished').check();
  await page.getByRole('button', { name: 'Add webhook' }).click();
  const card = page.locator('article.webhook');
  await card.getByText('No deliveries yet.').waitFor();
  const run = await api('POST', '/api/runs',
    { environment_id: 31, paths: ['e2e_smoke/test_mixed.py'] });
  await waitForRunFinished(run.id);
  // Both events it subscribes to: the run finished, and failed.
  for (const event of ['run.finished', 'run.failed']) {
    await card.locator('tr[data-delivery-id]', { hasText: `${event} #${run.id}` })
      .waitFor({ timeout: 15_000 });
  }
  await card.locator('tr[data-delivery-id][data-state="pending"] td[data-label="Last answer"]')
    .filter({ hasText: /connect/i }).first().waitFor({ timeout: 15_000 });
  await shot('webhooks');
  await card.getByRole('button', { name: 'Delete' }).click();
  await page.getByText('No webhooks yet.').waitFor();
});

step('schedules: a bad time zone is refused; one is added with its next fire, disabled, deleted', async () => {
  await page.goto(BASE + '/');
  await page.getByRole('link', { name: 'Schedules', exact: true }).click();
  await page.getByText('No schedules yet.').waitFor();
  await page.fill('input[name="name"]', 'e2e nightly');
  await page.fill('input[name="cron"]', '0 3 * * 1-5');
  await page.fill('input[name="timezone"]', 'Mars/Olympus');
  await page.fill('input[name="target"]', '32');
  await page.fill('textarea[name="paths"]', 'e2e_smoke/test_mixed.py');
  await page.getByRole('button', { name: 'Add schedule' }).click();
  await page.getByText('is not an IANA time zone').first().waitFor();
  await page.fill('input[name="timezone"]', 'Europe/Berlin');
  await page.getByRole('button', { name: 'Add schedule' }).click();
  const row = page.locator('table.schedules tr[data-schedule-id]');
  await row.locator('.next-fire time').waitFor();
  const [schedule] = await api('GET', '/api/schedules');
  assert(schedule.next_run_at && schedule.timezone === 'Europe/Berlin', 'a next fire in its time zone');
  await shot('schedules');
  await row.getByRole('button', { name: 'Disable' }).click();
  await row.locator('.next-fire', { hasText: 'disabled' }).waitFor();
  assert((await api('GET', `/api/schedules/${schedule.id}`)).next_run_at === null, 'disabled');
  await row.getByRole('button', { name: 'Edit' }).click();
  await page.fill('input[name="cron"]', '30 4 * * *');
  await page.getByRole('button', { name: 'Save schedule' }).click();
  await row.getByText('30 4 * * *').waitFor();
  await row.getByRole('button', { name: 'Delete' }).click();
  await page.getByText('No schedules yet.').waitFor();
});

step('keyword and markers, the marker picker fed from the catalog; they show on the run page', async () => {
  await page.goto(`${BASE}/runs/new`);
  await page.fill('#test-search', 'marked');
  await page.getByLabel('Test file selection/test_marked.py').check();
  await page.fill('#username', USER);
  await page.selectOption('#environment', '41');
  await page.fill('#markers', '(smoke');
  await page.getByRole('button', { name: 'Start run' }).click();
  await page.locator('#markers-error').waitFor();
  assert((await page.locator('#markers-error').textContent()).includes('parentheses'), 'says what is wrong');
  await page.fill('#markers', '');
  await page.locator('#marker-picker option[value="checkout"]').waitFor({ state: 'attached' });
  await page.selectOption('#marker-picker', 'smoke');
  await page.selectOption('#marker-picker', 'checkout');
  const markers = await page.inputValue('#markers');
  assert(markers === 'smoke and checkout', `picked markers are joined (got ${markers})`);
  await page.fill('#keyword', 'total');
  await shot('new-run-selection');
  await page.getByRole('button', { name: 'Start run' }).click();
  const id = await runIdFromUrl();
  await page.locator('.page-head .badge[data-status="success"]').waitFor({ timeout: RUN_TIMEOUT });
  assert(await page.locator('.selection-keyword').textContent() === 'total', 'the keyword is shown');
  assert(await page.locator('.selection-markers').textContent() === 'smoke and checkout', 'the markers are shown');
  const cases = page.locator('section.cases .nodeid');
  await cases.first().waitFor();
  const nodeids = await cases.allTextContents();
  assert(nodeids.length === 1 && nodeids[0].endsWith('test_checkout_total'),
    `exactly the selected test ran (got ${nodeids})`);
  const run = await api('GET', `/api/runs/${id}`);
  assert(run.keyword === 'total' && run.markers === 'smoke and checkout', 'kept on the run');
});

step('artifacts: the screenshot shows inline and under its test; a run can be pinned', async () => {
  const run = await api('POST', '/api/runs', {
    environment_id: 41, paths: ['artifacts/test_screenshot.py'],
  });
  await page.goto(`${BASE}/runs/${run.id}`);
  await page.locator('.page-head .badge[data-status="success"]').waitFor({ timeout: RUN_TIMEOUT });
  const image = page.locator('section.artifacts img[alt="screenshots/home.png"]');
  await image.waitFor();
  await page.waitForFunction(
    () => [...document.querySelectorAll('section.artifacts img')].every((img) => img.complete && img.naturalWidth > 0),
    null, { timeout: 10_000 });
  const listed = await page.locator('section.artifacts figcaption a').allTextContents();
  assert(listed.includes('report.json') && listed.includes('screenshots/home.png'), `both files are listed (got ${listed})`);
  assert(await page.locator('section.artifacts img[alt="report.json"]').count() === 0, 'only images inline');
  await page.locator('section.cases .case-attachments img[alt="screenshots/home.png"]').waitFor();
  await page.getByRole('button', { name: 'Pin', exact: true }).click();
  await page.getByRole('button', { name: 'Unpin', exact: true }).waitFor();
  await page.locator('.facts', { hasText: 'Pinned' }).waitFor();
  assert((await api('GET', `/api/runs/${run.id}`)).pinned === true, 'pinned through the API');
  await shot('run-artifacts');
});

step('a test that fails on one environment only: that environment is suspect, wherever health shows', async () => {
  const reach = 'e2e_health/test_reach.py';
  const good = await api('POST', '/api/runs', { environment_id: 42, paths: [reach] });
  assert((await waitForRunFinished(good.id)).status === 'success', 'it passes on environment 42');
  let failed;
  for (let i = 0; i < 3; i += 1) {
    failed = await api('POST', '/api/runs', { environment_id: 41, paths: [reach] });
    assert((await waitForRunFinished(failed.id)).status === 'failed', 'it fails on environment 41');
  }
  await page.goto(BASE + '/');
  await page.getByRole('link', { name: 'Health', exact: true }).click();
  await page.getByRole('heading', { name: 'Environment health' }).waitFor();
  const row = page.locator('table.health-ranking tr[data-environment-id="41"]');
  await row.waitFor();
  assert(await row.getAttribute('data-suspect') === 'true', 'environment 41 is suspect');
  assert(await page.locator('table.health-ranking tbody tr').first().getAttribute('data-environment-id') === '41',
    'least healthy first');
  const why = await row.textContent();
  assert(why.includes('3 of 3 failures are tests that pass on other environments'), `the reason in words (${why})`);
  assert(await page.locator('table.health-ranking tr[data-environment-id="42"]').getAttribute('data-suspect') === 'false',
    'environment 42 is fine');
  await shot('health-ranking');
  await page.goto(BASE + '/board');
  await tile(41).locator('.tile-health .badge.suspect').waitFor();
  await page.goto(`${BASE}/environments/41`);
  await page.locator('.environment-health[data-suspect="true"]').waitFor();
  await page.goto(`${BASE}/runs/${failed.id}`);
  const elsewhere = page.locator('.passed-elsewhere');
  await elsewhere.waitFor({ timeout: RUN_TIMEOUT });
  assert((await elsewhere.textContent()) === 'passed on 1 other environment this week', 'where it passed');
  await shot('run-passed-elsewhere');
});

step('an unknown address shows the not-found page', async () => {
  await page.goto(BASE + '/no/such/page');
  await page.getByRole('heading', { name: 'Page not found' }).waitFor();
  await shot('not-found');
});

step('the page runs under a strict Content-Security-Policy; another site cannot change anything', async () => {
  const response = await page.goto(BASE + '/');
  // The app started: its scripts are this site's own, no inline one.
  await page.getByRole('heading', { name: 'Runs' }).waitFor();
  const headers = response.headers();
  const csp = headers['content-security-policy'] || '';
  for (const part of ["default-src 'self'", "script-src 'self' 'wasm-unsafe-eval'", "frame-ancestors 'none'"]) {
    assert(csp.includes(part), `the page's CSP has ${part} (got ${csp})`);
  }
  assert(!csp.includes('unsafe-inline'), 'no inline scripts or styles allowed');
  assert(headers['x-content-type-options'] === 'nosniff', 'nosniff on the page');
  const log = await fetch(`${BASE}/api/runs/${state.runId}/log.txt`,
    { headers: { authorization: `Bearer ${ADMIN_TOKEN}` } });
  assert((log.headers.get('content-disposition') || '').startsWith('attachment'), 'the raw log is a download');

  // A page of another site (localhost is not 127.0.0.1 to a browser)
  // sends what browsers send cross-site without asking first: a form
  // posting a re-run, and fetches of a cancel and a multipart upload. The
  // backend, behind nginx, refuses all before doing anything.
  const runsBefore = (await api('GET', '/api/runs')).total;
  const elsewhere = http.createServer((request, response) => {
    response.setHeader('content-type', 'text/html');
    response.end(`<!doctype html><title>elsewhere</title>
      <form method="post" action="${BASE}/api/runs/${state.runId}/rerun"><button>win a prize</button></form>`);
  });
  await new Promise((resolve) => elsewhere.listen(0, '127.0.0.1', resolve));
  const evil = await page.context().newPage();
  await evil.goto(`http://localhost:${elsewhere.address().port}/`);
  const sent = await evil.evaluate(async ({ base, runId }) => {
    const form = new FormData();
    form.append('directory', 'evil');
    form.append('file', new Blob(['def test_pwned():\n    pass\n']), 'test_pwned.py');
    const results = [];
    for (const [url, body] of [[`${base}/api/runs/${runId}/cancel`, undefined], [`${base}/api/tests`, form]]) {
      // Answers to other sites are opaque, or blocked outright by the
      // API's Cross-Origin-Resource-Policy: either way the request went.
      try {
        results.push((await fetch(url, { method: 'POST', mode: 'no-cors', body })).type);
      } catch (error) {
        results.push(String(error));
      }
    }
    return results;
  }, { base: BASE, runId: state.runId });
  await Promise.all([evil.waitForURL(/\/rerun$/), evil.getByRole('button', { name: 'win a prize' }).click()]);
  const answer = await evil.textContent('body');
  await evil.close();
  elsewhere.close();
  assert(answer.includes('"forbidden"'), `the form's re-run was refused (got ${answer})`);
  assert(sent.length === 2, `the fetches ran (${sent})`);
  assert((await api('GET', '/api/runs')).total === runsBefore, 'no run was queued');
  const catalog = await api('GET', '/api/tests');
  assert(!catalog.files.some((f) => f.path.startsWith('evil/')), 'nothing was uploaded');
});

step('a banner shows while the API is unreachable, and goes when it is back', async () => {
  await page.goto(`${BASE}/runs/${state.runId}`);
  await page.locator('.log-pane[data-complete="true"]').waitFor();
  await page.goto(BASE + '/');
  await page.locator(`tr[data-run-id="${state.runId}"]`).waitFor();
  await page.route('**/api/**', (route) => route.abort('connectionrefused'));
  const banner = page.locator('.api-banner');
  await banner.waitFor({ timeout: 10_000 });
  assert((await banner.getAttribute('role')) === 'alert', 'the banner is announced');
  // The last data stays on screen.
  assert(await page.locator(`tr[data-run-id="${state.runId}"]`).count() === 1, 'the runs stay');
  await shot('api-unreachable');
  await page.unroute('**/api/**');
  await banner.waitFor({ state: 'detached', timeout: 10_000 });
});

step('phone width: runs, new run and run details', async () => {
  await page.setViewportSize({ width: 390, height: 844 });
  await page.goto(BASE + '/');
  await page.locator(`tr[data-run-id="${state.runId}"]`).waitFor();
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  assert(overflow <= 1, `no sideways scrolling on a phone (overflow ${overflow}px)`);
  await shot('phone-runs');
  await page.goto(BASE + '/runs/new');
  await page.getByLabel('Test file e2e_smoke/test_quick.py').waitFor();
  await shot('phone-new-run');
  await page.goto(`${BASE}/runs/${state.failedRunId}`);
  await page.locator('.log-pane[data-complete="true"]').waitFor();
  await shot('phone-run-details');
  await page.goto(BASE + '/insights');
  await page.locator(`tr[data-nodeid="${FLAKY}"]`).first().waitFor();
  const insightsOverflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  assert(insightsOverflow <= 1, `no sideways scrolling on a phone (overflow ${insightsOverflow}px)`);
  await shot('phone-insights');
  await page.goto(BASE + '/board');
  await tile(100).waitFor();
  const boardOverflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  assert(boardOverflow <= 1, `no sideways scrolling on a phone (overflow ${boardOverflow}px)`);
  await shot('phone-board');
  await page.goto(`${BASE}/environments/30`);
  await page.locator('.sharing-now').waitFor();
  await shot('phone-environment');
});

step('my tokens: a new token is shown once, works, and is revoked', async () => {
  await page.setViewportSize({ width: 1280, height: 860 });
  await page.goto(BASE + '/');
  await page.locator('.user-menu summary').click();
  await page.getByRole('link', { name: 'My tokens' }).click();
  await page.getByRole('heading', { name: 'My API tokens' }).waitFor();
  await page.fill('#token-name', 'e2e-ci');
  await page.fill('#token-days', '7');
  await page.getByRole('button', { name: 'Create token' }).click();
  const secret = (await page.locator('.token-secret').textContent()).trim();
  assert(secret.startsWith('te_'), `a token secret: ${secret}`);
  const me = await (await fetch(`${BASE}/api/auth/me`, { headers: { authorization: `Bearer ${secret}` } })).json();
  assert(me.username === USER, `the token acts as its owner: ${JSON.stringify(me)}`);
  const row = page.locator('table.tokens tr', { hasText: 'e2e-ci' });
  await row.waitFor();
  await shot('tokens');
  await row.getByRole('button', { name: 'Revoke' }).click();
  await row.waitFor({ state: 'detached' });
  const after = await fetch(`${BASE}/api/auth/me`, { headers: { authorization: `Bearer ${secret}` } });
  assert(after.status === 401, `a revoked token is refused (${after.status})`);
});

step('users: an admin creates a viewer and changes its role', async () => {
  await page.goto(BASE + '/users');
  await page.getByRole('heading', { name: 'Users' }).waitFor();
  await page.fill('#user-name', 'e2e-viewer');
  await page.selectOption('#user-role', 'viewer');
  await page.fill('#user-password', 'e2e-viewer-password');
  await page.getByRole('button', { name: 'Create user' }).click();
  const row = page.locator('tr[data-username="e2e-viewer"]');
  await row.waitFor();
  await shot('users');
  const users = await api('GET', '/api/users');
  assert(users.some((u) => u.username === 'e2e-viewer' && u.role === 'viewer'), 'created as a viewer');
});

step('the audit log lists changes, filtered by actor and action', async () => {
  await page.goto(BASE + '/audit');
  await page.getByRole('heading', { name: 'Audit log' }).waitFor();
  await page.locator('tr.audit-entry').first().waitFor();
  await page.fill('#audit-actor', USER);
  await page.fill('#audit-action', 'user');
  await page.getByRole('button', { name: 'Filter' }).click();
  await page.locator('tr.audit-entry[data-action="user.create"]', { hasText: 'e2e-viewer' }).waitFor();
  const actions = await page.locator('tr.audit-entry').evaluateAll((rows) => rows.map((r) => r.dataset.action));
  assert(actions.every((a) => a.startsWith('user.')), `only user actions: ${actions}`);
  await shot('audit');
});

step('a viewer sees no buttons it may not use', async () => {
  await page.locator('.user-menu summary').click();
  await page.getByRole('button', { name: 'Log out' }).click();
  await page.waitForURL(/\/login/);
  await logIn('e2e-viewer', 'e2e-viewer-password');
  await page.waitForURL(`${BASE}/`);
  await page.locator('.user-menu .user-name', { hasText: 'e2e-viewer' }).waitFor();
  assert(await page.getByRole('link', { name: 'New run', exact: true }).count() === 0, 'no New run link');
  await page.goto(`${BASE}/runs/${state.runId}`);
  await page.getByRole('heading', { name: `Run #${state.runId}` }).waitFor();
  assert(await page.getByRole('button', { name: 'Re-run' }).count() === 0, 'no Re-run button');
  await shot('viewer-run');
});

step('logged out, a page sends to the login page and back where it was', async () => {
  await page.locator('.user-menu summary').click();
  await page.getByRole('button', { name: 'Log out' }).click();
  await page.waitForURL(/\/login/);
  await page.goto(`${BASE}/insights?days=7`);
  await page.waitForURL(/\/login\?next=/);
  await logIn(USER, PASSWORD);
  await page.waitForURL(`${BASE}/insights?days=7`);
  await page.getByRole('heading', { name: 'Insights' }).waitFor();
});

(async () => {
  const browser = await chromium.launch({ executablePath: CHROMIUM, args: FLAGS });
  const context = await browser.newContext({ viewport: { width: 1280, height: 860 } });
  page = await context.newPage();
  page.setDefaultTimeout(20_000);
  page.on('pageerror', (error) => pageErrors.push(String(error)));
  page.on('console', (message) => {
    if (message.type() === 'error' && !/Failed to load resource|ERR_CONNECTION_REFUSED|net::ERR_FAILED/.test(message.text())) {
      pageErrors.push(`console: ${message.text()}`);
    }
  });
  page.on('requestfailed', (request) => failedRequests.push(request.url()));

  let failed = 0;
  for (const { name, body, critical } of steps) {
    const started = Date.now();
    try {
      await body();
      console.log(`  ok    ${name} (${((Date.now() - started) / 1000).toFixed(1)} s)`);
    } catch (error) {
      failed += 1;
      console.log(`  FAIL  ${name}\n        ${String(error.stack || error).split('\n').join('\n        ')}`);
      await shot(`FAILED-${name.replace(/[^a-z0-9]+/gi, '-').slice(0, 40)}`).catch(() => {});
      if (critical) break;
    }
  }
  if (pageErrors.length) {
    failed += 1;
    console.log(`  FAIL  the page reported errors:\n        ${pageErrors.join('\n        ')}`);
  }
  await browser.close();
  console.log(failed ? `e2e: ${failed} failure(s)` : `e2e: all ${steps.length} steps passed`);
  process.exit(failed ? 1 : 0);
})().catch((error) => {
  console.error(error);
  process.exit(1);
});
