// The mesh view: fetches /api/v1/mesh and draws the RTT matrix, a link's history and the role
// traffic. Vanilla JS and SVG; every request goes to this page's own origin.
'use strict';

const SVG = 'http://www.w3.org/2000/svg';
const GROUP_ABOVE = 60;  // past this many nodes the matrix starts grouped
const state = {
  // udp until the first answer lists the methods: asking for one method halves the first load.
  view: 'matrix', method: 'udp', window: '5m', data: null, grouped: null,
  drill: null, selected: null, active: null, hiddenRoles: new Set(), timer: 0,
};

function el(tag, attrs, parent, text) {
  const e = tag.startsWith('svg:') ? document.createElementNS(SVG, tag.slice(4))
                                   : document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
  if (text !== undefined) e.textContent = text;
  if (parent) parent.appendChild(e);
  return e;
}
const $ = (id) => document.getElementById(id);
const esc = (t) => String(t).replace(/[&<>"']/g, (c) => ({'&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;'}[c]));

function ms(seconds) {
  if (seconds === null || seconds === undefined) return '–';
  const v = seconds * 1000;
  return v >= 100 ? v.toFixed(0) : v >= 10 ? v.toFixed(1) : v.toFixed(2);
}
function pct(x) {
  if (x === null || x === undefined) return '–';
  const v = x * 100;
  return (v === 0 ? '0' : v < 1 ? v.toFixed(2) : v.toFixed(1)) + '%';
}
function rate(b) {
  const units = ['B/s', 'kB/s', 'MB/s', 'GB/s'];
  let i = 0;
  while (b >= 1000 && i < units.length - 1) { b /= 1000; i++; }
  return (b >= 100 ? b.toFixed(0) : b.toFixed(1)) + ' ' + units[i];
}

async function load() {
  const params = new URLSearchParams({window: state.window});
  if (state.method) params.set('method', state.method);
  const r = await fetch('/api/v1/mesh?' + params.toString(), {credentials: 'same-origin'});
  if (!r.ok) throw new Error('HTTP ' + r.status + ': ' + (await r.text()));
  const data = await r.json();
  // A mesh without udp probes: ask again for a method it has.
  if (state.method && !data.methods.includes(state.method) && data.methods.length) {
    state.method = data.methods[0];
    return load();
  }
  return data;
}

function setupControls(data) {
  const methods = $('methods');
  if (!methods.querySelector('input')) {
    for (const m of data.methods) {
      const label = el('label', {}, methods);
      const input = el('input', {type: 'radio', name: 'method', value: m}, label);
      if (m === state.method) input.checked = true;
      label.append(' ' + m);
      input.addEventListener('change', () => { state.method = m; refresh(); });
    }
  }
  const windows = $('windows');
  if (!windows.querySelector('input')) {
    for (const [w, s] of [['1m', 60], ['5m', 300], ['15m', 900], ['1h', 3600]]) {
      if (s > data.kept_seconds) continue;
      const label = el('label', {}, windows);
      const input = el('input', {type: 'radio', name: 'window', value: w}, label);
      if (w === state.window) input.checked = true;
      label.append(' ' + w);
      input.addEventListener('change', () => { state.window = w; refresh(); });
    }
  }
  if (state.grouped === null) {
    state.grouped = data.nodes.length > GROUP_ABOVE;
    $('group-toggle').checked = state.grouped;
  }
}

function rttClass(p50, thresholds) {
  let i = 0;
  while (i < thresholds.length && p50 >= thresholds[i]) i++;
  return 'r' + Math.min(i, 3);
}

// Index links by "src\u0000dst" for the chosen method.
function linkIndex(data) {
  const m = new Map();
  for (const l of data.links) if (l.method === state.method) m.set(l.src + '\u0000' + l.dst, l);
  return m;
}

function asymmetric(data, a, b) {
  if (!a || !b || a.state !== 'fresh' || b.state !== 'fresh') return false;
  const x = a.rtt_seconds.p50, y = b.rtt_seconds.p50;
  if (x === null || y === null) return false;
  const lo = Math.min(x, y), hi = Math.max(x, y);
  return hi - lo >= data.asymmetry.min_seconds && hi >= lo * data.asymmetry.ratio;
}

// What one cell says: the state the page shows, its short text, and, written only when asked
// (thousands of cells, few focused or hovered), its one-line text label and the full details
// for its tooltip.
function describe(data, src, dst, link, reverse) {
  if (src === dst) {
    const label = () => src + ' to itself';
    return {state: 'self', label, details: label, short: ''};
  }
  if (!link) {
    const label = () => src + ' → ' + dst + ': not probed';
    return {state: 'not-probed', label, details: label, short: '×'};
  }
  const r = link.rtt_seconds;
  const asym = asymmetric(data, link, reverse);
  const label = () => {
    let text = `${src} → ${dst} (${link.method}): ${link.state.replace('_', ' ')}, p50 ${ms(r.p50)} ms, ` +
               `loss ${pct(link.loss)}`;
    if (link.loss > 0 && link.forward_loss !== undefined)
      text += ` (forward loss ${pct(link.forward_loss)}, return loss ${pct(link.return_loss)})`;
    if (asym) text += ', asymmetric';
    return text;
  };
  const details = () => {
    const lines = [src + ' → ' + dst + ' (' + link.method + ')',
      'state: ' + link.state.replace('_', ' ') + ', data ' + link.age_seconds + ' s old',
      'RTT p50 ' + ms(r.p50) + ' ms, p90 ' + ms(r.p90) + ' ms, min ' + ms(r.min) + ' ms, max ' +
          ms(r.max) + ' ms',
      'loss ' + pct(link.loss) + ' (' + link.lost + ' of ' + (link.lost + link.received) + ')'];
    if (link.forward_loss !== undefined)
      lines.push('forward loss ' + pct(link.forward_loss) + ', return loss ' + pct(link.return_loss));
    if (link.path_mtu_bytes) lines.push('path MTU ' + link.path_mtu_bytes + ' bytes');
    if (asym) lines.push('asymmetric: ' + dst + ' → ' + src + ' p50 ' + ms(reverse.rtt_seconds.p50) + ' ms');
    return lines.join('\n');
  };
  let st = link.state === 'fresh' ? (r.p50 === null ? 'no-reply' : rttClass(r.p50, data.rtt_thresholds_seconds))
                                  : link.state === 'stale' ? 'stale' : 'not-probed';
  const short = link.state === 'stale' ? 'stale' : r.p50 === null ? (link.lost ? 'lost' : '–') : ms(r.p50);
  return {state: st, label, details, short, lossy: link.loss > 0, asym,
          lossText: link.loss > 0 ? pct(link.loss) : ''};
}

function showTip(target, text) {
  const tip = $('tooltip');
  tip.textContent = text;
  tip.hidden = false;
  const box = target.getBoundingClientRect();
  tip.style.left = Math.min(window.innerWidth - 330, box.right + 8) + 'px';
  tip.style.top = Math.max(4, box.top) + 'px';
}
function hideTip() { $('tooltip').hidden = true; }

function hatch(svg) {
  const defs = el('svg:defs', {}, svg);
  const p = el('svg:pattern', {id: 'hatch', width: 6, height: 6, patternUnits: 'userSpaceOnUse',
                               patternTransform: 'rotate(45)'}, defs);
  el('svg:rect', {id: 'hatch-bg', width: 6, height: 6}, p);
  el('svg:line', {id: 'hatch-line', x1: 0, y1: 0, x2: 0, y2: 6}, p);
}

function drawLegend(data) {
  const lg = $('legend');
  lg.textContent = '';
  const t = data.rtt_thresholds_seconds;
  const items = [['r0', '< ' + ms(t[0]) + ' ms'], ['r1', ms(t[0]) + '–' + ms(t[1]) + ' ms'],
                 ['r2', ms(t[1]) + '–' + ms(t[2]) + ' ms'], ['r3', '≥ ' + ms(t[2]) + ' ms'],
                 ['stale', 'stale'], ['none', 'not probed']];
  for (const [c, text] of items) {
    el('span', {class: 'legend-swatch ' + c, 'aria-hidden': 'true'}, lg);
    lg.append(text);
  }
}

// A matrix of `rows` x `cols`, each cell given by cellInfo(row, col) = {state, label(), short,
// ...}. Thousands of cells: each state is drawn as one <path> of squares (and the loss borders as
// one more), not an element per cell, so the browser parses, styles and lays out a handful of
// elements. The cells stay reachable one by one: the grid is one tab stop whose cursor (the
// active descendant, a gridcell carrying the cell's text label) the arrow keys, Home and End
// move; the pointer finds its cell from its position; hover and focus show the details.
function drawGrid(rows, cols, cellInfo, onOpen) {
  const box = $('matrix');
  // A refresh redraws the grid: the focus stays on it, the cursor on the same cell.
  const hadFocus = box.contains(document.activeElement);
  box.textContent = '';
  const n = Math.max(rows.length, cols.length);
  const size = n <= 12 ? 56 : n <= 30 ? 34 : 22;
  const labelW = Math.min(160, 8 + 7 * Math.max(...rows.map((r) => r.length), 4));
  const labelH = Math.min(160, 8 + 6 * Math.max(...cols.map((c) => c.length), 4));
  const svg = el('svg:svg', {role: 'grid', tabindex: 0, 'aria-activedescendant': 'mesh-cursor',
                             'aria-label': 'RTT matrix, rows send, columns receive; arrow keys move, Enter opens',
                             'data-x0': labelW, 'data-y0': labelH, 'data-size': size,
                             'data-rows': rows.length, 'data-cols': cols.length,
                             width: labelW + cols.length * size + labelH / 2 + 2,
                             height: labelH + rows.length * size + 2}, box);
  hatch(svg);
  const infos = [];
  const paths = new Map();  // state -> path data
  const lossy = [];
  const parts = [];
  const w = size - 2;
  cols.forEach((c, j) => {
    const x = labelW + j * size + size / 2, y = labelH - 4;
    parts.push(`<text class="axis col" x="${x}" y="${y}" transform="rotate(-60 ${x} ${y})">${esc(c)}</text>`);
  });
  rows.forEach((r, i) => {
    parts.push(`<text class="axis row" x="${labelW - 4}" y="${labelH + i * size + size / 2 + 4}" text-anchor="end">${esc(r)}</text>`);
    cols.forEach((c, j) => {
      const info = cellInfo(r, c);
      infos.push(info);
      const x = labelW + j * size, y = labelH + i * size, mx = x + size / 2, my = y + size / 2;
      const square = `M${x + 1} ${y + 1}h${w}v${w}h-${w}z`;
      if (!paths.has(info.state)) paths.set(info.state, []);
      paths.get(info.state).push(square);
      if (info.lossy) lossy.push(square);
      // Texts are few (loss, stale, not probed, asymmetric) past 30 nodes, and let the pointer
      // through. Those that stand for a cell say which.
      const at = `data-src="${esc(r)}" data-dst="${esc(c)}"`;
      if (size >= 30) {
        if (info.short) parts.push(`<text class="ct" x="${mx}" y="${my + (info.lossText ? -1 : 4)}">${esc(info.short)}</text>`);
        if (info.lossText) parts.push(`<text class="ct loss-text" ${at} x="${mx}" y="${my + 11}">${esc(info.lossText)}</text>`);
      } else {
        const mark = info.lossText ? '!' : info.state === 'stale' ? 's' : info.state === 'not-probed' ? '×' : '';
        if (mark) parts.push(`<text class="ct" x="${mx}" y="${my + 3}">${mark}</text>`);
      }
      if (info.asym) parts.push(`<text class="ct badge" ${at} x="${x + size - 3}" y="${y + 10}">⇄</text>`);
    });
  });
  const shapes = [];
  for (const [st, squares] of paths)
    shapes.push(`<path class="cells ${st}" data-state="${st}" data-count="${squares.length}" d="${squares.join('')}"/>`);
  if (lossy.length)
    shapes.push(`<path class="cells-lossy" data-count="${lossy.length}" d="${lossy.join('')}"/>`);
  const body = el('svg:g', {}, svg);
  body.innerHTML = shapes.join('') + parts.join('');
  const mark = (cls) => el('svg:rect', {class: cls, width: w, height: w, visibility: 'hidden'}, svg);
  const selected = mark('selected-cell');
  const hover = mark('hover-cell');
  const cursorRow = el('svg:g', {role: 'row'}, svg);
  const cursor = el('svg:rect', {id: 'mesh-cursor', class: 'cursor-cell', role: 'gridcell',
                                 width: w, height: w}, cursorRow);
  const place = (r, k) => {
    const i = Math.floor(k / cols.length), j = k % cols.length;
    r.setAttribute('x', labelW + j * size + 1);
    r.setAttribute('y', labelH + i * size + 1);
    r.setAttribute('visibility', 'visible');
  };
  const find = (pair) => {
    if (!pair) return -1;
    const i = rows.indexOf(pair[0]), j = cols.indexOf(pair[1]);
    return i < 0 || j < 0 ? -1 : i * cols.length + j;
  };
  const sel = find(state.selected);
  if (sel >= 0) place(selected, sel);
  // The cursor: on the cell it was on before a redraw, else the selected one, else the first
  // that is not a node to itself.
  let active = find(state.active);
  if (active < 0) active = sel;
  if (active < 0) active = infos.findIndex((info) => info.state !== 'self');
  if (active < 0) active = 0;
  const moveTo = (k) => {
    if (k < 0 || k >= infos.length) return;
    active = k;
    const src = rows[Math.floor(k / cols.length)], dst = cols[k % cols.length];
    state.active = [src, dst];
    place(cursor, k);
    cursor.dataset.src = src;
    cursor.dataset.dst = dst;
    cursor.dataset.state = infos[k].state;
    cursor.setAttribute('aria-label', infos[k].label());
    if (document.activeElement === svg) {
      if (infos[k].state !== 'self') showTip(cursor, infos[k].details()); else hideTip();
    }
  };
  if (infos.length) moveTo(active);
  // The cell under the pointer, from its position.
  const cellAt = (e) => {
    const box = svg.getBoundingClientRect();
    const j = Math.floor((e.clientX - box.left - labelW) / size);
    const i = Math.floor((e.clientY - box.top - labelH) / size);
    if (i < 0 || j < 0 || i >= rows.length || j >= cols.length) return -1;
    return i * cols.length + j;
  };
  let hovered = -1;
  svg.addEventListener('mousemove', (e) => {
    const k = cellAt(e);
    if (k === hovered) return;
    hovered = k;
    if (k < 0 || infos[k].state === 'self') {
      hover.setAttribute('visibility', 'hidden');
      hideTip();
      return;
    }
    place(hover, k);
    showTip(hover, infos[k].details());
  });
  svg.addEventListener('mouseleave', () => {
    hovered = -1;
    hover.setAttribute('visibility', 'hidden');
    hideTip();
  });
  svg.addEventListener('focus', () => moveTo(active));
  svg.addEventListener('blur', hideTip);
  const open = (k) => {
    if (k < 0 || infos[k].state === 'self') return;
    onOpen(rows[Math.floor(k / cols.length)], cols[k % cols.length]);
  };
  svg.addEventListener('click', (e) => {
    const k = cellAt(e);
    if (k < 0) return;
    moveTo(k);
    svg.focus();
    open(k);
  });
  svg.addEventListener('keydown', (e) => {
    const i = Math.floor(active / cols.length), j = active % cols.length;
    if (e.key === 'Enter' || e.key === ' ') {
      e.preventDefault();
      open(active);
      return;
    }
    const moves = {ArrowRight: [i, j + 1], ArrowLeft: [i, j - 1], ArrowDown: [i + 1, j],
                   ArrowUp: [i - 1, j], Home: [i, 0], End: [i, cols.length - 1]};
    const to = moves[e.key];
    if (!to) return;
    e.preventDefault();
    const [ni, nj] = to;
    if (ni < 0 || nj < 0 || ni >= rows.length || nj >= cols.length) return;
    moveTo(ni * cols.length + nj);
  });
  if (hadFocus) svg.focus();
}

function drawMatrix(data) {
  const links = linkIndex(data);
  const groups = new Map();
  for (const n of data.nodes) {
    if (!groups.has(n.group)) groups.set(n.group, []);
    groups.get(n.group).push(n.name);
  }
  $('group-back').hidden = !state.drill;
  if (state.grouped && !state.drill) {
    const names = [...groups.keys()];
    drawGrid(names, names, (a, b) => groupCell(data, links, a, b, groups), (a, b) => {
      state.drill = [a, b];
      render();
    });
    return;
  }
  let rows = data.nodes.map((n) => n.name), cols = rows;
  if (state.grouped && state.drill) {
    rows = groups.get(state.drill[0]) || [];
    cols = groups.get(state.drill[1]) || [];
  }
  drawGrid(rows, cols, (a, b) => {
    const l = links.get(a + '\u0000' + b);
    return describe(data, a, b, l, links.get(b + '\u0000' + a));
  }, openDetail);
}

// A group pair at a glance: the worst state and loss, the median of the links' medians.
function groupCell(data, links, a, b, groups) {
  const meds = [];
  let stale = 0, lossy = 0, count = 0;
  for (const s of groups.get(a)) for (const d of groups.get(b)) {
    if (s === d) continue;
    const l = links.get(s + '\u0000' + d);
    if (!l) continue;
    count++;
    if (l.state === 'stale') stale++;
    if (l.loss > 0) lossy++;
    if (l.state === 'fresh' && l.rtt_seconds.p50 !== null) meds.push(l.rtt_seconds.p50);
  }
  meds.sort((x, y) => x - y);
  const med = meds.length ? meds[Math.floor(meds.length / 2)] : null;
  const label = () => `${a} → ${b}: ${count} links, median RTT ${ms(med)} ms, ${lossy} with loss, ` +
                      `${stale} stale`;
  if (!count) {
    const none = () => a + ' → ' + b + ': not probed';
    return {state: 'not-probed', label: none, details: none, short: '×'};
  }
  return {state: med === null ? 'stale' : rttClass(med, data.rtt_thresholds_seconds), label,
          details: label,
          short: ms(med), lossy: lossy > 0, lossText: lossy ? lossy + ' lossy' : ''};
}

async function openDetail(src, dst) {
  state.selected = [src, dst];
  const params = new URLSearchParams({window: state.window, method: state.method, src, dst});
  const r = await fetch('/api/v1/mesh?' + params.toString(), {credentials: 'same-origin'});
  if (!r.ok) { $('status').textContent = 'history: HTTP ' + r.status; return; }
  const data = await r.json();
  const link = data.links.find((l) => l.src === src && l.dst === dst && l.method === state.method);
  const d = $('detail');
  d.hidden = false;
  $('detail-title').textContent = `${src} → ${dst} (${state.method}), last ${state.window}`;
  const box = $('sparkline');
  box.textContent = '';
  if (!link) {
    $('detail-facts').textContent = 'not probed';
    return;
  }
  const rr = link.rtt_seconds;
  $('detail-facts').textContent =
      `p50 ${ms(rr.p50)} ms · p90 ${ms(rr.p90)} ms · min ${ms(rr.min)} ms · max ${ms(rr.max)} ms · ` +
      `loss ${pct(link.loss)}` +
      (link.forward_loss !== undefined ? ` (forward ${pct(link.forward_loss)}, return ${pct(link.return_loss)})` : '') +
      ` · path MTU ${link.path_mtu_bytes ? link.path_mtu_bytes + ' bytes' : 'unknown'}`;
  drawSparkline(box, link.series || [], data.window_seconds, data.generated_at);
  // The selection mark moves with the next draw; draw it now without redrawing the matrix.
  const svg = document.querySelector('#matrix svg');
  const mark = svg && svg.querySelector('.selected-cell');
  if (mark) {
    const rowNames = [...svg.querySelectorAll('text.axis.row')].map((t) => t.textContent);
    const colNames = [...svg.querySelectorAll('text.axis.col')].map((t) => t.textContent);
    const i = rowNames.indexOf(src), j = colNames.indexOf(dst), size = +svg.dataset.size;
    if (i >= 0 && j >= 0) {
      mark.setAttribute('x', +svg.dataset.x0 + j * size + 1);
      mark.setAttribute('y', +svg.dataset.y0 + i * size + 1);
      mark.setAttribute('visibility', 'visible');
    }
  }
}

// SmokePing's smoke: a min–max band and the median, each segment coloured by its loss.
function drawSparkline(box, series, windowSeconds, now) {
  const W = 640, H = 140, padL = 48, padB = 18;
  const svg = el('svg:svg', {id: 'spark', width: W, height: H, role: 'img',
                             'aria-label': 'RTT history: median and min–max band'}, box);
  const pts = series.filter((p) => p[1] !== null);
  const maxY = Math.max(0.001, ...pts.map((p) => p[4]));
  const x = (t) => padL + (W - padL - 4) * (1 - (now - t) / windowSeconds);
  const y = (v) => 4 + (H - padB - 8) * (1 - v / maxY);
  el('svg:line', {class: 'spark-axis', x1: padL, x2: W - 4, y1: H - padB, y2: H - padB}, svg);
  el('svg:text', {x: 2, y: 12}, svg, ms(maxY) + ' ms');
  el('svg:text', {x: 2, y: H - padB}, svg, '0');
  el('svg:text', {x: padL, y: H - 2}, svg, '-' + Math.round(windowSeconds / 60) + ' min');
  el('svg:text', {x: W - 30, y: H - 2}, svg, 'now');
  if (pts.length) {
    const top = pts.map((p) => `${x(p[0]).toFixed(1)},${y(p[4]).toFixed(1)}`);
    const bottom = pts.slice().reverse().map((p) => `${x(p[0]).toFixed(1)},${y(p[3]).toFixed(1)}`);
    el('svg:polygon', {class: 'band', points: top.concat(bottom).join(' ')}, svg);
  }
  for (let i = 0; i < series.length; i++) {
    const p = series[i], prev = series[i - 1];
    const done = p[5] + p[6], loss = done ? p[6] / done : 0;
    const cls = p[1] === null ? 'noreply' : loss === 0 ? 'loss0' : loss < 0.05 ? 'loss1' : loss < 0.2 ? 'loss2' : 'loss3';
    const yv = p[1] === null ? y(0) : y(p[1]);
    const x0 = prev ? x(prev[0]) : x(p[0]) - 3;
    el('svg:line', {class: 'median seg ' + cls, x1: x0.toFixed(1), x2: x(p[0]).toFixed(1),
                    y1: yv.toFixed(1), y2: yv.toFixed(1), 'data-loss': loss.toFixed(3)}, svg);
  }
}

function drawTraffic(data) {
  const roles = [...new Set(data.traffic.map((t) => t.role))].sort();
  const box = $('roles');
  box.querySelectorAll('label').forEach((l) => l.remove());
  const hue = (role) => (roles.indexOf(role) * 137) % 360;
  for (const role of roles) {
    const label = el('label', {}, box);
    const input = el('input', {type: 'checkbox', value: role}, label);
    input.checked = !state.hiddenRoles.has(role);
    el('svg:svg', {width: 10, height: 10, 'aria-hidden': 'true'}, label).appendChild(
        el('svg:rect', {width: 10, height: 10, fill: `hsl(${hue(role)} 60% 50%)`}));
    label.append(' ' + role);
    input.addEventListener('change', () => {
      if (input.checked) state.hiddenRoles.delete(role); else state.hiddenRoles.add(role);
      drawTraffic(state.data);
    });
  }
  const shown = data.traffic.filter((t) => !state.hiddenRoles.has(t.role));
  const pairs = new Map();
  for (const t of shown) {
    const k = t.src + ' → ' + t.dst;
    if (!pairs.has(k)) pairs.set(k, []);
    pairs.get(k).push(t);
  }
  const sorted = [...pairs.entries()].map(([k, v]) => [k, v, v.reduce((s, t) => s + t.bytes_per_second, 0)])
                     .sort((a, b) => b[2] - a[2]);
  const chart = $('traffic-chart');
  chart.textContent = '';
  const rowH = 20, labelW = 220, W = 820;
  const max = Math.max(1, ...sorted.map((s) => s[2]));
  const svg = el('svg:svg', {width: W, height: sorted.length * rowH + 4, role: 'img',
                             'aria-label': 'bytes per second per node pair, stacked by role'}, chart);
  sorted.forEach(([k, items, total], i) => {
    const y = 2 + i * rowH;
    el('svg:text', {x: labelW - 6, y: y + 14, 'text-anchor': 'end'}, svg, k);
    let x = labelW;
    for (const t of items) {
      const w = (W - labelW - 90) * t.bytes_per_second / max;
      const r = el('svg:rect', {class: 'bar', x: x.toFixed(1), y, width: Math.max(0.5, w).toFixed(1),
                                height: rowH - 4, fill: `hsl(${hue(t.role)} 60% 50%)`,
                                'data-role': t.role}, svg);
      el('svg:title', {}, r, `${k} ${t.role}: ${rate(t.bytes_per_second)}`);
      x += w;
    }
    el('svg:text', {x: x + 6, y: y + 14}, svg, rate(total));
  });
  const tbody = $('traffic-table').querySelector('tbody');
  tbody.textContent = '';
  for (const t of shown.slice().sort((a, b) => b.bytes_per_second - a.bytes_per_second)) {
    const tr = el('tr', {'data-role': t.role}, tbody);
    el('td', {}, tr, t.src);
    el('td', {}, tr, t.dst);
    el('td', {}, tr, t.role);
    el('td', {class: 'num'}, tr, rate(t.bytes_per_second));
    el('td', {}, tr, t.observer);
  }
}

function render() {
  const data = state.data;
  if (!data) return;
  $('matrix-view').hidden = state.view !== 'matrix';
  $('traffic-view').hidden = state.view !== 'traffic';
  if (state.view === 'matrix') {
    drawLegend(data);
    drawMatrix(data);
  } else {
    drawTraffic(data);
  }
  const stale = data.nodes.filter((n) => n.state === 'stale').length;
  $('status').textContent = `${data.nodes.length} nodes, ${stale} stale, window ${state.window}, ` +
                            `updated ${new Date(data.generated_at * 1000).toLocaleTimeString()}`;
  if (window.meshFirstRenderMs === undefined) {
    window.meshFirstRenderMs = performance.now();
    // The frame that shows it: a task queued from the next animation frame runs after its paint.
    requestAnimationFrame(() => setTimeout(() => { window.meshFirstPaintMs = performance.now(); }, 0));
  }
  document.body.setAttribute('data-rendered', String(Date.now()));
}

async function refresh() {
  try {
    state.data = await load();
    setupControls(state.data);
    render();
  } catch (e) {
    $('status').textContent = 'cannot load /api/v1/mesh: ' + e.message;
  }
}

document.addEventListener('DOMContentLoaded', () => {
  for (const input of document.querySelectorAll('input[name="view"]')) {
    input.addEventListener('change', () => { state.view = input.value; render(); });
  }
  $('group-toggle').addEventListener('change', (e) => {
    state.grouped = e.target.checked;
    state.drill = null;
    render();
  });
  $('group-back').addEventListener('click', () => { state.drill = null; render(); });
  refresh();
  state.timer = setInterval(refresh, 5000);
});
