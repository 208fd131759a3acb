// Our own small SVG charts (no library): the ban trend, horizontal bars, and the world map of bans.
import { h, num, toDate, fmtDate, countryName, plural, ipLink, jailLink, muted, hash } from './core.js';
import { WIDTH, HEIGHT, SHAPES } from './worldmap.js';

const NS = 'http://www.w3.org/2000/svg';
function svg(tag, attrs) {
  const el = document.createElementNS(NS, tag);
  for (const k in attrs) el.setAttribute(k, attrs[k]);
  return el;
}

// trend: [{start, bans}] (older builds said count) -> bars with a peak line and first/last labels.
export function barChart(trend, range) {
  const W = 10, H = 100;
  const counts = trend.map((p) => Number(p.bans ?? p.count) || 0);
  const max = Math.max(1, ...counts);
  const total = counts.reduce((a, b) => a + b, 0);
  const chart = svg('svg', { viewBox: '0 0 ' + trend.length * W + ' ' + H, preserveAspectRatio: 'none', class: 'chart',
    role: 'img', 'aria-label': 'Bans per interval over ' + range + ': total ' + total + ', peak ' + max });
  chart.append(svg('line', { x1: 0, x2: trend.length * W, y1: 2, y2: 2, class: 'peak' }));
  const style = range === '24h' ? 'hour' : 'day';
  trend.forEach((p, i) => {
    const hgt = (counts[i] / max) * (H - 4);
    const rect = svg('rect', { x: i * W + 1, width: W - 2, y: H - hgt, height: counts[i] ? Math.max(hgt, 1) : 0,
      'data-bans': counts[i] });
    const title = document.createElementNS(NS, 'title');
    const d = toDate(p.start ?? p.at);
    title.textContent = (d ? fmtDate(d, style) : String(p.start ?? '')) + ': ' + num(counts[i]) + (counts[i] === 1 ? ' ban' : ' bans');
    rect.append(title);
    chart.append(rect);
  });
  const when = (p) => { const d = p && toDate(p.start ?? p.at); return d ? fmtDate(d, style) : ''; };
  return h('figure', { class: 'trend' }, h('div', { class: 'row spread muted small' }, h('span', {}, 'peak ' + num(total ? max : 0)),
    h('span', {}, 'total ' + num(total))), chart, h('figcaption', { class: 'row spread muted small' },
    h('span', {}, when(trend[0])), h('span', {}, when(trend[trend.length - 1]))));
}

// [{jail|ip|country|origin, bans|count}] or {label: count} -> horizontal bars.
export function breakdown(data) {
  let rows = [];
  if (Array.isArray(data)) {
    rows = data.map((x) => {
      const key = ['jail', 'ip', 'country', 'origin', 'name'].find((k) => x[k] !== undefined) || '';
      return { key, label: key ? x[key] : '?', count: x.bans ?? x.count, cc: x.country };
    });
  } else if (data && typeof data === 'object') {
    rows = Object.entries(data).map(([label, count]) => ({ key: '', label, count })).sort((a, b) => b.count - a.count);
  }
  if (!rows.length) return muted('None.');
  const max = Math.max(1, ...rows.map((r) => Number(r.count) || 0));
  return h('div', { class: 'hbar' }, rows.map((r) => {
    let label;
    if (r.key === 'ip') label = h('span', {}, ipLink(String(r.label)), r.cc ? h('span', { class: 'muted small' }, ' ' + countryName(r.cc)) : null);
    else if (r.key === 'jail') label = jailLink(String(r.label));
    else if (r.key === 'country') {
      label = r.label ? h('a', { href: hash('history') + '?country=' + encodeURIComponent(r.label), title: r.label }, countryName(r.label))
        : h('span', { class: 'muted' }, 'unknown');
    } else label = h('span', {}, String(r.label ?? '?'));
    const bar = h('div', { class: 'bar', 'aria-hidden': 'true' });
    bar.style.width = ((Number(r.count) || 0) / max) * 100 + '%';
    return [label, h('div', {}, bar), h('span', { class: 'num' }, num(r.count))];
  }));
}

// The world map: one <path> per country (Natural Earth, see worldmap.js), filled by bans per country on a
// log scale of 5 steps; hover shows the country and count, click/Enter opens the history of that country.
export function worldMap(counts, onPick) {
  const max = Math.max(0, ...Object.values(counts));
  const step = (n) => (!n ? 0 : max <= 1 ? 5 : 1 + Math.min(4, Math.floor((Math.log(n) / Math.log(max)) * 4.999)));
  const map = svg('svg', { viewBox: '0 0 ' + WIDTH + ' ' + HEIGHT, class: 'map', role: 'group',
    'aria-label': 'World map of bans by country' });
  const tip = h('div', { class: 'maptip', role: 'status', 'aria-live': 'polite' }, 'Hover or focus a country.');
  const frag = document.createDocumentFragment();
  const say = (cc, n) => { tip.textContent = countryName(cc) + ': ' + num(n || 0) + (n === 1 ? ' ban' : ' bans'); };
  for (const [cc, , d] of SHAPES) {
    const n = counts[cc] || 0;
    const p = svg('path', { d, 'data-cc': cc, class: 'c' + step(n) });
    if (n) {
      p.setAttribute('tabindex', '0');
      p.setAttribute('role', 'link');
      p.setAttribute('aria-label', countryName(cc) + ': ' + plural(n, 'ban') + '; open its history');
    }
    frag.append(p);
  }
  map.append(frag);
  // one set of listeners on the map, not 177 sets
  const target = (ev) => (ev.target instanceof SVGPathElement ? ev.target.dataset.cc : null);
  map.addEventListener('mouseover', (ev) => { const cc = target(ev); if (cc) say(cc, counts[cc]); });
  map.addEventListener('focusin', (ev) => { const cc = target(ev); if (cc) say(cc, counts[cc]); });
  map.addEventListener('click', (ev) => { const cc = target(ev); if (cc && counts[cc]) onPick(cc); });
  map.addEventListener('keydown', (ev) => {
    const cc = target(ev);
    if (cc && counts[cc] && (ev.key === 'Enter' || ev.key === ' ')) { ev.preventDefault(); onPick(cc); }
  });
  // small countries (Singapore, Malta, ...) have no shape at 1:110m: named under the map instead
  const drawn = new Set(SHAPES.map((x) => x[0]));
  const unmapped = Object.entries(counts).filter(([cc, n]) => n && !drawn.has(cc)).sort((a, b) => b[1] - a[1]);
  const also = unmapped.length ? h('p', { class: 'muted small' }, 'Too small for this map: ',
    unmapped.map(([cc, n], i) => [i ? ', ' : '', countryName(cc) + ' (' + num(n) + ')'])) : null;
  const legend = h('div', { class: 'row muted small legend' }, 'fewer',
    [1, 2, 3, 4, 5].map((i) => h('span', { class: 'swatch c' + i, 'aria-hidden': 'true' })), 'more bans (max ' + num(max) + ')');
  return h('figure', { class: 'mapfig' }, map, h('figcaption', { class: 'row spread' }, tip, legend), also);
}
