// The pharmacy's stock: store (where), dispense and thaw are the ordinary custody scans, sent with the
// bag's unit id at the bag's site; the thaw timer counts from the recorded start of the thaw.
"use strict";

(() => {
  const result = document.getElementById("stock-result");
  // A thawed cell product must be infused within a short time: the timer turns red past this.
  const THAW_WARN_MINUTES = 30;

  function say(text, kind) {
    result.textContent = text;
    result.className = `scan-result ${kind}`;
  }

  document.addEventListener("submit", async (event) => {
    const form = event.target;
    if (!form.classList.contains("step")) return;
    event.preventDefault();
    const body = {
      idempotency_key: Celltrail.uuid(), action: form.dataset.action, site: form.dataset.site,
      codes: [form.dataset.unit], device_time: new Date().toISOString(),
    };
    if (form.elements.storage_location) body.storage_location = form.elements.storage_location.value.trim();
    const button = form.querySelector("button");
    button.disabled = true;
    let answer;
    try {
      answer = await Celltrail.api("POST", "/api/v1/scans", body);
    } catch (e) {
      answer = { ok: false, status: 0, data: null };
    }
    button.disabled = false;
    if (!answer.ok) return say(`✖ ${Celltrail.problemText(answer)}`, "bad");
    say(`✔ ${Celltrail.words(answer.data.message)}`, "ok");
    const response = await fetch(location.pathname, { credentials: "same-origin" });
    if (!response.ok) return;
    const page = new DOMParser().parseFromString(await response.text(), "text/html");
    const sections = page.querySelectorAll("main section.card");
    document.querySelectorAll("main section.card").forEach((here, i) => { if (sections[i]) here.replaceWith(sections[i]); });
    tick();
  });

  function tick() {
    for (const timer of document.querySelectorAll(".timer[data-since]")) {
      const since = new Date(timer.dataset.since);
      if (Number.isNaN(since.getTime())) continue;
      const seconds = Math.max(0, Math.floor((Date.now() - since) / 1000));
      const h = Math.floor(seconds / 3600);
      const m = String(Math.floor((seconds % 3600) / 60)).padStart(2, "0");
      const s = String(seconds % 60).padStart(2, "0");
      timer.textContent = h ? `${h} h ${m} min ${s} s` : `${m} min ${s} s`;
      timer.classList.toggle("long", seconds > THAW_WARN_MINUTES * 60);
    }
  }
  tick();
  setInterval(tick, 1000);
})();
