/**
 * The app's addresses: `/` (the run list, its filters in the query) and `/runs/NAME` (a run, `?action=` the
 * selected action, `?view=logs` its run-wide logs instead of its tree). Links change the address with the
 * History API; nothing reloads.
 */
/* global location, history, window, URLSearchParams */
import { useEffect, useState } from 'preact/hooks';
import { html } from './html.js';

const listeners = new Set();

function current() {
  return { path: location.pathname, search: new URLSearchParams(location.search) };
}

/** Goes to `href` (same origin); `replace` keeps the history entry. */
export function navigate(href, { replace = false } = {}) {
  if (replace) history.replaceState(null, '', href);
  else history.pushState(null, '', href);
  for (const l of listeners) l(current());
  if (!replace) window.scrollTo(0, 0);
}

/** The current address, re-rendering on every change. */
export function useRoute() {
  const [route, setRoute] = useState(current);
  useEffect(() => {
    const onPop = () => setRoute(current());
    listeners.add(setRoute);
    window.addEventListener('popstate', onPop);
    return () => {
      listeners.delete(setRoute);
      window.removeEventListener('popstate', onPop);
    };
  }, []);
  return route;
}

/** A link inside the app: a real `<a href>` (open in a new tab works) that navigates without a reload. */
export function Link({ href, class: className, children, title, ...rest }) {
  const onClick = (e) => {
    if (e.defaultPrevented || e.button !== 0 || e.metaKey || e.ctrlKey || e.shiftKey || e.altKey) return;
    e.preventDefault();
    navigate(href);
  };
  return html`<a href=${href} class=${className} title=${title} onClick=${onClick} ...${rest}>${children}</a>`;
}

/** The page address of a run. */
export function runHref(name, action) {
  const base = `/runs/${encodeURIComponent(name)}`;
  return action === undefined ? base : `${base}?action=${encodeURIComponent(action)}`;
}
