// The alerts inbox: acknowledge with a comment, close with a reason, and new alerts arriving live.
"use strict";

(() => {
  const state = document.getElementById("live-state");

  // Delegated from the document: a live reload replaces the inbox element itself.
  document.addEventListener("submit", async (event) => {
    const form = event.target;
    if (!form.closest("#inbox")) return;
    event.preventDefault();
    const item = form.closest("li");
    const error = item.querySelector(".form-error");
    const text = form.querySelector("input[name=text]").value.trim();
    const button = form.querySelector("button");
    button.disabled = true;
    try {
      const result = await Celltrail.api("POST", form.dataset.action, { [form.dataset.field]: text });
      if (!result.ok) {
        error.textContent = Celltrail.problemText(result);
        error.hidden = false;
        return;
      }
      error.hidden = true;
      Celltrail.banner(`Alert ${result.data.id} ${result.data.status}.`, "ok");
      await reload(true);
    } finally {
      button.disabled = false;
    }
  });

  // Replace the inbox with the server's, unless someone is typing in it: then say there is news.
  async function reload(force) {
    const typing = [...document.querySelectorAll("#inbox input")].some((i) => i.value.trim() !== "") && !force;
    if (typing) {
      Celltrail.banner("New alert activity: finish what you are typing, then reload.", "info");
      return;
    }
    const response = await fetch(location.pathname, { credentials: "same-origin" });
    if (response.status === 401) return Celltrail.sessionEnded();
    const page = new DOMParser().parseFromString(await response.text(), "text/html");
    for (const section of ["#inbox", "table.simple tbody"]) {
      const fresh = page.querySelector(section);
      const here = document.querySelector(section);
      if (fresh && here) here.replaceWith(fresh);
    }
    const heading = page.querySelector("section.card h2");
    if (heading) document.querySelector("section.card h2").textContent = heading.textContent;
  }

  const source = Celltrail.stream();
  source.addEventListener("open", () => { state.dataset.state = "live"; state.textContent = "Live"; });
  source.addEventListener("error", () => { state.dataset.state = "reconnecting"; state.textContent = "Reconnecting…"; });
  source.addEventListener("alert", () => reload(false));
})();
