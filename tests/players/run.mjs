#!/usr/bin/env node
// Plays one live URL in stock players (hls.js, Shaka Player, Video.js/VHS for HLS; dash.js and
// Shaka for DASH) in Debian's Chromium, each on its own page served from this script's own
// origin (a loopback port of its own, so never livesteer's), and prints what each player did as
// JSON.
//
//   node run.mjs --src URL [--players hlsjs,shaka,vhs,dashjs] [--seconds 30] [--cmcd URL]
//   node run.mjs --config config.json     # {"src": URL, "players": [...], "max_seconds": N, "cmcd": URL}
//
// `--src` may be given once per player instead, as `--src hlsjs=URL`. With `--cmcd URL` each
// page configures its player's own CMCD v2 event reporting to that collector (the README's
// configuration); every report the player POSTs there is recorded with the collector's answer.
// The pages' origin also serves `/utc` (the time, ISO 8601), dash.js's clock source.
//
// Output: one JSON object per line on stdout. `started` (the pages' origin), `playing` once a
// player's currentTime first moves, `ready` when every player is playing, and last `result`:
// per player, every resource its page fetched (Resource Timing, Unix ms), its stalls, its
// errors and console messages, the requests that failed, and every steering request with
// livesteer's answer. The run ends after --seconds, or when a line `stop` arrives on stdin
// (tests/browser/players.rs drives it that way), or when stdin closes in that mode.
//
// Chromium is Debian's /usr/bin/chromium (never a downloaded build), with host names resolving
// nowhere but 127.0.0.1.

import { createServer } from 'node:http';
import { readFile } from 'node:fs/promises';
import { readFileSync } from 'node:fs';
import { dirname, extname, join, normalize } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createInterface } from 'node:readline';
import { chromium } from 'playwright-core';

const here = dirname(fileURLToPath(import.meta.url));
const PLAYERS = { hlsjs: 'hlsjs.html', shaka: 'shaka.html', vhs: 'vhs.html', dashjs: 'dashjs.html' };
// The libraries pages may load from node_modules.
const LIBS = new Set(['hls.js', 'shaka-player', 'video.js', 'dashjs']);
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
const ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--autoplay-policy=no-user-gesture-required',
  // No page resolves an outside host. The edges live on loopback addresses of their own
  // (127.0.0.2, 127.0.0.3), as CDNs have hosts of their own; they are excluded too.
  '--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1, EXCLUDE 127.0.0.2, EXCLUDE 127.0.0.3',
];

function parseArgs(argv) {
  const o = { players: ['hlsjs', 'shaka', 'vhs'], seconds: null, src: null, srcs: {}, cmcd: null, control: 'time' };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const next = () => {
      if (i + 1 >= argv.length) throw new Error(`${a} needs a value`);
      return argv[++i];
    };
    if (a === '--src') {
      const v = next();
      const per = v.match(/^([a-z]+)=(.+)$/);
      if (per && PLAYERS[per[1]]) o.srcs[per[1]] = per[2];
      else o.src = v;
    } else if (a === '--cmcd') o.cmcd = next();
    else if (a === '--players') o.players = next().split(',').filter(Boolean);
    else if (a === '--seconds') o.seconds = Number(next());
    else if (a === '--config') {
      const c = JSON.parse(readFileSync(next(), 'utf8'));
      if (c.src) o.src = c.src;
      if (c.players) o.players = c.players;
      if (c.max_seconds) o.seconds = c.max_seconds;
      if (c.cmcd) o.cmcd = c.cmcd;
      if (c.srcs) o.srcs = c.srcs;
      o.control = 'stdin';
    } else if (a === '--stdin') o.control = 'stdin';
    else if (a === '--help' || a === '-h') {
      console.error('usage: node run.mjs --src [PLAYER=]URL [--players hlsjs,shaka,vhs,dashjs] [--seconds N] [--cmcd URL] [--stdin]');
      process.exit(0);
    } else throw new Error(`unknown argument ${a}`);
  }
  for (const p of o.players) {
    if (!PLAYERS[p]) throw new Error(`unknown player ${p}`);
    if (!o.srcs[p] && !o.src) throw new Error(`no --src for ${p} (or a config with "src")`);
  }
  if (o.seconds === null) o.seconds = o.control === 'stdin' ? 600 : 30;
  return o;
}

const TYPES = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.map': 'application/json',
};

// The pages and the player libraries, on 127.0.0.1 at a port of its own.
function serve() {
  const server = createServer(async (req, res) => {
    const path = decodeURIComponent(new URL(req.url, 'http://x').pathname);
    let file = null;
    const lib = path.match(/^\/lib\/([^/]+)\/(.+)$/);
    if (lib && LIBS.has(lib[1])) {
      const rel = normalize(lib[2]);
      if (!rel.startsWith('..')) file = join(here, 'node_modules', lib[1], rel);
    } else if (path === '/utc') {
      res.writeHead(200, { 'content-type': 'text/plain', 'cache-control': 'no-store', 'access-control-allow-origin': '*' });
      return res.end(new Date().toISOString());
    } else if (path === '/favicon.ico') {
      res.writeHead(204);
      return res.end();
    } else if (/^\/[a-z]+\.(html|js)$/.test(path)) {
      file = join(here, 'pages', path.slice(1));
    }
    try {
      if (!file) throw new Error('not found');
      const body = await readFile(file);
      res.writeHead(200, {
        'content-type': TYPES[extname(file)] || 'application/octet-stream',
        'cache-control': 'no-store',
      });
      res.end(body);
    } catch {
      res.writeHead(404, { 'content-type': 'text/plain' });
      res.end('not found\n');
    }
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(server)));
}

const out = (obj) => process.stdout.write(JSON.stringify(obj) + '\n');
const T0 = Date.now();
const log = (...a) => process.stderr.write(`[players +${((Date.now() - T0) / 1000).toFixed(1)}s] ${a.join(" ")}\n`);

async function main() {
  const opts = parseArgs(process.argv.slice(2));
  const server = await serve();
  const pageOrigin = `http://127.0.0.1:${server.address().port}`;
  const browser = await chromium.launch({ executablePath: CHROMIUM, args: ARGS, headless: true });
  out({ event: 'started', page_origin: pageOrigin, browser: browser.version(), src: opts.src, srcs: opts.srcs });
  log(`chromium ${browser.version()}, pages on ${pageOrigin}`);

  const open = async (id) => {
    const context = await browser.newContext();
    const page = await context.newPage();
    const run = { id, context, page, failed: [], steering: [], cmcd: [], console: [], playingAt: null };
    context.on('requestfailed', (r) =>
      run.failed.push({ at: Date.now(), url: r.url(), error: r.failure() ? r.failure().errorText : '' }),
    );
    context.on('response', async (r) => {
      if (opts.cmcd && r.url().startsWith(opts.cmcd) && r.request().method() === 'POST') {
        // A CMCD event report: its lines as the player wrote them, and the collector's answer.
        const body = r.request().postData() || '';
        run.cmcd.push({
          at: Date.now(),
          status: r.status(),
          lines: body.split('\n').filter((l) => l.trim() !== ''),
          taken: (await r.allHeaders())['livesteer-cmcd'] || null,
        });
        return;
      }
      if (!r.url().includes('/v1/steering/')) return;
      const entry = { at: Date.now(), url: r.url(), status: r.status(), body: null };
      run.steering.push(entry);
      try {
        entry.body = await r.text();
      } catch (e) {
        entry.body = `(unreadable: ${e.message})`;
      }
    });
    page.on('console', (m) => {
      if (m.type() === 'error' || m.type() === 'warning')
        run.console.push({ at: Date.now(), type: m.type(), text: m.text().slice(0, 2000) });
    });
    page.on('pageerror', (e) => run.console.push({ at: Date.now(), type: 'pageerror', text: String(e).slice(0, 2000) }));
    return run;
  };
  const runs = await Promise.all(opts.players.map(open));
  log('pages open');
  const t0 = Date.now();
  await Promise.all(
    runs.map((r) => {
      const q = new URLSearchParams({ src: opts.srcs[r.id] || opts.src });
      if (opts.cmcd) q.set('cmcd', opts.cmcd);
      return r.page.goto(`${pageOrigin}/${PLAYERS[r.id]}?${q}`);
    }),
  );

  let stopping = false;
  let stop;
  const stopped = new Promise((resolve) => (stop = resolve));
  const finish = (why) => {
    if (!stopping) {
      stopping = true;
      log(`stopping: ${why}`);
      stop();
    }
  };
  if (opts.control === 'stdin') {
    const rl = createInterface({ input: process.stdin });
    rl.on('line', (l) => l.trim() === 'stop' && finish('stop on stdin'));
    rl.on('close', () => finish('stdin closed'));
  }
  const deadline = setTimeout(() => finish(`${opts.seconds} s elapsed`), opts.seconds * 1000);

  let ready = false;
  let polling = false;
  const poll = setInterval(async () => {
    if (polling) return;
    polling = true;
    for (const r of runs) {
      if (r.playingAt !== null) continue;
      try {
        const at = await r.page.evaluate(() => window.__rec && window.__rec.playingAt);
        if (at) {
          r.playingAt = at;
          out({ event: 'playing', player: r.id, at, after_ms: at - t0 });
          log(`${r.id} playing after ${at - t0} ms`);
        }
      } catch {
        // The page is navigating or gone; the result will say.
      }
    }
    if (!ready && runs.every((r) => r.playingAt !== null)) {
      ready = true;
      out({ event: 'ready', at: Date.now() });
    }
    polling = false;
  }, 250);

  await stopped;
  clearInterval(poll);
  clearTimeout(deadline);
  const players = [];
  for (const r of runs) {
    let snap = null;
    try {
      snap = await r.page.evaluate(() => window.__rec.snapshot());
    } catch (e) {
      snap = { error: `no snapshot: ${e.message}` };
    }
    players.push({
      id: r.id,
      ...snap,
      console: r.console,
      failed: r.failed,
      steering: r.steering,
      cmcd: r.cmcd,
      ended_at: Date.now(),
    });
  }
  out({ event: 'result', page_origin: pageOrigin, browser: browser.version(), src: opts.src, players });
  log('results taken');
  await browser.close();
  log('browser closed');
  server.closeAllConnections();
  server.close();
  process.exit(0);
}

main().catch((e) => {
  log(`failed: ${e.stack || e}`);
  out({ event: 'error', message: String(e.message || e) });
  process.exit(1);
});
