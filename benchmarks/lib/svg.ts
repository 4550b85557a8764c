/** What the benchmarks' SVG charts share. */

/** The font attribute of every chart. */
export const SVG_FONT = 'font-family="system-ui, -apple-system, Segoe UI, Helvetica, Arial, sans-serif"';

/** `text` escaped for SVG (XML) text and attribute values. */
export function esc(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}
