/**
 * The flyte web UI: a single-page app over the server's JSON API. Plain ES modules, Preact and htm from the
 * import map; no build step.
 */
/* global document */
import { render } from 'preact';
import { useMemo } from 'preact/hooks';
import { Loader, LoaderContext, useData } from './api.js';
import { html } from './html.js';
import { Link, useRoute } from './router.js';
import { RunPage } from './run-page.js';
import { RunsPage } from './runs-page.js';

function Logo() {
  return html`<svg class="logo" viewBox="0 0 32 32" width="26" height="26" aria-hidden="true">
    <rect width="32" height="32" rx="8" class="logo-bg" />
    <path class="logo-mark" d="M9 23c0-7 4-12 14-14-3 2-5 4-6 7 2-1 4-1 6-1-3 3-8 6-14 8z" />
  </svg>`;
}

function TopBar() {
  const { data } = useData('/api/info');
  return html`<header class="topbar">
    <${Link} class="brand" href="/"><${Logo} /><span>flyte</span></${Link}>
    <nav><${Link} href="/">Runs</${Link}></nav>
    <div class="spacer"></div>
    ${data && html`<span class="store mono" title="run store">${data.store}</span>`}
  </header>`;
}

function App() {
  const route = useRoute();
  const loader = useMemo(() => new Loader(), []);
  const m = /^\/runs\/([^/]+)\/?$/.exec(route.path);
  let page;
  if (m !== null) {
    const name = decodeURIComponent(m[1]);
    page = html`<${RunPage} key=${name} name=${name} search=${route.search} />`;
  } else {
    page = html`<${RunsPage} search=${route.search} />`;
  }
  return html`<${LoaderContext.Provider} value=${loader}>
    <${TopBar} />
    <main>${page}</main>
  </${LoaderContext.Provider}>`;
}

render(html`<${App} />`, document.getElementById('app'));
