// scroll.js: keep ui.scroll_position in the session state, and restore it.
//
// The position is saved 500 ms after scrolling stops, and only when it moved
// more than 20 px from the stored value. Restoring (after a connect, a resync or
// a reload) never fights a user who is scrolling right now.

export function createScrollSync({ save, stored, delay = 500, threshold = 20, settle = 1500 }) {
  let timer = null;
  let ignoreUntil = 0;
  let userScrolledAt = -Infinity;

  function onScroll() {
    if (performance.now() < ignoreUntil) return; // our own scrollTo
    userScrolledAt = performance.now();
    clearTimeout(timer);
    timer = setTimeout(flush, delay);
  }

  function flush() {
    const y = Math.max(0, Math.round(window.scrollY));
    const before = stored();
    if (before === undefined ? y > threshold : Math.abs(y - before) > threshold) save(y);
  }

  window.addEventListener('scroll', onScroll, { passive: true });

  return {
    // Scroll to y (or to `fallback`, an element, when y is unknown). Returns
    // false when the user is busy scrolling and was left alone.
    restore(y, fallback) {
      if (performance.now() - userScrolledAt < settle) return false;
      requestAnimationFrame(() => {
        ignoreUntil = performance.now() + 400;
        if (typeof y === 'number' && Number.isFinite(y)) {
          window.scrollTo({ top: Math.max(0, y), behavior: 'instant' });
        } else if (fallback) {
          fallback.scrollIntoView({ block: 'nearest', behavior: 'instant' });
        }
      });
      return true;
    },
  };
}
