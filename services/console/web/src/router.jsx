// A tiny history router: the path lives in `location`, pages read it with `useLocation`, and
// `navigate` pushes a new entry. The console service answers any unknown non-/api path with
// index.html, so deep links and reloads work without a hash.
import { useEffect, useState } from 'preact/hooks';

const listeners = new Set();

function current() {
  return { path: location.pathname, query: new URLSearchParams(location.search) };
}

/** Goes to `to` (path + optional query); `replace` swaps the current history entry instead. */
export function navigate(to, { replace = false } = {}) {
  if (replace) history.replaceState(null, '', to);
  else history.pushState(null, '', to);
  window.scrollTo(0, 0);
  for (const listener of listeners) listener(current());
}

window.addEventListener('popstate', () => {
  for (const listener of listeners) listener(current());
});

/** The current `{path, query}`, re-rendering on navigation. */
export function useLocation() {
  const [loc, setLoc] = useState(current);
  useEffect(() => {
    listeners.add(setLoc);
    return () => listeners.delete(setLoc);
  }, []);
  return loc;
}

/** An in-app link: a real `<a href>` (open in new tab works) that navigates without a reload. */
export function Link({ href, children, ...rest }) {
  const onClick = (event) => {
    // Let the browser handle modified clicks (new tab/window) and non-left buttons.
    if (event.defaultPrevented || event.button !== 0 || event.metaKey || event.ctrlKey || event.shiftKey || event.altKey) return;
    event.preventDefault();
    navigate(href);
  };
  return <a href={href} onClick={onClick} {...rest}>{children}</a>;
}
