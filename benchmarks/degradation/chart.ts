/**
 * The dimmer over time as a hand-written SVG (no scripts, readable on GitHub): θ of each
 * API server and their mean, the offered load as a step line on the right axis, the
 * ±0.1 band around each segment's settled level, and where each segment settled.
 */

import { svgChart } from '../lib/svg.ts';

const SERVER_COLORS = ['#74c0fc', '#b2f2bb', '#ffd8a8'];

/** One sample of the dimmers. */
export interface DimmerSample {
  /** Seconds since the run started. */
  t: number;
  /** θ of each API server. */
  levels: number[];
}

/** One segment of constant offered load. */
export interface LoadSegment {
  from: number;
  to: number;
  /** Offered load, × the full-quality capacity. */
  multiplier: number;
  /** The level θ settled at, and seconds after the step it stayed within ±0.1 of it. */
  final: number;
  settledAfter: number;
}

/** The chart: θ (left axis, 0–1) and the offered load (right axis) over time. */
export function dimmerChart(title: string, samples: DimmerSample[], segments: LoadSegment[]): string {
  const width = 900;
  const height = 340;
  const left = 50;
  const right = 60;
  const top = 50;
  const bottom = 40;
  const plotW = width - left - right;
  const plotH = height - top - bottom;
  const end = Math.max(...segments.map((s) => s.to), 1);
  const maxLoad = Math.ceil(Math.max(...segments.map((s) => s.multiplier), 1));
  const x = (t: number): number => left + (plotW * t) / end;
  const y = (level: number): number => top + plotH * (1 - level);
  const yLoad = (m: number): number => top + plotH * (1 - m / maxLoad);
  const body: string[] = [
    `<line x1="${left}" y1="33" x2="${left + 20}" y2="33" stroke="#1c7ed6" stroke-width="2.5"/><text x="${left + 26}" y="37">θ, mean of the API servers</text>`,
    `<line x1="${left + 210}" y1="33" x2="${left + 230}" y2="33" stroke="#74c0fc"/><text x="${left + 236}" y="37">θ of each API server</text>`,
    `<line x1="${left + 400}" y1="33" x2="${left + 420}" y2="33" stroke="#868e96" stroke-dasharray="5 3"/><text x="${left + 426}" y="37">offered load (right axis, × capacity)</text>`,
    `<rect x="${left + 660}" y="28" width="20" height="10" fill="#e7f5ff"/><text x="${left + 686}" y="37">settled ±0.1</text>`,
  ];
  for (const s of segments) {
    const from = x(s.from + s.settledAfter);
    body.push(
      `<rect x="${from.toFixed(1)}" y="${y(Math.min(1, s.final + 0.1)).toFixed(1)}" width="${Math.max(0, x(s.to) - from).toFixed(1)}" height="${(y(Math.max(0, s.final - 0.1)) - y(Math.min(1, s.final + 0.1))).toFixed(1)}" fill="#e7f5ff"/>`,
    );
    body.push(`<line x1="${x(s.from).toFixed(1)}" y1="${top}" x2="${x(s.from).toFixed(1)}" y2="${top + plotH}" stroke="#dee2e6"/>`);
    body.push(
      `<text x="${(x(s.from) + 4).toFixed(1)}" y="${top + plotH - 6}" fill="#495057">${s.multiplier}× · settled ${s.settledAfter.toFixed(1)} s</text>`,
    );
  }
  for (const level of [0, 0.25, 0.5, 0.75, 1]) {
    body.push(`<line x1="${left}" y1="${y(level)}" x2="${left + plotW}" y2="${y(level)}" stroke="#f1f3f5"/>`);
    body.push(`<text x="${left - 6}" y="${y(level) + 4}" text-anchor="end" fill="#555">${level}</text>`);
  }
  for (let m = 0; m <= maxLoad; m++) body.push(`<text x="${left + plotW + 6}" y="${yLoad(m) + 4}" fill="#555">${m}×</text>`);
  for (let t = 0; t <= end; t += 10) body.push(`<text x="${x(t)}" y="${top + plotH + 16}" text-anchor="middle" fill="#555">${t} s</text>`);
  const servers = samples[0]?.levels.length ?? 0;
  for (let i = 0; i < servers; i++) {
    const points = samples.map((s) => `${x(s.t).toFixed(1)},${y(s.levels[i] ?? 1).toFixed(1)}`).join(' ');
    body.push(`<polyline points="${points}" fill="none" stroke="${SERVER_COLORS[i % SERVER_COLORS.length]}" stroke-width="1"/>`);
  }
  const mean = samples.map(
    (s) => `${x(s.t).toFixed(1)},${y(s.levels.reduce((a, b) => a + b, 0) / Math.max(1, s.levels.length)).toFixed(1)}`,
  );
  body.push(`<polyline points="${mean.join(' ')}" fill="none" stroke="#1c7ed6" stroke-width="2.5"/>`);
  const steps = segments.flatMap((s) => [
    `${x(s.from).toFixed(1)},${yLoad(s.multiplier).toFixed(1)}`,
    `${x(s.to).toFixed(1)},${yLoad(s.multiplier).toFixed(1)}`,
  ]);
  body.push(`<polyline points="${steps.join(' ')}" fill="none" stroke="#868e96" stroke-dasharray="5 3" stroke-width="1.5"/>`);
  body.push(`<rect x="${left}" y="${top}" width="${plotW}" height="${plotH}" fill="none" stroke="#adb5bd"/>`);
  return svgChart(width, height, title, body);
}
