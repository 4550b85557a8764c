/**
 * The gateway's live dashboard in a real browser (Debian's chromium, driven by
 * playwright-core; `npm test` installs chromium): the page loads from the operational
 * listener, draws real traffic, and shows an API server down within the failure
 * detector's bound after it is killed. Prints the page-load time, the age of the data
 * and the detection time. `BALLAST_DASHBOARD_SCREENSHOT=<file.png>` saves a screenshot.
 */
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type RunningSystem, startSystem } from '@ballast/app-system';
import { sampleJpeg } from '@ballast/app-worker';
import { phi } from '@ballast/failure-detector';
import { type Browser, chromium } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const CHROMIUM = process.env.BALLAST_CHROMIUM ?? '/usr/bin/chromium';
const HEALTH_INTERVAL_MS = 500;
const ACCEPTABLE_PAUSE_MS = 1000;
const PHI_THRESHOLD = 8;
const CHECK_INTERVAL_MS = 100; // HeartbeatMonitor's default
const SAMPLE_INTERVAL_MS = 1000; // the dashboard's default

/**
 * The failure detector's bound: the silence after which phi reaches the threshold, for
 * heartbeats every HEALTH_INTERVAL_MS (the standard deviation at its 100 ms floor), plus
 * one heartbeat interval (the last one may have come just before the kill) and one check.
 */
function detectorBoundMs(): number {
  let silence = HEALTH_INTERVAL_MS;
  while (phi(silence, HEALTH_INTERVAL_MS + ACCEPTABLE_PAUSE_MS, 100) < PHI_THRESHOLD) silence += 1;
  return silence + HEALTH_INTERVAL_MS + CHECK_INTERVAL_MS;
}

interface PageState {
  samples: Array<{ t: number; rps: number; p99: number | null; yield: number | null }>;
  loadMs: number | null;
  lastAgeMs: number | null;
  stale: boolean;
}

let system: RunningSystem;
let browser: Browser;

beforeAll(async () => {
  system = await startSystem({
    apis: 3,
    workers: 1,
    gateway: { healthIntervalMs: HEALTH_INTERVAL_MS, acceptablePauseMs: ACCEPTABLE_PAUSE_MS, phiThreshold: PHI_THRESHOLD },
  });
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: [
      '--no-sandbox',
      '--headless',
      '--disable-gpu',
      '--disable-background-networking',
      '--disable-component-update',
      '--no-first-run',
    ],
  });
});

afterAll(async () => {
  await browser?.close();
  await system?.close();
});

describe('dashboard in a real browser', () => {
  it('draws real traffic, and shows a killed API server down within the failure detector bound', { timeout: 120_000 }, async () => {
    const page = await browser.newPage({ viewport: { width: 1280, height: 1100 } });
    const started = performance.now();
    await page.goto(`${system.opsUrl}/dashboard`);
    await page.waitForFunction(() => (globalThis as unknown as { ballastDashboard: PageState }).ballastDashboard.loadMs !== null);
    const loadMs = performance.now() - started;
    const pageLoadMs = await page.evaluate(() => (globalThis as unknown as { ballastDashboard: PageState }).ballastDashboard.loadMs);

    // Traffic: 80 real resize requests, 4 at a time.
    const image = await sampleJpeg();
    let next = 0;
    const statuses: number[] = [];
    await Promise.all(
      Array.from({ length: 4 }, async () => {
        while (next++ < 80) {
          const res = await fetch(`${system.url}/v1/resize?width=320`, {
            method: 'POST',
            body: image,
            headers: { 'content-type': 'image/jpeg' },
          });
          await res.arrayBuffer();
          statuses.push(res.status);
        }
      }),
    );
    expect(statuses.filter((s) => s === 200).length).toBe(80);

    // The page has received samples with this traffic in them and drawn them.
    await page.waitForFunction(
      () => (globalThis as unknown as { ballastDashboard: PageState }).ballastDashboard.samples.some((s) => s.rps > 0 && s.p99 !== null),
      undefined,
      { timeout: 15_000 },
    );
    const drawn = await page.evaluate(() => {
      const state = (globalThis as unknown as { ballastDashboard: PageState & { charts: Record<string, { plot: { data: number[][] } }> } })
        .ballastDashboard;
      const rate = state.charts['chart-rate']?.plot.data[1] ?? [];
      const latency = state.charts['chart-latency']?.plot.data[2] ?? [];
      // Pixels of the plotted lines: the chart's canvas holds more than its background.
      interface Canvas {
        width: number;
        height: number;
        getContext(kind: '2d'): { getImageData(x: number, y: number, w: number, h: number): { data: Uint8ClampedArray } } | null;
      }
      const { document } = globalThis as unknown as { document: { querySelector(selector: string): Canvas } };
      const canvas = document.querySelector('#chart-rate canvas');
      const pixels = canvas.getContext('2d')?.getImageData(0, 0, canvas.width, canvas.height).data ?? new Uint8ClampedArray();
      let painted = 0;
      for (let i = 3; i < pixels.length; i += 4) if ((pixels[i] as number) > 0) painted++;
      return {
        maxRate: Math.max(0, ...rate.filter((v) => v !== null)),
        p99s: latency.filter((v) => v !== null).length,
        painted,
        ageMs: state.lastAgeMs,
      };
    });
    expect(drawn.maxRate).toBeGreaterThan(0);
    expect(drawn.p99s).toBeGreaterThan(0);
    expect(drawn.painted).toBeGreaterThan(200);
    const figures = await page.locator('#figures').innerText();
    expect(figures).toContain('req/s');
    expect(await page.locator('[data-upstream="api-2"]').getAttribute('data-state')).toBe('up');

    // Kill api-2 (its listeners close and drop their connections: health probes are refused).
    const api = system.apis[1];
    if (!api) throw new Error('no api-2');
    const killedAt = performance.now();
    await Promise.all([api.server.close(0), api.ops.close(0)]);
    const bound = detectorBoundMs();
    // The bound is the detector's; the page adds one sample interval, and a loaded machine some scheduling.
    const allowed = bound + SAMPLE_INTERVAL_MS + 2000;
    await page.waitForSelector('[data-upstream="api-2"][data-state="down"]', { timeout: allowed });
    const shownDownMs = performance.now() - killedAt;
    const status = await page.locator('#status').innerText();
    const stale = await page.evaluate(() => (globalThis as unknown as { ballastDashboard: PageState }).ballastDashboard.stale);
    expect(stale).toBe(false);
    expect(status).toMatch(/^live/);
    const ageMs = await page.evaluate(() => (globalThis as unknown as { ballastDashboard: PageState }).ballastDashboard.lastAgeMs);

    const shot = process.env.BALLAST_DASHBOARD_SCREENSHOT ?? join(tmpdir(), `ballast-dashboard-${process.pid}.png`);
    await page.waitForTimeout(1500); // one more sample, so the phi chart shows the climb
    await page.screenshot({ path: shot, fullPage: true });
    console.log(
      `dashboard: page loaded with data in ${Math.round(loadMs)} ms (in-page ${pageLoadMs} ms); data age ${ageMs} ms when drawn; ` +
        `api-2 shown down ${Math.round(shownDownMs)} ms after the kill (detector bound ${bound} ms + ${SAMPLE_INTERVAL_MS} ms sampling); screenshot ${shot}`,
    );

    // The dashboard notices when its own data stops: stop the sampler, and the page turns stale.
    system.gateway.observability?.sampler.close();
    await page.waitForFunction(() => (globalThis as unknown as { ballastDashboard: PageState }).ballastDashboard.stale, undefined, {
      timeout: 10_000,
    });
    expect(await page.locator('#status').innerText()).toMatch(/^STALE/);
    await page.close();
  });
});
