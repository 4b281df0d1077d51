// The live board: any change on the stream (a scan, a reading's alert, a hand-over) refreshes the rows
// from the server, so the board never shows a state the server would not.
"use strict";

(() => {
  const rows = document.getElementById("board-rows");
  const state = document.getElementById("live-state");
  let pending = null;

  function show(name, text) {
    state.dataset.state = name;
    state.textContent = text;
  }

  async function refresh() {
    pending = null;
    const response = await fetch(`${rows.dataset.source}${location.search}`, { credentials: "same-origin" });
    if (response.status === 401) return Celltrail.sessionEnded();
    if (!response.ok) return;
    const before = new Map([...rows.querySelectorAll("tr[data-shipment]")].map((r) => [r.dataset.shipment, r.outerHTML]));
    rows.innerHTML = await response.text();
    for (const row of rows.querySelectorAll("tr[data-shipment]")) {
      if (before.get(row.dataset.shipment) !== row.outerHTML) row.classList.add("changed");
    }
    show("live", `Live · updated ${new Date().toLocaleTimeString()}`);
  }

  function soon() {
    if (!pending) pending = setTimeout(refresh, 250);
  }

  const source = new EventSource("/api/v1/stream");
  source.addEventListener("open", () => show("live", "Live"));
  source.addEventListener("error", () => show("reconnecting", "Reconnecting to live updates…"));
  source.onmessage = soon;
  for (const kind of ["event", "alert", "shipment", "case", "unit"]) {
    source.addEventListener(kind, soon);
  }
  // Readings are not announced one by one; ages ("4 min ago"), ETAs and temperatures move anyway.
  setInterval(soon, 30000);
})();
