#!/usr/bin/env node
// Opens a page `livesteer simulate --report` wrote in Debian's Chromium (headless, through
// playwright-core), measures what its charts drew, saves a full-page screenshot, and prints
// one JSON object on stdout:
//
//   node report.mjs --page FILE.html --screenshot FILE.png
//
// {"charts": [{"id", "class", "width", "height", "shapes", "drawn"}], "requests": [URL...],
//  "errors": [...], "tables": N}
// `shapes` counts the chart's polylines, polygons and rects; `drawn` those with a non-zero
// bounding box. `requests` lists every request the page made other than for itself: a
// self-contained page makes none. Any host but none resolves nowhere.

import { chromium } from 'playwright-core';
import { pathToFileURL } from 'node:url';

const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
const ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--host-resolver-rules=MAP * ~NOTFOUND',
];

function arg(name) {
  const i = process.argv.indexOf(name);
  if (i < 0 || i + 1 >= process.argv.length) throw new Error(`${name} FILE is required`);
  return process.argv[i + 1];
}

const page_file = arg('--page');
const shot = arg('--screenshot');
const url = pathToFileURL(page_file).href;
const browser = await chromium.launch({ executablePath: CHROMIUM, args: ARGS, headless: true });
try {
  const context = await browser.newContext({ viewport: { width: 1000, height: 800 } });
  const page = await context.newPage();
  const requests = [];
  const errors = [];
  page.on('request', (r) => {
    if (r.url() !== url) requests.push(r.url());
  });
  page.on('pageerror', (e) => errors.push(String(e)));
  page.on('console', (m) => {
    if (m.type() === 'error') errors.push(m.text());
  });
  await page.goto(url, { waitUntil: 'load', timeout: 30000 });
  const charts = await page.evaluate(() =>
    [...document.querySelectorAll('svg.chart')].map((svg) => {
      const box = svg.getBoundingClientRect();
      const shapes = [...svg.querySelectorAll('polyline.series, polygon.band, polygon.incident, rect.incident, rect.bar')];
      const drawn = shapes.filter((s) => {
        const b = s.getBBox();
        return b.width > 0 && b.height > 0;
      });
      return {
        id: svg.id || svg.getAttribute('aria-label'),
        class: svg.getAttribute('class'),
        strategy: svg.dataset.strategy || null,
        width: box.width,
        height: box.height,
        shapes: shapes.length,
        drawn: drawn.length,
        kinds: [...new Set(drawn.map((s) => s.getAttribute('class')))],
      };
    }),
  );
  const tables = await page.evaluate(() => document.querySelectorAll('table#summary tr').length);
  await page.screenshot({ path: shot, fullPage: true });
  process.stdout.write(JSON.stringify({ charts, requests, errors, tables }) + '\n');
} finally {
  await browser.close();
}
