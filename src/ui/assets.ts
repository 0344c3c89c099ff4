/**
 * The files of the UI's single-page app: the HTML shell, `static/` (plain ES modules and CSS, no build step) and
 * the two browser libraries it imports, Preact and htm, served from their npm packages.
 *
 * Everything is read into memory once, at start; only these files can be served (there is no path to traverse).
 * @module
 */
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { readFile, readdir } from 'node:fs/promises';
import { extname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** One file ready to be served. */
export interface Asset {
  readonly body: Buffer;
  readonly type: string;
  readonly etag: string;
}

const TYPES: Readonly<Record<string, string>> = {
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.html': 'text/html; charset=utf-8',
};

/** Browser modules from npm packages, by the name the import map gives them. */
const VENDOR: Readonly<Record<string, string>> = {
  'preact.mjs': 'preact',
  'preact-hooks.mjs': 'preact/hooks',
  'htm.mjs': 'htm',
};

const IMPORT_MAP = JSON.stringify({
  imports: { preact: '/vendor/preact.mjs', 'preact/hooks': '/vendor/preact-hooks.mjs', htm: '/vendor/htm.mjs' },
});

/**
 * Where `static/` is: next to this module when it runs from `src/`, and in `src/ui/static` of the package when it
 * runs compiled from `dist/` (the package ships both, and `tsc` does not copy non-TypeScript files).
 */
function staticDir(): string {
  const here = fileURLToPath(new URL('./static/', import.meta.url));
  if (existsSync(here)) return here;
  return fileURLToPath(new URL('../../src/ui/static/', import.meta.url));
}

function asset(body: Buffer, type: string): Asset {
  return { body, type, etag: `"${createHash('sha256').update(body).digest('base64url').slice(0, 27)}"` };
}

/** The UI's files, and the Content-Security-Policy that lets exactly them run. */
export class Assets {
  private constructor(
    readonly files: ReadonlyMap<string, Asset>,
    readonly shell: Asset,
    readonly contentSecurityPolicy: string,
  ) {}

  /** Reads every file of the UI. */
  static async load(): Promise<Assets> {
    const files = new Map<string, Asset>();
    const dir = staticDir();
    for (const entry of await readdir(dir, { withFileTypes: true })) {
      const type = TYPES[extname(entry.name)];
      if (entry.isFile() && type !== undefined)
        files.set(`/static/${entry.name}`, asset(await readFile(join(dir, entry.name)), type));
    }
    for (const [name, specifier] of Object.entries(VENDOR)) {
      const path = fileURLToPath(import.meta.resolve(specifier));
      files.set(`/vendor/${name}`, asset(await readFile(path), TYPES['.mjs'] as string));
    }
    const version = (files.get('/static/app.js')?.etag ?? '').replace(/"/g, '').slice(0, 10);
    const shell = asset(
      Buffer.from(
        [
          '<!doctype html>',
          '<html lang="en">',
          '<head>',
          '<meta charset="utf-8">',
          '<meta name="viewport" content="width=device-width, initial-scale=1">',
          '<title>flyte</title>',
          '<link rel="icon" href="/static/favicon.svg" type="image/svg+xml">',
          `<link rel="stylesheet" href="/static/style.css?v=${version}">`,
          `<script type="importmap">${IMPORT_MAP}</script>`,
          `<script type="module" src="/static/app.js?v=${version}"></script>`,
          '</head>',
          '<body><div id="app"></div></body>',
          '</html>',
          '',
        ].join('\n'),
      ),
      TYPES['.html'] as string,
    );
    const mapHash = createHash('sha256').update(IMPORT_MAP).digest('base64');
    const csp = [
      "default-src 'none'",
      `script-src 'self' 'sha256-${mapHash}'`,
      "style-src 'self'",
      "img-src 'self' data:",
      "connect-src 'self'",
      "base-uri 'none'",
      "form-action 'none'",
      "frame-ancestors 'none'",
    ].join('; ');
    return new Assets(files, shell, csp);
  }
}
