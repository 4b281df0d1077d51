// Capacity, blackout days and apheresis slots: the forms of the planning pages, through the JSON API.
"use strict";

(() => {
  const C = Celltrail;

  async function send(method, path, body, done) {
    const result = await C.api(method, path, body);
    if (!result.ok) {
      C.banner(C.problemText(result), "error");
      return;
    }
    C.banner(done, "ok");
    setTimeout(() => location.reload(), 600);
  }

  const caps = document.getElementById("capacity-forms");
  if (caps) {
    const site = caps.dataset.site;
    const product = document.getElementById("cap-product");
    product.addEventListener("change", () => {
      const option = product.selectedOptions[0];
      if (option.dataset.runs) document.getElementById("cap-runs").value = option.dataset.runs;
      if (option.dataset.suites) document.getElementById("cap-suites").value = option.dataset.suites;
    });
    document.getElementById("capacity-form").addEventListener("submit", (event) => {
      event.preventDefault();
      const form = event.target;
      const suites = form.suites.value.split(",").map((s) => s.trim()).filter(Boolean);
      send("PUT", `/api/v1/sites/${site}/capacity/${encodeURIComponent(product.value)}`,
        { runs_per_day: Number(form.runs_per_day.value), suites }, "Capacity saved.");
    });
    const blackout = document.getElementById("blackout-form");
    blackout.addEventListener("submit", (event) => {
      event.preventDefault();
      send("POST", `/api/v1/sites/${site}/blackouts`,
        { day: blackout.day.value, reason: blackout.reason.value || "blackout" }, "Blackout day added.");
    });
    document.getElementById("blackout-remove").addEventListener("click", () => {
      if (!blackout.day.value) { C.banner("Choose the day to open again.", "error"); return; }
      send("DELETE", `/api/v1/sites/${site}/blackouts/${blackout.day.value}`, undefined, "Blackout day removed.");
    });
  }

  const slots = document.getElementById("slots-forms");
  if (slots) {
    const site = slots.dataset.site;
    document.getElementById("slots-form").addEventListener("submit", (event) => {
      event.preventDefault();
      const form = event.target;
      const first = new Date(`${form.day.value}T00:00:00Z`);
      const wanted = [];
      for (let i = 0; i < Number(form.count.value); i += 1) {
        const day = new Date(first.getTime() + i * 86400000).toISOString().slice(0, 10);
        // No offset: the API reads it as the collection site's local time.
        wanted.push({ starts_at: `${day}T${form.time.value}:00`, minutes: Number(form.minutes.value) });
      }
      send("POST", `/api/v1/sites/${site}/slots`, { slots: wanted }, `${wanted.length} slot(s) added.`);
    });
  }
})();

// Treatment orders: the manufacturing site's signed decision.
(() => {
  const C = Celltrail;
  document.querySelectorAll("form.order-decision").forEach((form) => {
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      const choice = event.submitter ? event.submitter.value : "accept";
      const result = await C.api("POST", `/api/v1/cases/${form.dataset.coi}/order/decision`, {
        decision: choice, password: form.elements.password.value, reason: form.elements.reason.value || null,
      });
      if (!result.ok) { C.banner(C.problemText(result), "error"); return; }
      C.banner(choice === "accept" ? "Order accepted and signed." : "Order declined and signed.", "ok");
      setTimeout(() => location.reload(), 600);
    });
  });
})();
