// Charts drawn as SVG elements (no library, no inline style: classes styled by app.css). Each has
// a title for screen readers, and the figures are also in a table beside it.

const NS = 'http://www.w3.org/2000/svg';
let serial = 0;

function el(name, attrs = {}, text) {
  const e = document.createElementNS(NS, name);
  for (const [k, v] of Object.entries(attrs)) {
    e.setAttribute(k, String(v));
  }
  if (text !== undefined) {
    e.textContent = text;
  }
  return e;
}

function svg(width, height, label) {
  const id = `chart-${++serial}`;
  const s = el('svg', {
    viewBox: `0 0 ${width} ${height}`,
    width,
    height,
    role: 'img',
    'aria-labelledby': id,
    class: 'chart',
  });
  s.append(el('title', { id }, label));
  return s;
}

/** A small line of values over time: points are [unix seconds, value]. */
export function sparkline(points, label) {
  const w = 120;
  const h = 28;
  const s = svg(w, h, label);
  if (points.length === 0) {
    s.append(el('line', { x1: 0, y1: h - 1, x2: w, y2: h - 1, class: 'axis' }));
    return s;
  }
  const max = Math.max(1, ...points.map((p) => p[1]));
  const t0 = points[0][0];
  const span = Math.max(1, points[points.length - 1][0] - t0);
  const xy = points.map((p) => [((p[0] - t0) / span) * (w - 2) + 1, h - 2 - (p[1] / max) * (h - 4)]);
  if (xy.length === 1) {
    xy.push([w - 1, xy[0][1]]);
  }
  s.append(el('polyline', { points: xy.map((p) => p.join(',')).join(' '), class: 'line' }));
  return s;
}

/**
 * Horizontal bars: items are { label, value, text }, value a number, text what is written at
 * the bar's end.
 */
export function bars(items, label) {
  const row = 26;
  const labelW = 330;
  const barW = 360;
  const w = labelW + barW + 90;
  const h = Math.max(row, items.length * row) + 4;
  const s = svg(w, h, label);
  const max = Math.max(1, ...items.map((i) => i.value));
  items.forEach((item, n) => {
    const y = n * row + 2;
    s.append(el('text', { x: labelW - 8, y: y + 17, class: 'label', 'text-anchor': 'end' }, item.label));
    const len = Math.max(2, (item.value / max) * barW);
    s.append(el('rect', { x: labelW, y: y + 4, width: len, height: row - 8, class: 'bar', rx: 2 }));
    s.append(el('text', { x: labelW + len + 6, y: y + 17, class: 'value' }, item.text));
  });
  return s;
}
