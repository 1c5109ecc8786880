// Screenshots of the Debug Toolbar's "Response cache" panel on a miss and on the
// following hit, for the README's profiling section. Against `make run`:
//   npm install --prefix /tmp/shot playwright-core@1   (Debian's chromium at /usr/bin/chromium)
//   NODE_PATH=/tmp/shot/node_modules node scripts/panel_screenshots.mjs [base URL] [query]
// The page is the browsable API (HTML, where the toolbar lives); the JSON GETs are
// the page's own fetch() calls, which the toolbar follows (UPDATE_ON_FETCH).
import { createRequire } from "node:module";
const require = createRequire(import.meta.url);
const { chromium } = require("playwright-core");

const base = process.argv[2] || "http://127.0.0.1:8000";
const query = process.argv[3] || `?city=Berlin&ordering=-rate&per_page=${10 + (Date.now() % 40)}`;
const browser = await chromium.launch({
  executablePath: "/usr/bin/chromium",
  args: ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--disable-sync"],
});
const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
await page.goto(`${base}/api/v1/categories/?format=api`);
await page.click("#djShowToolBarButton");

async function shot(name) {
  const status = await page.evaluate(async (url) => {
    const r = await fetch(url, { headers: { Accept: "application/json" } });
    return r.headers.get("X-Cache");
  }, `/api/v1/jobs/${query}`);
  await page.waitForTimeout(800); // the toolbar reloads itself for the fetch
  await page.click("#djdt-ResponseCachePanel a, .djdt-ResponseCachePanel a, a.ResponseCachePanel");
  await page.waitForSelector("#ResponseCachePanel .djdt-scroll, #ResponseCachePanel table");
  await page.waitForTimeout(300);
  await page.screenshot({ path: `docs/img/cache-panel-${name}.png` });
  console.log(`${name}: X-Cache ${status}`);
  await page.click("#ResponseCachePanel .djDebugClose");
}
await shot("miss");
await shot("hit");
await browser.close();
