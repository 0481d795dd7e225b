// Asks for the host's listing the moment the page starts, while its modules
// are still loading: for a big host the listing is the longest wait of the
// page's opening, and this way the two overlap. A plain script (not a
// module), first in the page, so its request goes out before the other
// files take the browser's connections. The host is the one in
// the URL, or else the one the page would choose (the first online host).
// api.js takes the answer (once) instead of asking again.
(function () {
  const params = new URLSearchParams(location.hash.replace(/^#/, ""));
  // A past time or a sign-in link: the page asks for other things first.
  if (params.get("at") || params.get("signin")) return;
  const requests = {};
  // What was asked (for the page's tests): taken ones leave `requests`.
  const asked = [];
  window.procmonEarly = { requests, asked };
  const ask = (path) =>
    asked.push(path) &&
    fetch(path, {
      headers: { Accept: "application/json" },
      cache: "no-cache",
      credentials: "same-origin",
      signal: AbortSignal.timeout(8000),
    }).then((response) => {
      // Parsed as soon as it arrives, not when the page gets to it.
      if (response.ok) {
        response.parsed = response.json();
        response.parsed.catch(() => {});
      }
      return response;
    });
  const listing = (host) => {
    const path = `/api/processes/?host=${encodeURIComponent(host)}`;
    requests[path] = ask(path);
    // Whoever takes it sees any failure; left untaken, it is no error.
    requests[path].catch(() => {});
  };
  const host = params.get("host");
  if (host) {
    listing(host);
    return;
  }
  // The host list is handed on only once the listing of its first online
  // host is asked for: the page, choosing that host from this very list,
  // then finds the listing already on its way.
  requests["/api/hosts/"] = ask("/api/hosts/").then(async (response) => {
    const all = response.ok ? await response.parsed.catch(() => null) : null;
    const first = all?.find((h) => h.online) ?? all?.[0];
    if (first) listing(first.host.id);
    return response;
  });
  requests["/api/hosts/"].catch(() => {});
})();
