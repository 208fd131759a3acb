// Live updates (issue 23 item 2): one server-sent event stream per page (GET /api/v1/events). Ban, unban, jail and
// fail2ban events make the view on screen refresh in place (views redraw only what changed, so focus and scroll
// stay); while the stream is down the page polls every POLL_MS instead, and catches up when it is back.
import { apiPath, state } from './core.js';

const POLL_MS = 5000;
const SETTLE_MS = 120; // a burst of events (an unban of 500 addresses) becomes one refresh
let source = null, timer = null, settle = null;
export const live = { open: false };

function refreshSoon() {
  clearTimeout(settle);
  settle = setTimeout(() => state.refreshNow(), SETTLE_MS);
}

function poll() {
  if (timer) return;
  timer = setInterval(() => { if (document.visibilityState === 'visible' && !live.open) state.poll(); }, POLL_MS);
}

export function startLive() {
  stopLive();
  poll();
  if (typeof EventSource !== 'function') return;
  source = new EventSource(apiPath('events'));
  source.addEventListener('open', () => { live.open = true; refreshSoon(); });
  source.addEventListener('error', () => {
    live.open = false;
    // a closed stream (401 after the session ended, a server that lacks the route) is not retried by the
    // browser: polling goes on, and finds out about the session
    if (source && source.readyState === EventSource.CLOSED) source = null;
  });
  for (const kind of ['ban', 'unban', 'jail', 'fail2ban', 'reset']) {
    source.addEventListener(kind, (ev) => {
      let data = {};
      try { data = JSON.parse(ev.data); } catch (_) { /* keep {} */ }
      window.dispatchEvent(new CustomEvent('bangui:event', { detail: { kind, data } }));
      if (kind === 'fail2ban') state.noteFail2ban(data);
      refreshSoon();
    });
  }
  source.addEventListener('hello', (ev) => {
    try { state.noteFail2ban(JSON.parse(ev.data).fail2ban); } catch (_) { /* the next event says it */ }
  });
  source.addEventListener('end', () => { if (source) source.close(); source = null; live.open = false; setTimeout(() => { if (state.me) startLive(); }, 1000); });
}

export function stopLive() {
  if (source) source.close();
  source = null;
  live.open = false;
  clearInterval(timer);
  timer = null;
}
