// The live board: any change on the stream (a scan, a reading's alert, a hand-over) refreshes the rows
// from the server, so the board never shows a state the server would not. Only rows whose content
// changed are replaced and flagged; a row whose only change is its age ("4 min ago") is updated quietly.
"use strict";

(() => {
  const rows = document.getElementById("board-rows");
  const state = document.getElementById("live-state");
  let pending = null;

  function show(name, text) {
    state.dataset.state = name;
    state.textContent = text;
  }

  // What a row says, without its ages and without the flag this script adds.
  function signature(row) {
    const copy = row.cloneNode(true);
    copy.classList.remove("changed");
    copy.querySelectorAll("time").forEach((t) => { t.textContent = ""; });
    return copy.outerHTML;
  }

  async function refresh() {
    pending = null;
    let response;
    try {
      response = await fetch(`${rows.dataset.source}${location.search}`, { credentials: "same-origin" });
    } catch (e) {
      return show("reconnecting", "Reconnecting to live updates…");
    }
    if (response.status === 401) return Celltrail.sessionEnded();
    if (!response.ok) return;
    const fresh = document.createElement("tbody");
    fresh.innerHTML = await response.text();
    const before = new Map([...rows.querySelectorAll("tr[data-shipment]")].map((r) => [r.dataset.shipment, r]));
    const next = [];
    for (const row of [...fresh.children]) {
      const old = row.dataset.shipment ? before.get(row.dataset.shipment) : null;
      if (old && signature(old) === signature(row)) {
        if (old.innerHTML !== row.innerHTML) {
          // Ages moved: take the new text, keep the node (and any flag still fading).
          old.querySelectorAll("time").forEach((t, i) => { t.textContent = row.querySelectorAll("time")[i]?.textContent || ""; });
        }
        next.push(old);
      } else {
        if (old || before.size) row.classList.add("changed");
        next.push(row);
      }
    }
    // Replace only when the set or order changed, or a row did: focus and scroll stay where they are.
    const current = [...rows.children];
    if (current.length !== next.length || current.some((r, i) => r !== next[i])) rows.replaceChildren(...next);
    show("live", `Live · updated ${Celltrail.time(new Date())}`);
  }

  function soon() {
    if (!pending) pending = setTimeout(refresh, 250);
  }

  const source = Celltrail.stream();
  source.addEventListener("open", () => show("live", "Live"));
  source.addEventListener("error", () => show("reconnecting", "Reconnecting to live updates…"));
  source.onmessage = soon;
  for (const kind of ["event", "alert", "shipment", "case", "unit"]) {
    source.addEventListener(kind, soon);
  }
  // Readings are not announced one by one; ages ("4 min ago"), ETAs and temperatures move anyway.
  setInterval(soon, 30000);
})();
