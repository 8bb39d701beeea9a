/**
 * Headless Chromium for page tests: Debian's /usr/bin/chromium (or $CHROMIUM) driven by
 * playwright-core, with WebGL in software (SwiftShader through ANGLE) so MapLibre GL draws
 * without a GPU. Only loopback pages and local files are loaded; requests elsewhere are aborted and recorded.
 */
import { existsSync } from 'node:fs';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';

/** The Chromium binary, or undefined when none is installed. */
export const chromiumPath: string | undefined = [
  process.env['CHROMIUM'],
  '/usr/bin/chromium',
  '/usr/bin/chromium-browser',
]
  .filter((p): p is string => !!p)
  .find((p) => existsSync(p));

/** `skip` value for node:test when there is no Chromium. */
export const browserSkip: false | string = chromiumPath
  ? false
  : 'no Chromium (/usr/bin/chromium; apt-get install chromium)';

export interface TestBrowser {
  readonly browser: Browser;
  readonly context: BrowserContext;
  readonly page: Page;
  /** URLs the page tried to load from anywhere but loopback (aborted). */
  readonly offline: string[];
  /** Console errors and uncaught page errors. */
  readonly errors: string[];
  close(): Promise<void>;
}

/** Launches Chromium with one page (viewport `width` x `height`). */
export async function launchBrowser(
  options: { readonly width?: number; readonly height?: number } = {},
): Promise<TestBrowser> {
  if (!chromiumPath) throw new Error(String(browserSkip));
  const browser = await chromium.launch({
    executablePath: chromiumPath,
    headless: true,
    args: [
      '--headless=new',
      '--no-sandbox',
      '--disable-dev-shm-usage',
      '--use-gl=angle',
      '--use-angle=swiftshader',
      '--enable-unsafe-swiftshader',
      '--ignore-gpu-blocklist',
      '--no-first-run',
      '--disable-extensions',
    ],
  });
  const context = await browser.newContext({
    viewport: { width: options.width ?? 1000, height: options.height ?? 700 },
  });
  const offline: string[] = [];
  await context.route('**/*', (route) => {
    const url = new URL(route.request().url());
    if (
      url.protocol === 'data:' ||
      url.protocol === 'blob:' ||
      url.protocol === 'file:' ||
      ['127.0.0.1', 'localhost', '[::1]'].includes(url.hostname)
    )
      return route.continue();
    offline.push(url.href);
    return route.abort();
  });
  const page = await context.newPage();
  const errors: string[] = [];
  page.on('console', (m) => {
    if (m.type() === 'error') errors.push(m.text());
  });
  page.on('pageerror', (e) => errors.push(String(e)));
  return {
    browser,
    context,
    page,
    offline,
    errors,
    close: async () => {
      await context.close().catch(() => undefined);
      await browser.close();
    },
  };
}
