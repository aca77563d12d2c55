// Drives headless chromium against a fixture gateway's /mesh page.
//   node mesh_page_test.mjs BASE_URL OUT_DIR test|bench
// test: the reference cluster (5 nodes): N² cells and their states, the sparkline after a click,
//       keyboard focus and a text label for every cell, the role view; light and dark screenshots into OUT_DIR.
// bench: a large mesh: /api/v1/mesh answer time and the page's render time, printed.
// Either way: no console error, no page error, no request off localhost.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {spawnSync} from 'node:child_process';
import puppeteer from 'puppeteer-core';

const [base, outDir, mode = 'test'] = process.argv.slice(2);
const failures = [];
function check(ok, what) {
  if (!ok) failures.push(what);
  console.log(`${ok ? 'ok  ' : 'FAIL'} ${what}`);
}

const executable = fs.existsSync('/usr/lib/chromium/chromium') ? '/usr/lib/chromium/chromium'
                                                               : '/usr/bin/chromium';
const userDataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'mesh-chromium-'));
const browser = await puppeteer.launch({
  executablePath: executable,
  headless: true,
  userDataDir,
  args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
         '--disable-background-networking', '--disable-component-update', '--disable-sync',
         '--disable-dev-shm-usage'],
});

const consoleErrors = [];
const offHost = [];
async function newPage() {
  const page = await browser.newPage();
  page.on('console', (m) => { if (m.type() === 'error') consoleErrors.push(m.text()); });
  page.on('pageerror', (e) => consoleErrors.push('page error: ' + e.message));
  await page.setRequestInterception(true);
  page.on('request', (r) => {
    const url = new URL(r.url());
    const host = url.hostname;
    // The bench's bare navigation (/-/healthy) makes chromium ask for /favicon.ico, which the
    // gateway does not serve; /mesh names its own icon.
    if (url.pathname === '/favicon.ico') return r.respond({status: 204, body: ''});
    if (host === '127.0.0.1' || host === 'localhost' || host === '[::1]') return r.continue();
    offHost.push(r.url());
    return r.abort();
  });
  await page.setViewport({width: 1100, height: 900});
  return page;
}

async function openMesh(page) {
  const t0 = Date.now();
  const response = await page.goto(base + '/mesh', {waitUntil: 'load'});
  await page.waitForSelector('body[data-rendered]', {timeout: 20000});
  await page.waitForFunction(() => window.meshFirstPaintMs !== undefined, {timeout: 20000});
  return {response, wallMs: Date.now() - t0};
}

// The matrix as drawn: each state is one <path> of squares, the loss borders one more, the
// asymmetric badges texts naming their cell. Reads every square back to its row and column, and
// checks by hit-testing that what is painted at each visible cell's centre is its state's path.
async function readMatrix(page) {
  return page.evaluate(() => {
    const svg = document.querySelector('#matrix svg');
    const rows = [...svg.querySelectorAll('text.axis.row')].map((t) => t.textContent);
    const cols = [...svg.querySelectorAll('text.axis.col')].map((t) => t.textContent);
    const x0 = +svg.dataset.x0, y0 = +svg.dataset.y0, size = +svg.dataset.size;
    const squares = (d) => [...d.matchAll(/M([\d.]+) ([\d.]+)h/g)].map((m) => [
      Math.round((+m[2] - y0 - 1) / size), Math.round((+m[1] - x0 - 1) / size)]);
    const cells = new Map();
    let drawn = 0;
    for (const p of svg.querySelectorAll('path.cells')) {
      for (const [i, j] of squares(p.getAttribute('d'))) {
        drawn++;
        cells.set(rows[i] + '>' + cols[j], {src: rows[i], dst: cols[j], state: p.dataset.state});
      }
    }
    const lossy = svg.querySelector('path.cells-lossy');
    for (const [i, j] of lossy ? squares(lossy.getAttribute('d')) : []) {
      const c = cells.get(rows[i] + '>' + cols[j]);
      if (c) c.lossy = true;
    }
    for (const b of svg.querySelectorAll('text.badge')) {
      const c = cells.get(b.dataset.src + '>' + b.dataset.dst);
      if (c) c.asym = true;
    }
    const box = svg.getBoundingClientRect();
    let hit = 0, visible = 0;
    rows.forEach((r, i) => cols.forEach((c, j) => {
      const x = box.left + x0 + j * size + size / 2, y = box.top + y0 + i * size + size / 2;
      if (x >= innerWidth || y >= innerHeight) return;
      visible++;
      const e = document.elementFromPoint(x, y);
      if (e && e.dataset.state === (cells.get(r + '>' + c) || {}).state) hit++;
    }));
    return {rows, cols, drawn, cells: [...cells.values()], hit, visible,
            count: [...svg.querySelectorAll('path.cells')].reduce((n, p) => n + +p.dataset.count, 0)};
  });
}

// Clicks the cell src → dst where it is drawn.
async function clickCell(page, src, dst) {
  const at = await page.evaluate((s, d) => {
    const svg = document.querySelector('#matrix svg');
    const rows = [...svg.querySelectorAll('text.axis.row')].map((t) => t.textContent);
    const cols = [...svg.querySelectorAll('text.axis.col')].map((t) => t.textContent);
    const box = svg.getBoundingClientRect(), size = +svg.dataset.size;
    return [box.left + +svg.dataset.x0 + cols.indexOf(d) * size + size / 2,
            box.top + +svg.dataset.y0 + rows.indexOf(s) * size + size / 2];
  }, src, dst);
  await page.mouse.click(at[0], at[1]);
}

try {
  if (mode === 'test') {
    const page = await newPage();
    const {response} = await openMesh(page);
    const csp = response.headers()['content-security-policy'] || '';
    check(csp.startsWith("default-src 'none'"), 'page served with a Content-Security-Policy: ' + csp);

    const nodes = ['ct-serv-jp', 'gce-agent-tw', 'acer-agent', 'laptop-agent', 'desktop-agent'];
    const matrix = await readMatrix(page);
    const cells = matrix.cells;
    check(matrix.drawn === nodes.length ** 2 && cells.length === nodes.length ** 2,
          `${nodes.length}² = ${nodes.length ** 2} cells drawn (got ${matrix.drawn}, ${cells.length} distinct)`);
    check(matrix.visible === cells.length && matrix.hit === matrix.visible,
          `hit-testing each cell's centre finds its state (${matrix.hit} of ${matrix.visible})`);
    const cell = (s, d) => cells.find((c) => c.src === s && c.dst === d) || {};
    // Keyboard: the matrix is one tab stop; from it the arrow keys move its cursor over every
    // cell (row by row, back and forth), and each cell reached has its text label.
    const stops = await page.$$eval('#matrix [tabindex="0"]', (s) => s.length);
    check(stops === 1, `the matrix is one tab stop (got ${stops})`);
    await page.$eval('#matrix [tabindex="0"]', (c) => c.focus());
    for (let k = 0; k < nodes.length; k++) await page.keyboard.press('ArrowUp');
    await page.keyboard.press('Home');
    const walked = [];
    const here = () => page.evaluate(() => {
      const grid = document.activeElement;
      const a = document.getElementById(grid.getAttribute('aria-activedescendant'));
      return {src: a.dataset.src, dst: a.dataset.dst, label: a.getAttribute('aria-label'),
              role: a.getAttribute('role'), focused: grid.getAttribute('role') === 'grid'};
    });
    for (let i = 0; i < nodes.length; i++) {
      for (let j = 0; j < nodes.length; j++) {
        walked.push(await here());
        if (j + 1 < nodes.length) await page.keyboard.press(i % 2 ? 'ArrowLeft' : 'ArrowRight');
      }
      await page.keyboard.press('ArrowDown');
    }
    const reached = new Set(walked.map((w) => w.src + '>' + w.dst));
    check(reached.size === nodes.length ** 2 && cells.every((c) => reached.has(c.src + '>' + c.dst)),
          `the arrow keys reach all ${nodes.length ** 2} cells (reached ${reached.size})`);
    check(walked.every((w) => w.focused && w.role === 'gridcell'),
          'the grid keeps the focus, its active descendant a gridcell');
    for (const w of walked) cell(w.src, w.dst).label = w.label;
    check(cells.every((c) => c.label && c.label.length > 0), 'every cell has a text label');
    check(nodes.every((n) => cell(n, n).state === 'self'), 'the diagonal is marked as self');
    check(cell('gce-agent-tw', 'ct-serv-jp').lossy, 'the lossy link gce-agent-tw → ct-serv-jp has a loss border');
    check(/forward loss [1-9]/.test(cell('gce-agent-tw', 'ct-serv-jp').label),
          'its label gives forward loss: ' + cell('gce-agent-tw', 'ct-serv-jp').label);
    check(nodes.filter((n) => n !== 'desktop-agent').every((n) => cell('desktop-agent', n).state === 'stale'),
          'the stale node desktop-agent: its row is grey');
    check(cell('laptop-agent', 'gce-agent-tw').state === 'not-probed', 'laptop-agent → gce-agent-tw is not probed');
    check(cell('ct-serv-jp', 'laptop-agent').asym && cell('laptop-agent', 'ct-serv-jp').asym,
          'ct-serv-jp ⇄ laptop-agent carries the asymmetric badge both ways');
    check(!cell('ct-serv-jp', 'acer-agent').asym, 'a symmetric pair carries no badge');
    // Thresholds 10, 50, 150 ms: 1 ms r0, 6 ms r0, 48 ms r1, 80 ms r2, 165 ms r3.
    const colours = [['laptop-agent', 'acer-agent', 'r0'], ['gce-agent-tw', 'acer-agent', 'r0'],
                     ['acer-agent', 'gce-agent-tw', 'r0'], ['ct-serv-jp', 'acer-agent', 'r2'],
                     ['ct-serv-jp', 'laptop-agent', 'r3']];
    check(colours.every(([s, d, c]) => cell(s, d).state === c),
          'RTT colours from the thresholds: ' + colours.map(([s, d]) => `${s}→${d} ${cell(s, d).state}`).join(', '));

    // Keyboard: from a cell, ArrowRight moves to the next column and shows its details.
    await clickCell(page, 'acer-agent', 'ct-serv-jp');
    await page.waitForSelector('#spark .median', {timeout: 10000});
    await page.keyboard.press('ArrowRight');
    const columns = matrix.cols;
    const next = columns[columns.indexOf('ct-serv-jp') + 1];
    const focused = await page.evaluate(() => document.getElementById(
        document.activeElement.getAttribute('aria-activedescendant')).dataset.dst);
    check(focused === next, `ArrowRight moves focus to the next column: ${focused} (want ${next})`);
    const tip = await page.$eval('#tooltip', (t) => !t.hidden && t.textContent);
    check(typeof tip === 'string' && tip.includes('acer-agent → ' + next), 'focus shows the details');
    await page.keyboard.press('Enter');
    await page.waitForFunction((d) => document.getElementById('detail-title').textContent.includes('acer-agent → ' + d),
                               {timeout: 10000}, next);
    check(true, 'Enter opens the focused cell\'s history');

    // Click the lossy link: its history.
    await clickCell(page, 'gce-agent-tw', 'ct-serv-jp');
    await page.waitForFunction(() => document.getElementById('detail-title').textContent.includes('gce-agent-tw → ct-serv-jp'),
                               {timeout: 10000});
    const spark = await page.evaluate(() => ({
      segments: document.querySelectorAll('#spark .median').length,
      lossy: document.querySelectorAll('#spark .median:not(.loss0)').length,
      band: document.querySelectorAll('#spark .band').length,
      facts: document.getElementById('detail-facts').textContent,
      title: document.getElementById('detail-title').textContent,
    }));
    check(spark.segments >= 25, `sparkline: ${spark.segments} median segments over 5 min`);
    check(spark.band === 1, 'sparkline: a min–max band');
    check(spark.lossy > 0, `sparkline: ${spark.lossy} segments coloured by loss`);
    check(spark.facts.includes('path MTU 1280 bytes'), 'path MTU beside it: ' + spark.facts);
    await page.mouse.move(1090, 890);  // the tooltip leaves with the pointer
    await page.waitForFunction(() => document.getElementById('tooltip').hidden);
    await page.screenshot({path: path.join(outDir, 'mesh-light.png'), fullPage: true});
    await page.emulateMediaFeatures([{name: 'prefers-color-scheme', value: 'dark'}]);
    const darkBg = await page.evaluate(() => getComputedStyle(document.body).backgroundColor);
    check(darkBg !== 'rgb(255, 255, 255)', 'dark mode follows prefers-color-scheme: ' + darkBg);
    await page.screenshot({path: path.join(outDir, 'mesh-dark.png'), fullPage: true});
    await page.emulateMediaFeatures([{name: 'prefers-color-scheme', value: 'light'}]);

    // Method switch: icmp.
    await page.click('input[name="method"][value="icmp"]');
    await page.waitForFunction(() => document.getElementById('mesh-cursor')
        ?.getAttribute('aria-label').includes('(icmp)'), {timeout: 10000});
    check(true, 'the method switch reloads the matrix for icmp');

    // Role traffic.
    await page.click('input[name="view"][value="traffic"]');
    await page.waitForSelector('#traffic-table tbody tr', {timeout: 10000});
    const rows = await page.$$eval('#traffic-table tbody tr', (rs) => rs.map((r) => [...r.cells].map((c) => c.textContent)));
    check(rows.length === 12, `role table: ${rows.length} rows, one per node pair and role`);
    check(!rows.some((r) => r[2] === 'tailscale'), 'underlay (WireGuard) bytes are not role traffic');
    const pg = rows.find((r) => r[0] === 'ct-serv-jp' && r[1] === 'acer-agent' && r[2] === 'postgresql');
    check(pg && pg[3] === '240 kB/s' && pg[4] === 'ct-serv-jp', 'postgresql ct-serv-jp → acer-agent at 240 kB/s, counted by its source: ' + pg);
    const bars = await page.$$eval('#traffic-chart rect.bar', (b) => b.length);
    check(bars === 12, `role chart: ${bars} bars`);
    await page.click('#roles input[value="postgresql"]');
    const after = await page.$$eval('#traffic-table tbody tr', (rs) => rs.map((r) => r.cells[2].textContent));
    check(after.length === 10 && !after.includes('postgresql'), 'hiding postgresql removes its rows');
    await page.screenshot({path: path.join(outDir, 'mesh-traffic-light.png'), fullPage: true});

    // Bad input to the API: a 400 with a reason.
    // (From node: chromium logs every 4xx answer as a console error.)
    const badResponse = await fetch(base + '/api/v1/mesh?window=-5m');
    const bad = [badResponse.status, await badResponse.text()];
    check(bad[0] === 400 && bad[1].includes('window'), 'a negative window is a 400: ' + bad[1].trim());
    await page.close();
  } else {
    // bench: the API over HTTP beside /targets (a trivial JSON answer from the same server:
    // the HTTP path alone), from a plain client (node's fetch) and from inside the page, then the
    // page's render beside a bare navigation, each repeated.
    const timeNode = async (url, k) => {
      const times = [];
      let bytes = 0;
      for (let i = 0; i < k; i++) {
        const t0 = performance.now();
        const r = await fetch(base + url);
        bytes = (await r.arrayBuffer()).byteLength;
        times.push(performance.now() - t0);
      }
      times.sort((a, b) => a - b);
      return {median: times[Math.floor(k / 2)], p90: times[Math.floor(k * 0.9)], bytes};
    };
    // curl: the lightest client, each request a process of its own; its time_total is the
    // request from connect to the last byte.
    const timeCurl = (urls, k) => {
      const times = [];
      const list = Array.isArray(urls) ? urls : [urls];
      for (let i = 0; i < k; i++) {
        const url = list[i % list.length];
        const r = spawnSync('curl', ['-s', '-o', '/dev/null', '-w', '%{time_total}', base + url],
                            {encoding: 'utf8'});
        times.push(parseFloat(r.stdout) * 1000);
      }
      times.sort((a, b) => a - b);
      return {median: times[Math.floor(k / 2)], p90: times[Math.floor(k * 0.9)]};
    };
    const curlApi = timeCurl('/api/v1/mesh?window=5m&method=udp', 51);
    // A link keeps the sums of its last two windows; asking for three in turn makes every answer
    // sum every link's window again, the cost a page meets when a new point has arrived.
    const cycled = ['5m', '4m', '3m'].map((w) => '/api/v1/mesh?window=' + w + '&method=udp');
    const curlRecompute = timeCurl(cycled, 51);
    const curlTargets = timeCurl('/targets', 51);
    const curlMetrics = timeCurl('/metrics', 51);
    const plainApi = await timeNode('/api/v1/mesh?window=5m&method=udp', 51);
    const plainTargets = await timeNode('/targets', 51);
    const plainMetrics = await timeNode('/metrics', 51);
    const page = await newPage();
    await page.goto(base + '/-/healthy');
    const timeFetch = (url, n) => page.evaluate(async (u, k) => {
      const times = [];
      let bytes = 0;
      for (let i = 0; i < k; i++) {
        const t0 = performance.now();
        const r = await fetch(u);
        bytes = (await r.text()).length;
        times.push(performance.now() - t0);
      }
      times.sort((a, b) => a - b);
      return {median: times[Math.floor(k / 2)], p90: times[Math.floor(k * 0.9)], bytes};
    }, url, n);
    const api = await timeFetch('/api/v1/mesh?window=5m&method=udp', 31);
    const targets = await timeFetch('/targets', 31);
    const renders = [], bare = [];
    let cells = 0;
    const tasks = [];
    for (let i = 0; i < 7; i++) {
      const before = (await page.metrics()).TaskDuration;
      await openMesh(page);
      renders.push(await page.evaluate(() => window.meshFirstPaintMs));
      tasks.push(((await page.metrics()).TaskDuration - before) * 1000);
      cells = (await readMatrix(page)).count;
      await page.goto(base + '/-/healthy', {waitUntil: 'load'});
      bare.push(await page.evaluate(() => performance.now()));
    }
    renders.sort((a, b) => a - b);
    bare.sort((a, b) => a - b);
    tasks.sort((a, b) => a - b);
    const nodes = await page.evaluate(async () => (await (await fetch('/api/v1/mesh?window=5m&method=udp')).json()).nodes.length);
    const met = (ok) => (ok ? 'target met' : 'TARGET MISSED');
    console.log(`nodes ${nodes}: curl: /api/v1/mesh?window=5m&method=udp median ${curlApi.median.toFixed(2)} ms, p90 ${curlApi.p90.toFixed(2)} ms; beside /targets median ${curlTargets.median.toFixed(2)} ms, p90 ${curlTargets.p90.toFixed(2)} ms and /metrics median ${curlMetrics.median.toFixed(2)} ms, p90 ${curlMetrics.p90.toFixed(2)} ms; p90 < 10 ms: ${met(curlApi.p90 < 10)}`);
    console.log(`nodes ${nodes}: curl, windows 5m, 4m, 3m in turn (every link's window summed again): median ${curlRecompute.median.toFixed(2)} ms, p90 ${curlRecompute.p90.toFixed(2)} ms; p90 < 10 ms: ${met(curlRecompute.p90 < 10)}`);
    console.log(`nodes ${nodes}: node's fetch: /api/v1/mesh?window=5m&method=udp (${plainApi.bytes} bytes) median ${plainApi.median.toFixed(2)} ms, p90 ${plainApi.p90.toFixed(2)} ms; beside /targets (${plainTargets.bytes} bytes) median ${plainTargets.median.toFixed(2)} ms, p90 ${plainTargets.p90.toFixed(2)} ms and /metrics (${plainMetrics.bytes} bytes) median ${plainMetrics.median.toFixed(2)} ms, p90 ${plainMetrics.p90.toFixed(2)} ms`);
    console.log(`nodes ${nodes}: fetch inside chromium: /api/v1/mesh?window=5m&method=udp (${api.bytes} bytes) median ${api.median.toFixed(2)} ms, p90 ${api.p90.toFixed(2)} ms; beside /targets median ${targets.median.toFixed(2)} ms, p90 ${targets.p90.toFixed(2)} ms`);
    console.log(`nodes ${nodes}: page render, navigation start to the first painted matrix (${cells} cells), median ${renders[3].toFixed(1)} ms, max ${renders[6].toFixed(1)} ms; beside a bare navigation median ${bare[3].toFixed(1)} ms; < 300 ms: ${met(renders[3] < 300)}`);
    console.log(`nodes ${nodes}: renderer main-thread task durations per /mesh load (on a busy machine they include waiting for a core): median ${tasks[3].toFixed(1)} ms`);
    // Past 60 nodes the matrix starts grouped; at any size the toggle groups it.
    await openMesh(page);
    await page.click('#group-toggle');
    const grouped = await readMatrix(page);
    const groups = grouped.rows.length;
    const groupCells = grouped.count;
    check(groupCells === groups * groups, `grouped: ${groups} × ${groups} group cells`);
    const firstGroup = grouped.rows[0];
    await clickCell(page, firstGroup, firstGroup);
    await page.waitForFunction((g) => document.querySelector('#matrix text.axis.row')?.textContent !== g,
                               {timeout: 10000}, firstGroup);
    const drilled = (await readMatrix(page)).count;
    check(drilled === (nodes / groups) ** 2, `drill-down into ${firstGroup} × ${firstGroup}: ${drilled} cells`);
    await page.close();
  }
} catch (e) {
  failures.push('exception: ' + (e.stack || e));
  console.log('FAIL ' + (e.stack || e));
} finally {
  await browser.close();
  fs.rmSync(userDataDir, {recursive: true, force: true});
}
check(consoleErrors.length === 0, 'no console errors' + (consoleErrors.length ? ': ' + consoleErrors.join(' | ') : ''));
check(offHost.length === 0, 'no request off localhost' + (offHost.length ? ': ' + offHost.join(' ') : ''));
if (failures.length) {
  console.log(`${failures.length} check(s) failed`);
  process.exit(1);
}
console.log('all checks passed');
