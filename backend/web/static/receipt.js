// The receipt desk: scans from a keyboard-wedge scanner (the scan field keeps the focus) or the camera,
// the expected items ticked off from the server's answer, then the signed accept or quarantine.
"use strict";

(() => {
  const desk = document.getElementById("desk");
  const shipmentId = desk.dataset.shipment;
  const site = desk.dataset.site;
  const input = document.getElementById("scan-input");
  const result = document.getElementById("scan-result");
  const video = document.getElementById("camera");
  const toggle = document.getElementById("camera-toggle");
  const camera = new Celltrail.Camera(video);
  const recent = new Map(); // text -> time: one label held in view is one scan

  function say(text, kind) {
    result.textContent = text;
    result.className = `scan-result ${kind}`;
  }

  // Scanners type fast and end with Enter into whatever has the focus: keep it in the scan field, so a
  // scan never lands in a checkbox or presses a button. Only the fields a person types in keep it.
  function keepFocus() {
    const active = document.activeElement;
    if (active && active !== input && active.matches("input[type=password], textarea, select")) return;
    input.focus();
  }
  document.addEventListener("click", () => setTimeout(keepFocus, 0));
  setInterval(keepFocus, 1000);

  async function record(text, kind) {
    const isShipment = kind ? kind === "shipment" : /SHP-\d{4}-\d{6}/.test(text);
    const codes = isShipment ? [text] : [shipmentId, text];
    say(`Recording ${text}…`, "pending");
    const answer = await Celltrail.api("POST", "/api/v1/scans", {
      idempotency_key: Celltrail.uuid(), action: "receive", site, codes,
      device_time: new Date().toISOString(),
    });
    if (answer.ok) {
      say(`✔ ${answer.data.message}`, "ok");
    } else {
      say(`✖ ${Celltrail.problemText(answer)}`, "bad");
    }
    await refresh();
  }

  async function refresh() {
    const view = await Celltrail.api("GET", `/api/v1/shipments/${shipmentId}/receipt`);
    if (!view.ok) return;
    const scanned = new Set(view.data.scanned);
    const arrived = ["arrived", "received", "quarantined"].includes(view.data.shipment.status);
    for (const li of document.querySelectorAll("#items li")) {
      const item = li.dataset.item;
      li.classList.toggle("done", item === shipmentId ? arrived : scanned.has(item));
    }
    const status = document.getElementById("shipment-status");
    status.textContent = view.data.shipment.status.replace("_", " ");
    status.className = `badge status-${view.data.shipment.status}`;
  }

  document.getElementById("scan-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const text = input.value.trim();
    input.value = "";
    if (text) record(text, null);
  });

  toggle.addEventListener("click", async () => {
    if (camera.running) {
      camera.stop();
      video.hidden = true;
      toggle.textContent = "Use camera";
      return;
    }
    try {
      await camera.start();
    } catch (e) {
      say(`The camera could not be opened: ${e.message}`, "bad");
      return;
    }
    video.hidden = false;
    toggle.textContent = "Stop camera";
    camera.loop((codes) => {
      for (const code of codes) {
        if (code.problem) { say(`✖ ${code.text}: ${code.problem}`, "bad"); continue; }
        const last = recent.get(code.text) || 0;
        if (Date.now() - last < 5000) continue;
        recent.set(code.text, Date.now());
        record(code.text, code.kind);
      }
    }, () => say("Offline: the camera needs the server to read labels here. Use the USB scanner or wait.", "bad"));
  });

  const decision = document.getElementById("decision");
  if (decision) {
    decision.addEventListener("submit", async (event) => {
      event.preventDefault();
      const choice = event.submitter ? event.submitter.value : "accept";
      const checklist = {};
      for (const box of decision.querySelectorAll("input[type=checkbox]")) checklist[box.name] = box.checked;
      const body = {
        decision: choice, checklist,
        password: decision.elements.password.value,
        comment: decision.elements.comment.value.trim() || null,
      };
      const error = document.getElementById("decision-error");
      const answer = await Celltrail.api("POST", `/api/v1/shipments/${shipmentId}/receipt`, body);
      decision.elements.password.value = "";
      if (!answer.ok) {
        error.textContent = Celltrail.problemText(answer);
        error.hidden = false;
        return;
      }
      error.hidden = true;
      Celltrail.banner(`Signed: ${choice === "accept" ? "received and verified" : "quarantined"} (event #${answer.data.seq}).`, "ok");
      decision.querySelectorAll("button").forEach((b) => { b.disabled = true; });
      await refresh();
    });
  }
})();
