// What a player page records, for run.mjs to read: every resource the page fetched (Resource
// Timing: the names are full URLs, cross-origin too), playback stalls, and the player's own
// error events. No code here talks to livesteer: the player is given its master URL and
// left alone.
//
// Times are Unix milliseconds (performance.timeOrigin + the entry's time), so that the test
// can line them up with what it did to the edges.
(() => {
  // A stall: after playback started, currentTime did not move for longer than this while the
  // video was not paused. The whole still interval counts.
  const STALL_MS = 500;
  const SAMPLE_MS = 100;
  const origin = performance.timeOrigin;
  const rec = {
    player: null,
    startedAt: Date.now(),
    playingAt: null,
    resources: [],
    stalls: [],
    errors: [],
    samples: 0,
  };
  window.__rec = rec;
  performance.setResourceTimingBufferSize(1e6);
  const take = (list) => {
    for (const e of list) {
      rec.resources.push({
        url: e.name,
        type: e.initiatorType,
        start: Math.round(origin + e.startTime),
        end: Math.round(origin + e.responseEnd),
        status: e.responseStatus || 0,
        bytes: e.encodedBodySize || 0,
      });
    }
  };
  new PerformanceObserver((l) => take(l.getEntries())).observe({ type: 'resource', buffered: true });

  rec.error = (source, what) => {
    let message;
    try {
      message = typeof what === 'string' ? what : JSON.stringify(what);
    } catch (e) {
      message = String(what);
    }
    rec.errors.push({ at: Date.now(), source, message: String(message).slice(0, 2000) });
  };
  window.addEventListener('error', (e) => rec.error('window', e.message));
  window.addEventListener('unhandledrejection', (e) => rec.error('promise', String(e.reason)));

  // Watches a <video>: stalls as [start, end] (end null while still stalled).
  rec.watch = (video, player) => {
    rec.player = player;
    let last = null;
    let lastMove = null;
    let stall = null;
    for (const ev of ['error', 'stalled', 'waiting', 'emptied']) {
      video.addEventListener(ev, () => {
        if (ev === 'error') rec.error('video', video.error ? video.error.message || video.error.code : 'error');
      });
    }
    setInterval(() => {
      rec.samples++;
      const now = Date.now();
      const t = video.currentTime;
      if (last !== null && t !== last) {
        if (rec.playingAt === null) rec.playingAt = now;
        lastMove = now;
        if (stall) {
          stall[1] = now;
          stall = null;
        }
      } else if (rec.playingAt !== null) {
        if (video.paused) {
          lastMove = now;
        } else if (!stall && now - lastMove > STALL_MS) {
          stall = [lastMove, null];
          rec.stalls.push(stall);
        }
      }
      last = t;
    }, SAMPLE_MS);
  };

  // What run.mjs reads.
  rec.snapshot = () => ({
    player: rec.player,
    startedAt: rec.startedAt,
    playingAt: rec.playingAt,
    resources: rec.resources,
    stalls: rec.stalls.map(([a, b]) => [a, b === null ? Date.now() : b]),
    errors: rec.errors,
    samples: rec.samples,
  });
})();
