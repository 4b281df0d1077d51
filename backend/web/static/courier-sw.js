// The courier page's service worker: the page and its scripts come from the network when there is one
// (always the current code and a fresh sign-in token) and from the phone's cache when there is not, so
// a courier who reloads the page offline gets the page, with the scans it keeps in IndexedDB. API calls
// are never cached: the page queues what it cannot send.
"use strict";

const CACHE = "celltrail-courier-v1";
const SHELL = ["/courier", "/static/app.css", "/static/common.js", "/static/courier.js"];

async function keep(cache, request, response) {
  // A page answered by a redirect (to sign in) is not the courier page: never keep it in its place.
  if (response.ok && !response.redirected && response.type === "basic") await cache.put(request, response.clone());
  return response;
}

self.addEventListener("install", (event) => {
  event.waitUntil((async () => {
    const cache = await caches.open(CACHE);
    await Promise.all(SHELL.map(async (path) => {
      try {
        await keep(cache, new Request(path, { credentials: "same-origin" }), await fetch(path, { credentials: "same-origin" }));
      } catch (e) { /* kept on the next visit */ }
    }));
    await self.skipWaiting();
  })());
});

self.addEventListener("activate", (event) => {
  event.waitUntil((async () => {
    for (const name of await caches.keys()) if (name !== CACHE) await caches.delete(name);
    await self.clients.claim();
  })());
});

self.addEventListener("fetch", (event) => {
  const request = event.request;
  const url = new URL(request.url);
  if (request.method !== "GET" || url.origin !== self.location.origin) return;
  if (url.pathname !== "/courier" && !url.pathname.startsWith("/static/")) return;
  event.respondWith((async () => {
    const cache = await caches.open(CACHE);
    try {
      return await keep(cache, request, await fetch(request));
    } catch (e) {
      const kept = await cache.match(request, { ignoreSearch: true });
      if (kept) return kept;
      throw e;
    }
  })());
});
