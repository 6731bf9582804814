/* Lock board: the browser side. Plain script, no build step; the page's CSP allows only this file. */
/* global document, window, location, history, URL, CSS, EventSource, fetch, setTimeout, clearTimeout, setInterval, clearInterval */
'use strict';

const MAX_EVENTS = 500;
// Where the board is served: its API sits beside this script, whether the page's URL ends with a slash or not.
const BASE = new URL('.', document.currentScript.src);
const $ = id => document.getElementById(id);

const board = {
  filter: '', csrf: '', prefix: '', forceUnlock: false, locks: [], stats: {},
  skewMs: 0, // server clock minus ours, so "held for" does not drift with a wrong local clock
  lastEventId: 0, // the newest event shown: a snapshot repeats older ones
  source: null, failingSince: 0, fallbackTimer: 0, retryTimer: 0, pollTimer: 0,
  generation: 0, // bumped on every filter change: answers for an older filter are dropped
  target: null, // { key, holder } the dialog is about
};

// ---------- formatting ----------

const pad = (n, w = 2) => String(n).padStart(w, '0');

/** "850 ms", "12.3 s", "4 min 05 s", "2 h 07 min". */
function duration(ms) {
  if (ms < 0 || !Number.isFinite(ms)) ms = 0;
  if (ms < 1000) return `${Math.round(ms)} ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(1)} s`;
  const s = Math.floor(ms / 1000);
  if (s < 3600) return `${Math.floor(s / 60)} min ${pad(s % 60)} s`;
  return `${Math.floor(s / 3600)} h ${pad(Math.floor(s / 60) % 60)} min`;
}

function clock(iso) {
  const d = new Date(iso);
  return `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}.${pad(d.getMilliseconds(), 3)}`;
}

// another etcd client's key has no times: the epoch stands for unknown
const since = iso => (Date.parse(iso) === 0 ? '?' : duration(Date.now() + board.skewMs - Date.parse(iso)));

/** createElement with classes and text children; never HTML, since names and owners are untrusted. */
function el(tag, className, ...children) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  for (const c of children) if (c !== null && c !== undefined) node.append(c);
  return node;
}

/** A span whose text is "<prefix><time since iso>", refreshed every second by tick(). */
function ticking(prefix, iso) {
  const span = el('span', 'since', prefix + since(iso));
  span.dataset.since = iso;
  span.dataset.prefix = prefix;
  return span;
}

function tick() {
  for (const s of document.querySelectorAll('[data-since]')) s.textContent = s.dataset.prefix + since(s.dataset.since);
}

// ---------- status, alert, URLs ----------

function setStatus(text) {
  const status = $('status');
  if (status.textContent !== text) status.textContent = text; // rewriting the same text would be re-announced
  status.className = `status status-${text.replace(/\W.*/, '')}`;
}

function announce(text) {
  const alert = $('alert');
  alert.textContent = '';
  // A fresh text node a tick later, so the same message twice is still read out.
  setTimeout(() => { alert.textContent = text; }, 50);
}

function apiUrl(path) {
  const url = new URL(path, BASE); // drops the page's ?query and #hash
  if (board.filter) url.searchParams.set('key', board.filter);
  return url;
}

function filterFromHash() {
  const m = /(?:^#|&)key=([^&]*)/.exec(location.hash);
  if (!m) return '';
  try { return decodeURIComponent(m[1]); } catch { return m[1]; }
}

function filterToHash(glob) {
  // Keep ":" and "*" readable in a shared link: "#key=order:*".
  const hash = `#key=${encodeURIComponent(glob).replace(/%3A/gi, ':')}`;
  history.replaceState(null, '', glob ? hash : location.pathname + location.search);
}

// ---------- locks ----------

function renderMeta(s) {
  $('store').textContent = s.store;
  $('prefix').textContent = s.prefix;
  $('user').textContent = s.user || 'anonymous';
  $('readonly-note').hidden = !!s.forceUnlock;
  $('window').textContent = `Figures cover the last ${s.windowMinutes} minutes.`;
  Object.assign(board, { csrf: s.csrf, prefix: s.prefix, forceUnlock: !!s.forceUnlock });
}

function kindText(lock) {
  if (lock.kind === 'semaphore') return `semaphore, ${lock.holders.length} of ${lock.limit} held`;
  if (lock.kind === 'shared') return 'shared (read/write)';
  return lock.kind;
}

const where = o => el('span', 'detail', `${o.host} · pid ${o.pid} · token ${o.token}`);

function holderItem(lock, h) {
  const li = el('li', 'holder', el('span', 'owner', h.owner), where(h));
  li.dataset.holderToken = h.token;
  const ttl = h.ttlRemaining < 0 ? 'lease gone' : `TTL ${h.ttlRemaining} s`;
  const mode = lock.kind === 'shared' ? `${h.mode} · ` : '';
  li.append(el('span', 'detail', mode, ticking('held for ', h.acquiredAt), ` · ${ttl}`));
  if (board.forceUnlock) {
    const b = el('button', 'danger-outline', 'Force unlock');
    b.type = 'button';
    b.dataset.forceUnlock = lock.key;
    b.dataset.token = h.token;
    b.setAttribute('aria-label', `Force unlock ${lock.key}, held by ${h.owner}, token ${h.token}`);
    b.addEventListener('click', () => openDialog(lock, h));
    li.append(b);
  }
  return li;
}

function waitersList(waiters) {
  if (!waiters.length) return el('p', 'muted', 'Nobody waiting');
  const ol = el('ol', 'waiters');
  for (const w of waiters) {
    const li = el('li', 'waiter', el('span', 'owner', w.owner), w.unfair ? el('span', 'tag', 'unfair') : null,
      where(w), el('span', 'detail', ticking('waiting for ', w.queuedAt)));
    li.dataset.waiterToken = w.token;
    ol.append(li);
  }
  return ol;
}

function figures(st) {
  if (!st) return el('p', 'muted', 'No activity in the window');
  const pair = p => (p ? `${duration(p.p50)} / ${duration(p.max)}` : '—');
  const dl = el('dl', 'figures');
  const rows = [['Acquired', st.acquired], ['Wait p50 / max', pair(st.waitMs)], ['Hold p50 / max', pair(st.holdMs)],
    ['Expired', st.expired], ['Forced', st.forced]];
  if (st.lost) rows.push(['Lost', st.lost]);
  for (const [k, v] of rows) dl.append(el('div', null, el('dt', null, k), el('dd', null, String(v))));
  return dl;
}

function cell(label, ...children) {
  const td = el('td', null, ...children);
  td.dataset.label = label; // shown as a heading in the phone-width card layout
  return td;
}

function renderLocks() {
  const box = $('locks');
  // Re-rendering replaces the buttons: remember which one had the keyboard focus.
  const focused = document.activeElement?.closest?.('#locks [data-force-unlock]');
  const refocus = focused && `[data-force-unlock="${CSS.escape(focused.dataset.forceUnlock)}"][data-token="${CSS.escape(focused.dataset.token)}"]`;

  // locks free now that were busy in the window: their figures are what an operator looks back at
  const held = new Set(board.locks.map(l => l.key));
  const free = Object.keys(board.stats).filter(key => !held.has(key)).sort();
  if (!board.locks.length && !free.length) {
    box.replaceChildren(el('p', 'empty', `No lock is held under ${board.prefix}`
      + (board.filter ? ` matching ${board.filter}` : '')));
    return;
  }
  const head = el('tr');
  for (const h of ['Lock', 'Holders', 'Waiting, in queue order', 'Figures']) {
    const th = el('th', null, h);
    th.scope = 'col';
    head.append(th);
  }
  const body = el('tbody');
  for (const lock of board.locks) {
    const name = el('th', 'lock-name', el('span', 'key', lock.key), el('span', 'kind', kindText(lock)));
    name.scope = 'row';
    const holders = el('ul', 'holders');
    for (const h of lock.holders) holders.append(holderItem(lock, h));
    const row = el('tr', null, name, cell('Holders', holders), cell('Waiting', waitersList(lock.waiters)),
      cell('Figures', figures(board.stats[lock.key])));
    row.dataset.lock = lock.key;
    body.append(row);
  }
  for (const key of free) {
    const name = el('th', 'lock-name', el('span', 'key', key), el('span', 'kind', 'free now'));
    name.scope = 'row';
    const row = el('tr', 'free', name, cell('Holders', el('p', 'muted', 'Nobody')), cell('Waiting', el('p', 'muted', 'Nobody waiting')),
      cell('Figures', figures(board.stats[key])));
    row.dataset.freeLock = key;
    body.append(row);
  }
  const table = el('table', 'locks', el('caption', 'visually-hidden', 'Locks held, their holders and waiters, then locks free now that were busy in the window'),
    el('thead', null, head), body);
  box.replaceChildren(table);
  if (refocus) box.querySelector(refocus)?.focus();
}

function applyState(s) {
  board.skewMs = Date.parse(s.at) - Date.now();
  board.locks = s.locks || [];
  board.stats = s.stats || {};
  $('updated').textContent = `as of ${clock(s.at)}`;
  renderLocks();
}

// ---------- timeline ----------

function addEvent(e) {
  const parts = [el('time', null, clock(e.at)), el('span', `badge badge-${e.type}`, e.type),
    el('span', 'key', e.key), el('span', 'owner', e.owner), el('span', 'detail', `token ${e.token}`)];
  if (e.waitedMs !== undefined) parts.push(el('span', 'detail', `waited ${duration(e.waitedMs)}`));
  if (e.heldMs !== undefined) parts.push(el('span', 'detail', `held ${duration(e.heldMs)}`));
  if (e.reason) parts.push(el('span', 'detail', e.reason));
  parts[0].dateTime = e.at;
  const li = el('li', null, ...parts);
  Object.assign(li.dataset, { eventType: e.type, key: e.key, token: e.token });
  const list = $('timeline');
  list.prepend(li);
  while (list.children.length > MAX_EVENTS) list.lastElementChild.remove();
  $('timeline-empty').hidden = true;
  board.lastEventId = Math.max(board.lastEventId, e.id);
}

function clearTimeline() {
  $('timeline').replaceChildren();
  $('timeline-empty').hidden = false;
  board.lastEventId = 0;
}

/** A snapshot repeats recent events: add only those we have not shown yet. */
function mergeEvents(events = []) {
  const newest = events.length ? events[events.length - 1].id : Infinity;
  if (newest < board.lastEventId) clearTimeline(); // ids went back: the server restarted
  for (const e of events) if (e.id > board.lastEventId) addEvent(e);
}

function applySnapshot(s) {
  renderMeta(s);
  mergeEvents(s.events);
  applyState(s);
}

// ---------- live updates: SSE, with polling when it stays down ----------

function openStream() {
  board.source?.close();
  clearTimeout(board.retryTimer);
  const es = new EventSource(apiUrl('api/events'));
  board.source = es;
  const on = (type, fn) => es.addEventListener(type, m => { if (board.source === es) fn(JSON.parse(m.data)); });
  on('snapshot', s => { streamUp(); applySnapshot(s); });
  on('event', addEvent);
  on('state', applyState);
  es.addEventListener('error', () => {
    if (board.source !== es) return;
    if (!board.failingSince) {
      board.failingSince = Date.now();
      board.fallbackTimer = setTimeout(startPolling, 5000);
    }
    if (!board.pollTimer) setStatus('reconnecting…');
    // After an HTTP error answer EventSource gives up for good: open a new one ourselves.
    if (es.readyState === EventSource.CLOSED) board.retryTimer = setTimeout(openStream, 5000);
  });
}

function streamUp() {
  board.failingSince = 0;
  clearTimeout(board.fallbackTimer);
  stopPolling();
  setStatus('live');
}

function startPolling() {
  if (board.pollTimer || !board.failingSince) return;
  setStatus('polling');
  poll();
  board.pollTimer = setInterval(poll, 2000);
}

function stopPolling() {
  clearInterval(board.pollTimer);
  board.pollTimer = 0;
}

async function poll() {
  const generation = board.generation;
  try {
    const res = await fetch(apiUrl('api/snapshot'), { cache: 'no-store', headers: { accept: 'application/json' } });
    if (!res.ok) throw new Error(`HTTP ${res.status}`);
    const s = await res.json();
    if (generation === board.generation && board.pollTimer) applySnapshot(s);
  } catch {
    $('updated').textContent = 'server unreachable';
  }
}

function setFilter(glob) {
  glob = glob.trim();
  if (glob === board.filter && board.source) return;
  board.filter = glob;
  board.generation++;
  filterToHash(glob);
  clearTimeline();
  board.failingSince = 0;
  clearTimeout(board.fallbackTimer);
  stopPolling();
  openStream();
}

// ---------- force unlock ----------

function openDialog(lock, holder) {
  board.target = { key: lock.key, holder };
  $('force-unlock-key').textContent = lock.key;
  $('force-unlock-text').textContent = `${holder.owner} (pid ${holder.pid} on ${holder.host}, token ${holder.token}) `
    + `holds ${lock.key}. If you force unlock it, that holder loses the lock (its signal aborts) and the next in the queue, if any, gets it.`;
  $('confirm-key').value = '';
  $('force-unlock-error').textContent = '';
  $('confirm-force-unlock').disabled = true;
  $('force-unlock-dialog').showModal();
  $('confirm-key').focus();
}

async function confirmForceUnlock(ev) {
  ev.preventDefault(); // the CSP forbids form submission; we POST with fetch
  const { key, holder } = board.target || {};
  const typed = $('confirm-key').value;
  const button = $('confirm-force-unlock');
  if (!key || typed !== key || button.disabled) return;
  button.disabled = true;
  $('force-unlock-error').textContent = '';
  try {
    const res = await fetch(new URL('api/force-unlock', BASE), {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-csrf-token': board.csrf },
      body: JSON.stringify({ key, token: holder.token, confirm: typed }),
    });
    const body = await res.json().catch(() => ({}));
    if (!res.ok) throw new Error(body.message || `The server answered ${res.status} ${res.statusText}`.trim());
    $('force-unlock-dialog').close();
    announce(`Unlocked ${key}`);
  } catch (err) {
    $('force-unlock-error').textContent = err instanceof TypeError ? `Could not reach the server: ${err.message}` : err.message;
    button.disabled = $('confirm-key').value !== key;
  }
}

function dialogClosed() {
  // The opener was probably re-rendered meanwhile: give focus back to its replacement.
  const t = board.target;
  board.target = null;
  const sel = t && `[data-force-unlock="${CSS.escape(t.key)}"][data-token="${CSS.escape(t.holder.token)}"]`;
  (sel && $('locks').querySelector(sel))?.focus();
}

// ---------- start ----------

function start() {
  const input = $('filter');
  let debounce = 0;
  input.addEventListener('input', () => {
    clearTimeout(debounce);
    debounce = setTimeout(() => setFilter(input.value), 300);
  });
  input.addEventListener('keydown', e => {
    if (e.key === 'Enter') { clearTimeout(debounce); setFilter(input.value); }
  });
  window.addEventListener('hashchange', () => {
    input.value = filterFromHash();
    setFilter(input.value);
  });

  $('confirm-key').addEventListener('input', e => {
    $('confirm-force-unlock').disabled = !board.target || e.target.value !== board.target.key;
  });
  $('force-unlock-form').addEventListener('submit', confirmForceUnlock);
  $('cancel-force-unlock').addEventListener('click', () => $('force-unlock-dialog').close());
  $('force-unlock-dialog').addEventListener('close', dialogClosed);

  input.value = filterFromHash();
  board.filter = input.value.trim();
  openStream();
  setInterval(tick, 1000);
}

start();
