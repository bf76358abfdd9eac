/**
 * The dashboard and the report in a real headless Chromium (Debian's, driven by playwright-core), against a
 * running daemon with real jobs: a few pipelines, one of them failing until its input is fixed. Checked
 * against the daemon's own `status --json` and `explain --json`. Screenshots go to test/artifacts/.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { execa } from 'execa';
import { chromium, type Browser, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TestDataset } from '../helpers/dataset.js';
import { startDaemon, waitIdle, type RunningDaemon } from '../helpers/daemon.js';

const ARTIFACTS = new URL('../artifacts/', import.meta.url).pathname;
const TOKEN = 'a-dashboard-token-0123456789';
const CHROMIUM = process.env['MINIPACH_CHROMIUM'] ?? '/usr/bin/chromium';

const spec = (repo: string, stdin: string) => `input: {pfs: {repo: ${repo}, glob: "/*"}}\ntransform:\n  cmd: [sh, -c]\n  stdin: [${JSON.stringify(stdin)}]\n`;

interface PipelineStatus {
  name: string;
  datums: number;
  /** Datums without a result, blocked ones included. */
  failed: number;
  blocked: number;
}

describe('the dashboard and the report', () => {
  let ds: TestDataset;
  let daemon: RunningDaemon;
  let browser: Browser;
  let flagDir: string;
  const cleanups: (() => Promise<unknown> | unknown)[] = [];

  beforeAll(async () => {
    mkdirSync(ARTIFACTS, { recursive: true });
    flagDir = mkdtempSync(path.join(os.tmpdir(), 'minipach-ui-flag-'));
    cleanups.push(() => rmSync(flagDir, { recursive: true, force: true }));
    ds = await TestDataset.create();
    cleanups.push(() => ds.cleanup());
    ds.write({
      'raw/a/x.txt': 'alpha\n',
      'raw/b/x.txt': 'beta\n',
      'up/spec.yml': spec('raw', 'cat "$MINIPACH_IN_raw"/x.txt | tr a-z A-Z > "$MINIPACH_OUT/u.txt"'),
      'count/spec.yml': spec('up', 'wc -c < "$MINIPACH_IN_up"/u.txt > "$MINIPACH_OUT/n"'),
      // Fails for subject b until its flag exists (the input was "fixed"); then Retry runs it again.
      'check/spec.yml': spec('raw', `if [ "$(basename "$MINIPACH_IN_raw")" = b ] && [ ! -f ${flagDir}/fixed ]; then echo "subject b looks wrong" >&2; exit 3; fi; cp "$MINIPACH_IN_raw"/x.txt "$MINIPACH_OUT/ok"`),
      'after/spec.yml': spec('check', 'cat "$MINIPACH_IN_check"/ok > "$MINIPACH_OUT/copy"'),
    });
    await ds.save('a study');
    daemon = await startDaemon(ds.dir, ['--workers', '1'], { MINIPACH_API_TOKEN: TOKEN });
    cleanups.push(() => daemon.stop());
    await waitIdle(daemon.url, 120_000, TOKEN);
    browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'] });
    cleanups.push(() => browser.close());
  }, 180_000);

  afterAll(async () => {
    for (const c of cleanups.splice(0).reverse()) await Promise.resolve(c()).catch(() => undefined);
  });

  const statusJson = async () => {
    const r = await ds.minipach('status', '--json');
    return (JSON.parse(r.stdout) as { datasets: { pipelines: PipelineStatus[]; last_run?: { head: string } }[] }).datasets[0]!;
  };
  /** status --json once its last run planned the head the page shows (the page follows runs as they end). */
  const statusOfPage = async (page: Page) => {
    for (const end = Date.now() + 30_000; ; await new Promise((r) => setTimeout(r, 300))) {
      const s = await statusJson();
      if (s.last_run?.head === (await page.evaluate(() => document.body.dataset['head'])) || Date.now() > end) return s.pipelines;
    }
  };
  const count = async (page: Page, pipeline: string, state: string) => Number(((await page.locator(`[data-pipeline="${pipeline}"] [data-state="${state}"]`).textContent()) ?? '').split(' ')[0]);
  const counts = async (page: Page, pipeline: string) => {
    const out: Record<string, number> = {};
    for (const s of ['done', 'running', 'queued', 'failed', 'blocked']) out[s] = await count(page, pipeline, s);
    return out;
  };

  it('without the token: nothing but a sign-in prompt', async () => {
    const page = await browser.newPage();
    const r = await page.goto(daemon.url);
    expect(r?.status()).toBe(401);
    await expect(page.locator('input[name="token"]').count()).resolves.toBe(1);
    expect(await page.locator('[data-pipeline]').count()).toBe(0);
    expect(await page.content()).not.toContain('check');
    // The API and the assets too.
    expect((await fetch(`${daemon.url}/api/overview`)).status).toBe(401);
    expect((await fetch(`${daemon.url}/ui/app.js`)).status).toBe(401);
    await page.locator('input[name="token"]').fill('not-the-token');
    await page.locator('button').click();
    await expect(page.locator('.problem').textContent()).resolves.toMatch(/not the token/);
    await page.screenshot({ path: path.join(ARTIFACTS, 'dashboard-sign-in.png') });
    await page.close();
  }, 60_000);

  it('shows the DAG with the counts status --json has, a failed datum\'s log, Retry, provenance and live updates, without console errors', async () => {
    const context = await browser.newContext({ viewport: { width: 1400, height: 1000 } });
    const page = await context.newPage();
    const errors: string[] = [];
    await page.goto(daemon.url);
    await page.locator('input[name="token"]').fill(TOKEN);
    await page.locator('button').click();
    // Signed in: from here on, not one console error.
    page.on('console', (m) => m.type() === 'error' && errors.push(m.text()));
    page.on('pageerror', (e) => errors.push(e.message));
    await page.locator('[data-pipeline="after"]').waitFor();

    const status = await statusOfPage(page);
    expect(status.map((p) => p.name).sort()).toEqual(['after', 'check', 'count', 'up']);
    for (const p of status) {
      const c = await counts(page, p.name);
      expect(Object.values(c).reduce((a, b) => a + b, 0), p.name).toBe(p.datums);
      expect([c['failed'], c['blocked']], p.name).toEqual([p.failed - p.blocked, p.blocked]);
    }
    expect(await counts(page, 'check')).toEqual({ done: 1, running: 0, queued: 0, failed: 1, blocked: 0 });
    expect(await counts(page, 'after')).toEqual({ done: 1, running: 0, queued: 0, failed: 0, blocked: 1 });
    expect(await page.locator('[data-repo="raw"]').count()).toBe(1);
    await page.screenshot({ path: path.join(ARTIFACTS, 'dashboard.png') });

    // The failed datum: its exit code, stderr and whole log.
    await page.locator('[data-pipeline="check"]').click();
    await page.locator('.tabulator-row', { hasText: 'failed' }).click();
    await expect(page.locator('#stderr-tail').textContent()).resolves.toContain('subject b looks wrong');
    await page.waitForFunction(() => /subject b looks wrong/.test(document.getElementById('datum-log')?.textContent ?? ''));
    await expect(page.locator('#datum').textContent()).resolves.toMatch(/exit code3/);
    await page.screenshot({ path: path.join(ARTIFACTS, 'dashboard-failed-datum.png') });

    // Fixed, then Retry: it runs again and the page follows without a reload (so does its downstream datum).
    writeFileSync(path.join(flagDir, 'fixed'), '');
    const head = await page.evaluate(() => document.body.dataset['head']);
    await page.locator('#retry').click();
    await page.waitForFunction(() => /retried check\/b/.test(document.getElementById('retry-status')?.textContent ?? ''));
    await page.waitForFunction(() => document.querySelector('[data-pipeline="after"] [data-state="done"]')?.textContent === '2 done', undefined, { timeout: 90_000 });
    expect(await page.evaluate(() => document.body.dataset['head'])).not.toBe(head);
    expect(await counts(page, 'check')).toEqual({ done: 2, running: 0, queued: 0, failed: 0, blocked: 0 });
    await waitIdle(daemon.url, 60_000, TOKEN);

    // Provenance of a file, against explain --json.
    const explained = JSON.parse((await ds.minipach('explain', 'count/a/n', '--json')).stdout) as { datums: { pipeline: string; datum: string; rerun: string }[] };
    await page.locator('#tabs button[data-tab="provenance"]').click();
    await page.locator('#explain-path').fill('count/a/n');
    await page.locator('#explain-form button').click();
    await page.locator('#explain-graph [data-datum="count/a"]').waitFor();
    const drawn = await page.locator('#explain-graph [data-datum]').evaluateAll((els) => els.map((e) => e.getAttribute('data-datum')));
    expect(drawn.sort()).toEqual(explained.datums.map((d) => `${d.pipeline}/${d.datum}`).sort());
    expect(await page.locator('#explain-graph [data-raw="raw/a/x.txt"]').count()).toBe(1);
    await expect(page.locator('#explain-rerun code').textContent()).resolves.toBe(explained.datums[0]!.rerun);
    await page.screenshot({ path: path.join(ARTIFACTS, 'dashboard-provenance.png') });

    // Runs say what triggered them; cost has a chart.
    await page.locator('#tabs button[data-tab="runs"]').click();
    await expect(page.locator('#runs-table').textContent()).resolves.toMatch(/retry/);
    await page.locator('#tabs button[data-tab="cost"]').click();
    await expect(page.locator('#cost-note').textContent()).resolves.toMatch(/\d+ computations/);
    expect(errors).toEqual([]);
    await context.close();
  }, 180_000);

  it('the report opens from disk with no network and shows the same DAG', async () => {
    await waitIdle(daemon.url, 60_000, TOKEN);
    const file = path.join(path.dirname(ds.dir), 'report.html');
    const r = await ds.minipach('report', '--out', file);
    expect(r.exitCode, r.stderr).toBe(0);
    const context = await browser.newContext({ offline: true, viewport: { width: 1400, height: 1000 } });
    const page = await context.newPage();
    const errors: string[] = [];
    const requests: string[] = [];
    page.on('console', (m) => m.type() === 'error' && errors.push(m.text()));
    page.on('pageerror', (e) => errors.push(e.message));
    page.on('request', (q) => !q.url().startsWith('file:') && !q.url().startsWith('data:') && requests.push(q.url()));
    await page.goto(`file://${file}`);
    await page.locator('[data-pipeline="after"]').waitFor();
    // The same DAG as the dashboard's (what /api/overview gives the page), with nothing running.
    const [live] = (await (await fetch(`${daemon.url}/api/overview`, { headers: { authorization: `Bearer ${TOKEN}` } })).json()) as { head: string; pipelines: { name: string; counts: Record<string, number> }[] }[];
    expect(await page.evaluate(() => document.body.dataset['head'])).toBe(live!.head);
    for (const p of live!.pipelines) expect(await counts(page, p.name), p.name).toEqual(p.counts);
    // A datum's provenance and resources travel with it.
    await page.locator('[data-pipeline="count"]').click();
    await page.locator('.tabulator-row', { hasText: 'a' }).first().click();
    await expect(page.locator('#datum').textContent()).resolves.toMatch(/datalad rerun/);
    await expect(page.locator('#datum').textContent()).resolves.toMatch(/up\/a/);
    await page.locator('#datum a', { hasText: 'Provenance graph' }).click();
    await page.locator('#explain-graph [data-datum="up/a"]').waitFor();
    await page.screenshot({ path: path.join(ARTIFACTS, 'report.png') });
    expect(requests).toEqual([]);
    expect(errors).toEqual([]);
    await context.close();
  }, 60_000);

  it('a daemon with a dashboard open (its event stream) still stops promptly', async () => {
    // An event stream held open as a browser holds it (curl: HTTP/1.1, keep-alive, reading until the end).
    const stream = execa('curl', ['-sN', '-H', `Authorization: Bearer ${TOKEN}`, `${daemon.url}/api/events`], { reject: false, buffer: false });
    await new Promise<void>((resolve) => stream.stdout!.once('data', () => resolve()));
    const started = Date.now();
    await daemon.stop();
    // (execa kills with SIGKILL 5 s after SIGTERM: a daemon stuck on the open stream takes that long.)
    expect(Date.now() - started).toBeLessThan(4000);
    expect(daemon.proc.signalCode).toBeNull();
    // The stream ended with the daemon.
    expect((await stream).exitCode).toBe(0);
  }, 60_000);
});
