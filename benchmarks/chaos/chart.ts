/**
 * The chaos run's timeline as a hand-written SVG (no scripts, readable on GitHub): yield
 * per second (top panel), p50 and p99 per second on a log scale (bottom panel), and each
 * fault as a shaded band from its strike to its recovery, labelled.
 */
import type { ChaosResult } from '@ballast/app-system';
import { esc, svgChart } from '../lib/svg.ts';

const FAULT_COLORS = ['#ffe3e3', '#fff3bf', '#e5dbff', '#d3f9d8', '#d0ebff', '#ffe8cc'];

/** The timeline chart of a chaos run. */
export function timelineChart(title: string, result: Pick<ChaosResult, 'seconds' | 'faults' | 'durationMs'>): string {
  const width = 960;
  const left = 60;
  const right = 20;
  const top = 50;
  const panel = 150;
  const gap = 40;
  const height = top + panel * 2 + gap + 70;
  const plotW = width - left - right;
  const end = Math.max(result.durationMs / 1000, 1);
  const x = (t: number): number => left + (plotW * t) / end;
  const yYield = (v: number): number => top + panel * (1 - v);
  const top2 = top + panel + gap;
  const maxMs = Math.max(1000, ...result.seconds.map((s) => s.p99));
  const logMax = Math.log10(maxMs);
  const logMin = 1; // 10 ms
  const yMs = (v: number): number => top2 + panel * (1 - (Math.log10(Math.max(10, v)) - logMin) / (logMax - logMin));
  const body: string[] = [
    `<line x1="${left}" y1="35" x2="${left + 20}" y2="35" stroke="#2b8a3e" stroke-width="2"/><text x="${left + 26}" y="39">yield per second</text>`,
    `<line x1="${left + 150}" y1="35" x2="${left + 170}" y2="35" stroke="#1c7ed6" stroke-width="1.5"/><text x="${left + 176}" y="39">p50</text>`,
    `<line x1="${left + 220}" y1="35" x2="${left + 240}" y2="35" stroke="#e8590c" stroke-width="1.5"/><text x="${left + 246}" y="39">p99 (ms, log scale)</text>`,
    `<rect x="${left + 390}" y="29" width="20" height="10" fill="#ffe3e3"/><text x="${left + 416}" y="39">a fault, strike to recovery</text>`,
  ];
  result.faults.forEach((f, i) => {
    const from = f.atMs / 1000;
    const to = from + Math.max(f.holdMs, f.recoveredMs ?? 0, f.clientRecoveredMs ?? 0, 1000) / 1000;
    const color = FAULT_COLORS[i % FAULT_COLORS.length];
    for (const [y0, h] of [
      [top, panel],
      [top2, panel],
    ] as const) {
      body.push(
        `<rect x="${x(from).toFixed(1)}" y="${y0}" width="${Math.max(2, x(to) - x(from)).toFixed(1)}" height="${h}" fill="${color}"/>`,
      );
    }
    const label = `${i + 1}. ${f.kind} ${f.target}`;
    body.push(
      `<text x="${x(from).toFixed(1)}" y="${top2 + panel + 30 + (i % 3) * 12}" font-size="10" fill="#495057">${esc(label)}</text>`,
      `<text x="${(x(from) + 2).toFixed(1)}" y="${top + 12}" font-size="10" fill="#495057">${i + 1}</text>`,
    );
  });
  for (const v of [0, 0.5, 0.9, 1]) {
    body.push(`<line x1="${left}" y1="${yYield(v)}" x2="${left + plotW}" y2="${yYield(v)}" stroke="#e9ecef"/>`);
    body.push(`<text x="${left - 6}" y="${yYield(v) + 4}" text-anchor="end" fill="#555">${Math.round(v * 100)}%</text>`);
  }
  for (const v of [10, 100, 500, 1000, 10_000].filter((v) => v <= maxMs * 1.01)) {
    body.push(
      `<line x1="${left}" y1="${yMs(v).toFixed(1)}" x2="${left + plotW}" y2="${yMs(v).toFixed(1)}" stroke="${v === 500 ? '#ced4da' : '#e9ecef'}"/>`,
    );
    body.push(
      `<text x="${left - 6}" y="${(yMs(v) + 4).toFixed(1)}" text-anchor="end" fill="#555">${v >= 1000 ? `${v / 1000} s` : `${v} ms`}</text>`,
    );
  }
  const step = end > 300 ? 60 : end > 120 ? 30 : 10;
  for (let t = 0; t <= end; t += step) {
    body.push(`<text x="${x(t).toFixed(1)}" y="${top2 + panel + 16}" text-anchor="middle" fill="#555">${t} s</text>`);
  }
  const line = (points: string[], color: string, w: number): string =>
    `<polyline points="${points.join(' ')}" fill="none" stroke="${color}" stroke-width="${w}"/>`;
  const seconds = result.seconds.filter((s) => s.ok + s.failed > 0);
  body.push(
    line(
      seconds.map((s) => `${x(s.second + 0.5).toFixed(1)},${yYield(s.ok / (s.ok + s.failed)).toFixed(1)}`),
      '#2b8a3e',
      2,
    ),
  );
  body.push(
    line(
      seconds.map((s) => `${x(s.second + 0.5).toFixed(1)},${yMs(s.p50).toFixed(1)}`),
      '#1c7ed6',
      1.5,
    ),
  );
  body.push(
    line(
      seconds.map((s) => `${x(s.second + 0.5).toFixed(1)},${yMs(s.p99).toFixed(1)}`),
      '#e8590c',
      1.5,
    ),
  );
  return svgChart(width, height, title, body);
}
