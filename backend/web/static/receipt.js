// The receipt desk: scans from a keyboard-wedge scanner or the camera, the expected items ticked off from
// the server's answer, then the signed accept or quarantine.
//
// Focus: the page never takes it from a control the person moved to, so the checklist, the comment,
// the password and both buttons can be reached and used with the keyboard alone. It goes back to the
// scan field only after a scan or on Escape. A wedge scanner types into whatever has the focus: when
// that is a checkbox or a button, the typed characters (from the first one on) are taken into the scan
// field instead, so a scan right after a click loses nothing and never ticks a box.
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

  // Fields a person types in keep their keys; everything else passes printable keys to the scan field.
  const typing = (el) => el && (el.matches("textarea, select, input:not([type=checkbox]):not([type=radio]):not([type=button]):not([type=submit])"));

  document.addEventListener("keydown", (event) => {
    if (event.key === "Escape") {
      input.focus();
      return;
    }
    const active = document.activeElement;
    if (active === input || typing(active)) return;
    if (event.ctrlKey || event.metaKey || event.altKey || event.key.length !== 1 || event.key === " ") return;
    event.preventDefault();
    input.focus();
    input.value += event.key;
  }, true);

  async function record(text, kind) {
    const isShipment = kind ? kind === "shipment" : /SHP-\d{4}-\d{6}/.test(text);
    const codes = isShipment ? [text] : [shipmentId, text];
    say(`Recording ${text}…`, "pending");
    let answer;
    try {
      answer = await Celltrail.api("POST", "/api/v1/scans", {
        idempotency_key: Celltrail.uuid(), action: "receive", site, codes,
        device_time: new Date().toISOString(),
      });
    } catch (e) {
      say("✖ The server cannot be reached: the scan was not recorded. Scan it again when the connection is back.", "bad");
      return;
    }
    if (answer.ok) {
      say(`✔ ${Celltrail.words(answer.data.message)}`, "ok");
    } else {
      say(`✖ ${Celltrail.problemText(answer)}`, "bad");
    }
    await refresh();
  }

  async function refresh() {
    let view;
    try {
      view = await Celltrail.api("GET", `/api/v1/shipments/${shipmentId}/receipt`);
    } catch (e) {
      return;
    }
    if (!view.ok) return;
    const scanned = new Set(view.data.scanned);
    const arrived = ["arrived", "received", "quarantined"].includes(view.data.shipment.status);
    for (const li of document.querySelectorAll("#items li")) {
      const item = li.dataset.item;
      li.classList.toggle("done", item === shipmentId ? arrived : scanned.has(item));
    }
    const status = document.getElementById("shipment-status");
    status.textContent = Celltrail.words(view.data.shipment.status);
    status.className = `badge status-${view.data.shipment.status}`;
  }

  // The decision section as the server renders it now: after signing, who decided what and when, with
  // no live buttons and no error left over from an earlier try.
  async function reloadDecision() {
    const response = await fetch(location.pathname, { credentials: "same-origin" });
    if (!response.ok) return;
    const page = new DOMParser().parseFromString(await response.text(), "text/html");
    const fresh = page.getElementById("decision-section");
    const here = document.getElementById("decision-section");
    if (fresh && here) here.replaceWith(fresh);
  }

  document.getElementById("scan-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const text = input.value.trim();
    input.value = "";
    input.focus();
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
        if (code.problem) { say(`✖ ${code.text}: ${Celltrail.words(code.problem)}`, "bad"); continue; }
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
      const buttons = decision.querySelectorAll("button");
      buttons.forEach((b) => { b.disabled = true; });
      let answer;
      try {
        answer = await Celltrail.api("POST", `/api/v1/shipments/${shipmentId}/receipt`, body);
      } catch (e) {
        answer = { ok: false, status: 0, data: null };
      }
      decision.elements.password.value = "";
      if (!answer.ok) {
        buttons.forEach((b) => { b.disabled = false; });
        error.textContent = Celltrail.problemText(answer);
        error.hidden = false;
        decision.elements.password.focus();
        return;
      }
      error.hidden = true;
      Celltrail.banner(`Signed: ${choice === "accept" ? "received and verified" : "quarantined"} (event #${answer.data.seq}).`, "ok");
      await refresh();
      await reloadDecision();
      document.getElementById("decision-heading")?.setAttribute("tabindex", "-1");
      document.getElementById("decision-heading")?.focus();
    });
  }
})();
