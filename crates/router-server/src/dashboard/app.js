// The router's dashboard: polls GET /api/v1/router/status, follows
// GET /api/v1/router/events (Server-Sent Events read through fetch, so that the client
// key can travel in the Authorization header), and posts to /api/v1/router/explain.
'use strict';

const STATUS_EVERY_MS = 2000;
const RECONNECT_MS = 1000;
const MAX_DECISIONS = 100;
const KEY_STORE = 'routerClientKey';
const OUTCOME_COLORS = { ok: '#1f9d55', rate_limited_model: '#d97706', all_cooling_down: '#f59e0b',
  quota_exceeded: '#b45309', no_free_model: '#7c3aed', paid_model_refused: '#db2777', unknown_model: '#9333ea' };
const PALETTE = ['#2563eb', '#1f9d55', '#d97706', '#7c3aed', '#db2777', '#0891b2', '#65a30d', '#9ca3af'];
const TOOLS_EXAMPLE = { model: 'openrouter/free', messages: [{ role: 'user', content: 'What is the weather in Paris?' }],
  tools: [{ type: 'function', function: { name: 'get_weather', parameters: { type: 'object', properties: { city: { type: 'string' } } } } }] };
const VISION_EXAMPLE = { model: 'openrouter/free', messages: [{ role: 'user', content: [{ type: 'text', text: 'What is in this image?' },
  { type: 'image_url', image_url: { url: 'data:image/png;base64,iVBORw0KGgo=' } }] }] };

const $ = (id) => document.getElementById(id);
let status = null;
let clockOffset = 0; // server time minus local time, in ms
const decisions = []; // newest first
const seen = new Set();
let waitingForKey = false;

// ---------- small helpers ----------

function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k === 'class') e.className = v;
    else if (k === 'style') e.style.cssText = v; // CSSOM: allowed by the page's CSP
    else if (k === 'text') e.textContent = v;
    else if (k.startsWith('data-')) e.setAttribute(k, v);
    else e.setAttribute(k, v === true ? '' : v);
  }
  for (const c of children) if (c !== null && c !== undefined) e.append(c instanceof Node ? c : String(c));
  return e;
}

function esc(s) {
  return String(s).replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' }[c]));
}

const serverNow = () => Date.now() + clockOffset;
const pad = (n) => String(n).padStart(2, '0');

function clock(ms) {
  const d = new Date(ms);
  return `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
}

function duration(ms) {
  const s = Math.max(0, Math.ceil(ms / 1000));
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  return h > 0 ? `${h}:${pad(m)}:${pad(s % 60)}` : `${m}:${pad(s % 60)}`;
}

function ago(secs) {
  if (secs < 60) return `${secs}s`;
  if (secs < 3600) return `${Math.floor(secs / 60)}m`;
  if (secs < 86400) return `${Math.floor(secs / 3600)}h ${Math.floor((secs % 3600) / 60)}m`;
  return `${Math.floor(secs / 86400)}d ${Math.floor((secs % 86400) / 3600)}h`;
}

function tokens(n) {
  if (n === null || n === undefined) return '–';
  if (n >= 1000) return `${Math.round(n / 1024)}K`;
  return String(n);
}

function countdown(until) {
  return el('span', { class: 'countdown', 'data-until': String(until) }, duration(until - serverNow()));
}

// ---------- access ----------

function authHeaders(extra) {
  const h = Object.assign({}, extra || {});
  const key = sessionStorage.getItem(KEY_STORE);
  if (key) h.Authorization = `Bearer ${key}`;
  return h;
}

function askKey() {
  if (waitingForKey) return;
  waitingForKey = true;
  $('key-button').hidden = false;
  const dlg = $('key-dialog');
  if (!dlg.open) dlg.showModal();
}

async function api(path, options) {
  const opts = Object.assign({}, options || {});
  opts.headers = authHeaders(opts.headers);
  const resp = await fetch(path, opts);
  if (resp.status === 401) {
    sessionStorage.removeItem(KEY_STORE);
    askKey();
  }
  return resp;
}

async function errorMessage(resp) {
  try {
    const body = await resp.json();
    if (body && body.error && body.error.message) return body.error.message;
  } catch (_) { /* not JSON */ }
  return `HTTP ${resp.status}`;
}

function setBanner(text) {
  const b = $('banner');
  b.hidden = !text;
  b.textContent = text || '';
}

// ---------- status: header, pool, quotas, trends ----------

async function refreshStatus() {
  try {
    const resp = await api('/api/v1/router/status');
    if (resp.status === 401) return;
    if (!resp.ok) { setBanner(`status: ${await errorMessage(resp)}`); return; }
    status = await resp.json();
    clockOffset = status.now - Date.now();
    setBanner(null);
    renderHeader();
    renderPool();
    renderQuotas();
    renderTrends();
  } catch (e) {
    setBanner(`cannot reach the router (${e.message}); retrying`);
  }
}

function renderHeader() {
  $('version').textContent = `v${status.version}`;
  $('uptime').textContent = `up ${ago(status.uptime_secs)}`;
  const c = status.catalog;
  const fresh = c.source === 'live' ? `live, ${ago(c.age_secs)} old` : `${c.source.replace('_', ' ')}, ${ago(c.age_secs)} old`;
  $('catalog').textContent = `catalog: ${c.free_models} free of ${c.models} (${fresh})`;
  $('catalog').title = c.description + (c.refresh && c.refresh.last_error ? `\nlast refresh failed: ${c.refresh.last_error}` : '');
}

function poolFilter(m) {
  const text = $('f-text').value.trim().toLowerCase();
  if (text && !m.id.toLowerCase().includes(text) && !(m.name || '').toLowerCase().includes(text)) return false;
  if ($('f-vision').checked && !m.vision) return false;
  if ($('f-tools').checked && !m.tools) return false;
  if ($('f-structured').checked && !m.structured_outputs) return false;
  if ($('f-reasoning').checked && !m.reasoning) return false;
  const st = $('f-state').value;
  return !st || m.state === st;
}

function stateCell(m) {
  const td = el('td', { class: 'state-cell' }, el('span', { class: `state ${m.state}` }, m.state.replace('_', ' ')));
  if (m.until) {
    td.append(' until ', el('span', { class: 'until' }, clock(m.until)), ' (', countdown(m.until), ')');
  }
  if (m.reason) td.append(el('span', { class: 'why' }, m.reason));
  return td;
}

function renderPool() {
  const body = $('pool-table').tBodies[0];
  const shown = status.pool.filter(poolFilter);
  const byProvider = new Map();
  for (const m of shown) {
    if (!byProvider.has(m.provider)) byProvider.set(m.provider, []);
    byProvider.get(m.provider).push(m);
  }
  // The upstream a model is reached through is said when the shown models have more than one.
  const via = new Set(shown.map(m => m.upstream)).size > 1;
  const rows = [];
  for (const [provider, models] of [...byProvider.entries()].sort((a, b) => a[0].localeCompare(b[0]))) {
    rows.push(el('tr', { class: 'group' }, el('td', { colspan: '6' }, `${provider || '(no provider)'} · ${models.length}`)));
    for (const m of models) {
      const caps = el('div', { class: 'caps' },
        ...[['vision', m.vision], ['tools', m.tools], ['structured', m.structured_outputs], ['reasoning', m.reasoning]]
          .map(([label, on]) => el('span', { class: on ? 'cap on' : 'cap', title: on ? `supports ${label}` : `no ${label}` }, label)));
      const r = m.recent;
      rows.push(el('tr', { 'data-model': m.id, 'data-state': m.state },
        el('td', {}, el('div', { class: 'id' }, m.id),
          el('div', { class: 'name' }, m.name, via && m.upstream ? ` · via ${m.upstream}` : '')),
        el('td', { class: 'num', title: m.max_completion_tokens ? `max output ${m.max_completion_tokens}` : '' }, tokens(m.context_length)),
        el('td', { title: m.capabilities.join(', ') }, caps),
        stateCell(m),
        el('td', { class: 'num', title: r ? `${r.ok} of the last ${r.attempts} attempts succeeded` : 'no attempt yet' },
          r ? `${Math.round(r.success_rate * 100)}% · ${r.attempts}` : '–'),
        el('td', { class: 'num' }, r && r.median_latency_ms !== null ? `${r.median_latency_ms < 10 ? r.median_latency_ms.toFixed(1) : Math.round(r.median_latency_ms)} ms` : '–')));
    }
  }
  if (!rows.length) rows.push(el('tr', {}, el('td', { colspan: '6', class: 'muted' }, 'No model matches the filters.')));
  body.replaceChildren(...rows);
  const s = status.pool_states;
  $('pool-count').textContent = `${status.pool.length} models · ${s.ready || 0} ready` +
    (status.pool.length - (s.ready || 0) ? ` · ${status.pool.length - (s.ready || 0)} not ready` : '');
}

function quotaRow(label, w) {
  const pct = w.limit ? Math.min(100, (100 * w.used) / w.limit) : 0;
  const cls = w.limit && w.used >= w.limit ? 'bar full' : pct >= 80 ? 'bar high' : 'bar';
  const bar = el('div', { class: cls, role: 'progressbar', 'aria-valuemin': '0', 'aria-valuemax': String(w.limit || 0), 'aria-valuenow': String(w.used) },
    el('span', { style: `width:${w.limit ? pct : 0}%` }));
  return el('div', { class: 'quota-row', 'data-window': label },
    el('span', {}, label),
    bar,
    el('span', { class: 'num' }, w.limit ? `${w.used} / ${w.limit}` : `${w.used} / no limit`, ' · resets in ', countdown(w.resets_at)));
}

function renderQuotas() {
  const q = status.quota;
  const box = el('div', { class: 'quota', 'data-provider': q.provider },
    el('h3', {}, `${q.provider} (${q.scope})`),
    quotaRow('minute', q.minute),
    quotaRow('day', q.day));
  box.append(el('p', { class: 'muted small' }, q.day_source === 'upstream'
    ? 'Today\'s count is reconciled with upstream\'s own.' : 'Counted by this router (upstream\'s count not read today).'));
  if (q.blocked_until) box.append(el('p', { class: 'error' }, 'Blocked: requests are refused until ', clock(q.blocked_until), ' (', countdown(q.blocked_until), ')'));
  $('quota-list').replaceChildren(box);
}

// Stacked bars, one per minute; `series` is [{name, color, values[]}].
function stackedBars(series, minutes) {
  const W = 600, H = 110, top = 8, bottom = 16, left = 24;
  const n = minutes.length;
  const totals = minutes.map((_, i) => series.reduce((s, x) => s + x.values[i], 0));
  const max = Math.max(1, ...totals);
  const bw = (W - left) / n;
  const y = (v) => top + (H - top - bottom) * (1 - v / max);
  let out = `<svg viewBox="0 0 ${W} ${H}" preserveAspectRatio="none" role="img" aria-label="requests per minute">`;
  out += `<line class="grid-line" x1="${left}" x2="${W}" y1="${y(max)}" y2="${y(max)}"/>`;
  out += `<line class="grid-line" x1="${left}" x2="${W}" y1="${y(0)}" y2="${y(0)}"/>`;
  out += `<text class="axis" x="0" y="${y(max) + 3}">${max}</text><text class="axis" x="0" y="${y(0) + 3}">0</text>`;
  for (let i = 0; i < n; i++) {
    let acc = 0;
    for (const s of series) {
      const v = s.values[i];
      if (!v) continue;
      const y1 = y(acc + v), y0 = y(acc);
      out += `<rect x="${(left + i * bw + 0.5).toFixed(1)}" y="${y1.toFixed(1)}" width="${Math.max(1, bw - 1).toFixed(1)}" height="${(y0 - y1).toFixed(1)}" fill="${s.color}"><title>${esc(clock(minutes[i].start))} ${esc(s.name)}: ${v}</title></rect>`;
      acc += v;
    }
  }
  for (const i of [0, Math.floor(n / 2), n - 1]) {
    if (minutes[i]) out += `<text class="axis" x="${Math.min(W - 30, left + i * bw)}" y="${H - 3}">${esc(clock(minutes[i].start).slice(0, 5))}</text>`;
  }
  return out + '</svg>';
}

function legend(series) {
  return series.map((s) => el('span', {}, el('i', { style: `background:${s.color}` }), s.name));
}

function renderTrends() {
  const minutes = status.trends;
  const outcomes = new Map();
  const models = new Map();
  for (const m of minutes) {
    for (const [k, v] of Object.entries(m.outcomes)) outcomes.set(k, (outcomes.get(k) || 0) + v);
    for (const [k, v] of Object.entries(m.models)) models.set(k, (models.get(k) || 0) + v);
  }
  let extra = 0;
  const outcomeSeries = [...outcomes.keys()].sort((a, b) => (a === 'ok' ? -1 : b === 'ok' ? 1 : a.localeCompare(b))).map((k) => ({
    name: k, color: OUTCOME_COLORS[k] || ['#dc2626', '#be123c', '#991b1b', '#6b7280'][extra++ % 4],
    values: minutes.map((m) => m.outcomes[k] || 0),
  }));
  const top = [...models.entries()].sort((a, b) => b[1] - a[1]).slice(0, PALETTE.length - 1).map(([k]) => k);
  const modelSeries = top.map((k, i) => ({ name: k, color: PALETTE[i], values: minutes.map((m) => m.models[k] || 0) }));
  if (models.size > top.length) {
    modelSeries.push({ name: 'other', color: PALETTE[PALETTE.length - 1],
      values: minutes.map((m) => Object.entries(m.models).filter(([k]) => !top.includes(k)).reduce((s, [, v]) => s + v, 0)) });
  }
  $('trend-outcome').innerHTML = stackedBars(outcomeSeries, minutes);
  $('legend-outcome').replaceChildren(...(outcomeSeries.length ? legend(outcomeSeries) : [el('span', {}, 'no request in the last hour')]));
  $('trend-model').innerHTML = stackedBars(modelSeries, minutes);
  $('legend-model').replaceChildren(...(modelSeries.length ? legend(modelSeries) : [el('span', {}, 'no answered request in the last hour')]));
}

function tickCountdowns() {
  const now = serverNow();
  for (const c of document.querySelectorAll('.countdown[data-until]')) {
    c.textContent = duration(Number(c.dataset.until) - now);
  }
}

// ---------- live decisions ----------

function decisionItem(d) {
  const ok = d.outcome === 'ok';
  const li = el('li', { tabindex: '0', 'data-id': String(d.id), 'data-model': d.model || '', 'data-outcome': d.outcome },
    el('span', { class: 'time' }, clock(d.at)),
    el('span', { class: ok ? 'outcome ok' : 'outcome' }, ok ? String(d.status) : `${d.status} ${d.outcome}`),
    el('span', { class: 'id' }, d.model || d.pick || '(no model)'),
    el('span', { class: 'num' }, `${d.total_ms.toFixed(1)} ms`),
    el('span', { class: 'sub' },
      `${d.attempts.length} attempt${d.attempts.length === 1 ? '' : 's'}` +
      (d.attempts.some((a) => a.outcome !== 'ok') ? ` (${d.attempts.filter((a) => a.outcome !== 'ok').map((a) => a.outcome).join(', ')})` : '') +
      ` · ${d.candidates} candidates · overhead ${d.overhead_us} µs · ${d.requirements.join(', ')}`));
  li.addEventListener('click', () => showDetail(d));
  li.addEventListener('keydown', (e) => { if (e.key === 'Enter') showDetail(d); });
  return li;
}

function addDecision(d) {
  if (seen.has(d.id)) return;
  seen.add(d.id);
  decisions.unshift(d);
  const list = $('decision-list');
  const li = decisionItem(d);
  li.dataset.shown = String(Date.now());
  li.classList.add('new');
  list.prepend(li);
  while (decisions.length > MAX_DECISIONS) {
    const old = decisions.pop();
    seen.delete(old.id);
    list.lastElementChild && list.lastElementChild.remove();
  }
  $('decision-empty').hidden = true;
  $('decision-count').textContent = `${decisions.length} shown, newest first`;
}

function showDetail(d) {
  const dl = el('dl', {},
    el('dt', {}, 'time'), el('dd', {}, new Date(d.at).toLocaleString()),
    el('dt', {}, 'requested'), el('dd', { class: 'id' }, d.requested.join(', ') || '–'),
    el('dt', {}, 'requirements'), el('dd', {}, d.requirements.join(', ')),
    el('dt', {}, 'estimated prompt'), el('dd', {}, `${d.estimated_prompt_tokens} tokens`),
    el('dt', {}, 'candidates'), el('dd', {}, String(d.candidates)),
    el('dt', {}, 'seed'), el('dd', { class: 'id' }, String(d.seed)),
    el('dt', {}, 'pick'), el('dd', {}, el('span', { class: 'id' }, d.pick || '–'), d.pick ? ` (${d.pick_kind})` : ''),
    el('dt', {}, 'answered by'), el('dd', { class: 'id' }, d.model || '–'),
    el('dt', {}, 'outcome'), el('dd', {}, `${d.status} ${d.outcome}`),
    el('dt', {}, 'time'), el('dd', {}, `${d.total_ms.toFixed(2)} ms total, ${d.upstream_ms.toFixed(2)} ms upstream, ${d.overhead_us} µs router overhead` +
      (d.waited_ms ? `, ${d.waited_ms.toFixed(0)} ms waiting for a cooling model` : '')),
    el('dt', {}, 'stream'), el('dd', {}, d.stream ? 'yes' : 'no'));
  if (d.error) dl.append(el('dt', {}, 'error'), el('dd', { class: 'error' }, d.error));
  const attempts = el('table', {},
    el('thead', {}, el('tr', {}, el('th', {}, '#'), el('th', {}, 'model'), el('th', {}, 'result'), el('th', { class: 'num' }, 'time'))),
    el('tbody', {}, ...d.attempts.map((a, i) => el('tr', {},
      el('td', {}, String(i + 1)), el('td', { class: 'id' }, a.model),
      el('td', {}, a.outcome + (a.raced ? ' (raced)' : '')), el('td', { class: 'num' }, `${a.elapsed_ms.toFixed(1)} ms`)))));
  $('detail-body').replaceChildren(el('h2', {}, `Decision #${d.id}`), dl, el('h3', {}, 'attempts'),
    d.attempts.length ? attempts : el('p', { class: 'muted' }, 'No upstream call was made.'));
  $('detail').showModal();
}

function handleBlock(block) {
  let type = 'message';
  const data = [];
  for (const line of block.split('\n')) {
    if (line.startsWith('event:')) type = line.slice(6).trim();
    else if (line.startsWith('data:')) data.push(line.slice(5).replace(/^ /, ''));
  }
  if (!data.length) return;
  if (type === 'decision') addDecision(JSON.parse(data.join('\n')));
}

function setConn(state, text) {
  const c = $('conn');
  c.dataset.state = state;
  c.textContent = text;
}

async function followEvents() {
  for (;;) {
    try {
      const resp = await api('/api/v1/router/events', { headers: { Accept: 'text/event-stream' } });
      if (resp.status === 401) { setConn('error', 'key needed'); await keyProvided(); continue; }
      if (!resp.ok) throw new Error(await errorMessage(resp));
      setConn('live', 'live');
      const reader = resp.body.getReader();
      const dec = new TextDecoder();
      let buf = '';
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buf += dec.decode(value, { stream: true }).replace(/\r\n?/g, '\n');
        let i;
        while ((i = buf.indexOf('\n\n')) >= 0) {
          handleBlock(buf.slice(0, i));
          buf = buf.slice(i + 2);
        }
      }
      setConn('connecting', 'reconnecting…');
    } catch (e) {
      setConn('error', 'disconnected');
    }
    await new Promise((r) => setTimeout(r, RECONNECT_MS));
  }
}

let keyWaiters = [];
function keyProvided() {
  return new Promise((r) => keyWaiters.push(r));
}

// ---------- explain ----------

function list(items, render) {
  if (!items.length) return el('span', { class: 'muted' }, 'none');
  return el('ul', {}, ...items.map(render));
}

async function explain(ev) {
  ev.preventDefault();
  const out = $('explain-result');
  const seed = $('explain-seed').value.trim();
  if (seed && !/^\d+$/.test(seed)) { out.replaceChildren(el('p', { class: 'error' }, 'The seed is a whole number.')); return; }
  out.replaceChildren(el('p', { class: 'muted' }, 'explaining…'));
  try {
    const resp = await api(`/api/v1/router/explain${seed ? `?seed=${seed}` : ''}`, {
      method: 'POST', headers: { 'Content-Type': 'application/json' }, body: $('explain-body').value,
    });
    if (!resp.ok) { out.replaceChildren(el('p', { class: 'error', 'data-error': 'true' }, await errorMessage(resp))); return; }
    const x = await resp.json();
    const dl = el('dl', {},
      el('dt', {}, 'requirements'), el('dd', { id: 'explain-requirements' }, x.requirements.join(', ')),
      el('dt', {}, 'pick'), el('dd', { id: 'explain-pick', class: x.pick ? 'pick id' : 'error' }, x.pick || (x.error ? x.error.message : 'none')),
      el('dt', {}, 'seed'), el('dd', { class: 'id' }, String(x.seed)),
      el('dt', {}, `candidates (${x.candidates.length})`), el('dd', { id: 'explain-candidates' }, list(x.candidates, (c) => el('li', { class: 'id', 'data-model': c }, c))),
      el('dt', {}, `rejected (${x.rejected.length})`), el('dd', {}, x.rejected.length
        ? el('ul', { id: 'explain-rejected' }, ...x.rejected.map((r) => el('li', { 'data-model': r.id }, el('span', { class: 'id' }, r.id), ': ', r.reasons.join('; '))))
        : el('span', { class: 'muted', id: 'explain-rejected' }, 'none')),
      el('dt', {}, 'cooling'), el('dd', {}, list(x.cooling, (c) => el('li', {}, el('span', { class: 'id' }, c.id), `: ${c.cause}${c.until ? ` until ${c.until}` : ''}`))),
      el('dt', {}, 'not free'), el('dd', {}, `${x.not_free} models (paid, expired or router models) left out`));
    out.replaceChildren(dl);
  } catch (e) {
    out.replaceChildren(el('p', { class: 'error' }, `cannot explain: ${e.message}`));
  }
}

// ---------- start ----------

function start() {
  $('explain-body').value = JSON.stringify(TOOLS_EXAMPLE, null, 2);
  $('explain-tools').addEventListener('click', () => { $('explain-body').value = JSON.stringify(TOOLS_EXAMPLE, null, 2); });
  $('explain-vision').addEventListener('click', () => { $('explain-body').value = JSON.stringify(VISION_EXAMPLE, null, 2); });
  $('explain-form').addEventListener('submit', explain);
  for (const id of ['f-text', 'f-vision', 'f-tools', 'f-structured', 'f-reasoning', 'f-state']) {
    $(id).addEventListener('input', () => status && renderPool());
  }
  $('pool-filters').addEventListener('submit', (e) => e.preventDefault());
  $('key-button').addEventListener('click', () => { waitingForKey = false; askKey(); });
  $('key-form').addEventListener('submit', () => {
    const key = $('key-input').value.trim();
    if (!key) return;
    sessionStorage.setItem(KEY_STORE, key);
    $('key-input').value = '';
    waitingForKey = false;
    const waiters = keyWaiters;
    keyWaiters = [];
    waiters.forEach((r) => r());
    refreshStatus();
  });
  refreshStatus();
  setInterval(refreshStatus, STATUS_EVERY_MS);
  setInterval(tickCountdowns, 1000);
  followEvents();
}

document.addEventListener('DOMContentLoaded', start);
