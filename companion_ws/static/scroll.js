// scroll.js: keep ui.scroll_position in the session state, and restore it.
//
// The position is saved 500 ms after the user stops scrolling, and only when it moved
// more than 20 px from the stored value. This tab also keeps its own position
// (sessionStorage), which a reload prefers: ui.scroll_position is shared by every
// screen, and a phone's own place beats the laptop's. Restoring (after a connect, a
// resync or a reload) never fights a user who is scrolling right now, and never
// leaves a card's title under the sticky header.

const TAB_KEY = 'companion.page-scroll';
const INPUT_WINDOW = 1000; // ms after the user's input in which a scroll is theirs
export const TITLES = '.card-head h2, .card .block-title';

export function createScrollSync({
  save, stored, sessionId = () => null, header = null, delay = 500, threshold = 20, settle = 1500,
}) {
  let timer = null;
  let ignoreUntil = 0;
  let userScrolledAt = -Infinity;
  let inputAt = -Infinity;

  // Only the user's scrolling is saved. The page also moves under them by itself: the
  // browser's scroll anchoring keeps the view in place when something above it changes
  // size (another screen joining redraws the presence list), and that fires a scroll
  // event as well. A scroll counts as the user's when it follows their input (a wheel,
  // a touch, a key, a press on the scrollbar), or continues one (a fling's momentum).
  const input = () => { inputAt = performance.now(); };
  for (const type of ['wheel', 'touchstart', 'touchmove', 'keydown', 'pointerdown']) {
    window.addEventListener(type, input, { passive: true, capture: true });
  }

  function onScroll() {
    const now = performance.now();
    if (now < ignoreUntil) return; // our own scrollTo
    if (timer === null && now - inputAt > INPUT_WINDOW) return; // the layout moved it
    userScrolledAt = now;
    clearTimeout(timer);
    timer = setTimeout(flush, delay);
  }

  function keepTab() {
    const y = Math.max(0, Math.round(window.scrollY));
    const sid = sessionId();
    if (sid) {
      try {
        sessionStorage.setItem(TAB_KEY, JSON.stringify({ session_id: sid, y }));
      } catch {
        /* storage disabled */
      }
    }
    return y;
  }

  function flush() {
    timer = null;
    const y = keepTab();
    const before = stored();
    if (before === undefined ? y > threshold : Math.abs(y - before) > threshold) save(y);
  }

  function tabPosition() {
    try {
      const saved = JSON.parse(sessionStorage.getItem(TAB_KEY) || 'null');
      return saved && saved.session_id === sessionId() && Number.isFinite(saved.y) ? saved.y : undefined;
    } catch {
      return undefined;
    }
  }

  // How far down the sticky header reaches, in viewport pixels.
  function headerBottom() {
    return header ? Math.max(0, header.getBoundingClientRect().bottom) : 0;
  }

  // A title (a card's, or a block's inside it) behind the translucent header is brought
  // down into view: a restored position shows that title whole, never beneath it.
  // Bringing one down may put the title above it (a card's, over its first block's)
  // behind the header in turn, hence the few rounds.
  function revealTitle() {
    const top = headerBottom();
    for (let round = 0; round < 4; round += 1) {
      const hidden = [...document.querySelectorAll(TITLES)].find((title) => {
        const r = title.getBoundingClientRect();
        return r.height > 0 && r.top < top && r.bottom > 0;
      });
      if (!hidden) return;
      window.scrollBy({ top: hidden.getBoundingClientRect().top - top - 10, behavior: 'instant' });
    }
  }

  window.addEventListener('scroll', onScroll, { passive: true });
  // A tab that never scrolled is at the top: a reload keeps it there, rather than
  // jumping to where another screen was.
  window.addEventListener('pagehide', () => {
    if (opened) keepTab();
  });
  let opened = false;

  return {
    // The position a page that just opened goes back to: this tab's own, else the
    // session's.
    opened: () => {
      opened = true;
      return tabPosition() ?? stored();
    },
    // Scroll to y (or to `fallback`, an element, when y is unknown). Returns
    // false when the user is busy scrolling and was left alone.
    restore(y, fallback) {
      if (performance.now() - userScrolledAt < settle) return false;
      requestAnimationFrame(() => {
        ignoreUntil = performance.now() + 400;
        if (typeof y === 'number' && Number.isFinite(y)) {
          window.scrollTo({ top: Math.max(0, y), behavior: 'instant' });
          if (y > 0) revealTitle();
        } else if (fallback) {
          fallback.scrollIntoView({ block: 'nearest', behavior: 'instant' });
        }
      });
      return true;
    },
  };
}
