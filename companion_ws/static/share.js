// share.js: the "Add a device" panel: a one-time join code as a QR and a link.
//
//   GET  /sessions/{id}/qr.svg     -> a QR of a fresh join URL, which the hub also
//                                     names in X-Join-Url / X-Join-Expires-At
//   POST /sessions/{id}/join-token -> {join_token, join_url, expires_at}, the
//                                     fallback when the QR response names no URL
// Both need `Authorization: Bearer <token>`, so the SVG is fetched here and shown
// through a blob: URL (an <img> cannot send the header, and a blob in an <img>
// cannot run scripts). Taking the link from the QR response keeps the two the same
// one-time code.

import { errorReason, formatCountdown, formatTime, parseTime } from './format.js';

const AUTO_REFRESHES = 12; // expired codes renewed on their own, then a click is needed

// An owner's screen shows a code at once. A screen that joined by QR shows only a
// button: it may try, and the panel goes away if the hub says no (403).
// An SVG drawn for inline HTML (segno's svg_inline) has no xmlns and maybe no
// viewBox; as an image file it needs the first, and the second to scale.
export function normalizeSvg(text) {
  const open = text.match(/<svg\b[^>]*>/);
  if (!open) return text;
  let tag = open[0];
  if (!/\sxmlns=/.test(tag)) tag = tag.replace('<svg', '<svg xmlns="http://www.w3.org/2000/svg"');
  if (!/\sviewBox=/.test(tag)) {
    const w = tag.match(/\swidth="([\d.]+)(?:px)?"/);
    const h = tag.match(/\sheight="([\d.]+)(?:px)?"/);
    if (w && h) tag = tag.replace('<svg', `<svg viewBox="0 0 ${w[1]} ${h[1]}"`);
  }
  return text.replace(open[0], tag);
}

export function createDevicePanel(els, { getToken, getSessionId, isOwner, onCopy, onRefused }) {
  let expiresAt = NaN;
  let blobUrl = null;
  let ticker = null;
  let loading = false;
  let autoLeft = AUTO_REFRESHES;
  let generation = 0;
  let enabled = true;

  els.newCode.addEventListener('click', () => {
    autoLeft = AUTO_REFRESHES;
    refresh({ asked: true });
  });
  els.copy.addEventListener('click', () => onCopy(els.link.href, 'Join link copied'));

  function setError(message) {
    els.error.hidden = !message;
    els.error.textContent = message || '';
  }

  function hide() {
    els.card.hidden = true;
    enabled = false;
    clearInterval(ticker);
  }

  // Show the panel in its resting state: a code for owners, a button otherwise.
  function offer() {
    if (!enabled) return;
    els.card.hidden = false;
    if (!isOwner() && !hasCode()) {
      els.body.hidden = true;
      els.intro.textContent = 'Open this session on another phone or computer too.';
      els.newCode.textContent = 'Show a QR code';
    }
  }

  function hasCode() {
    return Number.isFinite(expiresAt) || !els.link.hidden;
  }

  async function refresh({ asked = false } = {}) {
    const sessionId = getSessionId();
    const token = getToken();
    if (!enabled || !sessionId || !token || loading) return;
    if (!isOwner() && !asked && !hasCode()) {
      offer();
      return;
    }
    loading = true;
    const gen = ++generation;
    els.card.hidden = false;
    els.body.hidden = false;
    els.newCode.disabled = true;
    els.newCode.textContent = 'Making a code…';
    setError('');
    try {
      const base = `/sessions/${encodeURIComponent(sessionId)}`;
      const auth = { Authorization: `Bearer ${token}` };
      const refused = (status) => status === 403 || (status === 401 && !isOwner());
      let svg = null;
      let link = null;
      let expires = NaN;

      const qr = await fetch(`${base}/qr.svg`, { headers: auth });
      if (gen !== generation) return;
      if (refused(qr.status)) {
        hide(); // this screen may not invite others
        onRefused?.();
        return;
      }
      if (qr.ok) {
        svg = await qr.text();
        link = qr.headers.get('X-Join-Url');
        expires = parseTime(qr.headers.get('X-Join-Expires-At'));
      }
      if (!link) {
        const res = await fetch(`${base}/join-token`, {
          method: 'POST',
          headers: { ...auth, Accept: 'application/json' },
        });
        if (gen !== generation) return;
        if (refused(res.status)) {
          hide();
          onRefused?.();
          return;
        }
        if (!res.ok) throw new Error(await errorReason(res));
        const body = await res.json();
        link = body.join_url;
        expires = parseTime(body.expires_at);
        const again = await fetch(`${base}/qr.svg?join_token=${encodeURIComponent(body.join_token)}`, { headers: auth });
        svg = again.ok ? await again.text() : null;
        if (gen !== generation) return;
      }
      els.intro.textContent = 'Scan with a phone camera to open this session there. Each code works once.';
      showLink(link);
      expiresAt = expires;
      tick();
      clearInterval(ticker);
      ticker = setInterval(tick, 1000);
      showQr(svg);
    } catch (err) {
      if (gen !== generation) return;
      if (isOwner() || asked) {
        setError(`Could not make a code: ${err.message}`);
      } else {
        hide();
      }
    } finally {
      if (gen === generation) {
        loading = false;
        els.newCode.disabled = false;
        els.newCode.textContent = hasCode() || isOwner() ? 'New code' : 'Show a QR code';
      }
    }
  }

  function showLink(url) {
    const href = new URL(url, location.href).href;
    els.link.href = href;
    els.link.textContent = href;
    els.link.title = href;
    els.link.hidden = false;
    els.copy.hidden = false;
  }

  function showQr(text) {
    const svg = text ? normalizeSvg(text) : null;
    els.placeholder.hidden = true;
    if (blobUrl) URL.revokeObjectURL(blobUrl);
    blobUrl = null;
    if (!svg) {
      els.qr.hidden = true;
      els.qr.removeAttribute('src');
      setError('The QR code is not available right now; share the link instead.');
      return;
    }
    blobUrl = URL.createObjectURL(new Blob([svg], { type: 'image/svg+xml' }));
    els.qr.src = blobUrl;
    els.qr.hidden = false;
  }

  function tick() {
    if (!Number.isFinite(expiresAt)) {
      els.expiry.textContent = '';
      return;
    }
    const left = formatCountdown(expiresAt);
    const expired = left === 'expired';
    els.frame.classList.toggle('is-expired', expired);
    els.expired.hidden = !expired;
    els.link.classList.toggle('is-expired', expired);
    els.expiry.textContent = expired
      ? 'This code has expired.'
      : `Expires at ${formatTime(expiresAt, { seconds: false })} (${left}).`;
    if (expired) {
      clearInterval(ticker);
      if (autoLeft > 0 && document.visibilityState === 'visible') {
        autoLeft -= 1;
        refresh();
      }
    }
  }

  function reset() {
    generation += 1;
    loading = false;
    enabled = true;
    expiresAt = NaN;
    autoLeft = AUTO_REFRESHES;
    clearInterval(ticker);
    if (blobUrl) URL.revokeObjectURL(blobUrl);
    blobUrl = null;
    els.card.hidden = true;
    els.qr.hidden = true;
    els.qr.removeAttribute('src');
    els.link.hidden = true;
    els.copy.hidden = true;
    els.expiry.textContent = '';
    els.expired.hidden = true;
    els.frame.classList.remove('is-expired');
    els.newCode.disabled = false;
    els.newCode.textContent = 'New code';
    setError('');
  }

  return {
    refresh,
    hide,
    reset,
    // True when the panel has nothing to show yet and may still be offered.
    idle: () => enabled && !loading && !hasCode(),
    // Called when the connection state changes: a code is only useful while live.
    setLive(live) {
      els.newCode.disabled = !live || loading;
    },
  };
}
