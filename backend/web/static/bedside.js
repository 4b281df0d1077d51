// Bedside verification: wristband, then bag; a full-screen MATCH or STOP from the codes' case
// identifiers as the server parses them; then two signatures record the infusion (the server checks the
// match again and refuses a mismatch whatever this page says).
"use strict";

(() => {
  const input = document.getElementById("scan-input");
  const video = document.getElementById("camera");
  const toggle = document.getElementById("camera-toggle");
  const verdict = document.getElementById("verdict");
  const signatures = document.getElementById("signatures");
  const camera = new Celltrail.Camera(video);
  let wristband = null;
  let bag = null;

  function step() {
    document.getElementById("step-wristband").className = wristband ? "done" : "current";
    document.getElementById("step-bag").className = bag ? "done" : wristband ? "current" : "";
    document.getElementById("wristband-value").textContent = wristband ? wristband.display : "";
    document.getElementById("bag-value").textContent = bag ? bag.display : "";
  }

  function show(match, detail) {
    verdict.hidden = false;
    verdict.className = `verdict ${match ? "verdict-match" : "verdict-stop"}`;
    document.getElementById("verdict-word").textContent = match ? "MATCH" : "STOP";
    document.getElementById("verdict-detail").textContent = detail;
    verdict.focus();
  }

  function restart() {
    wristband = null;
    bag = null;
    verdict.hidden = true;
    signatures.hidden = true;
    signatures.reset();
    step();
    input.focus();
  }

  async function accept(code) {
    if (code.problem) return show(false, `This code was not accepted: ${code.problem}`);
    if (!wristband) {
      if (code.kind !== "coi") return show(false, "Scan the patient's wristband first, not a bag or box.");
      wristband = code;
    } else if (!bag) {
      if (code.kind !== "unit") return show(false, "Now scan the bag's label.");
      bag = code;
    }
    step();
    if (!bag) return;
    if (bag.coi !== wristband.coi) {
      show(false, `Wristband ${wristband.display} and bag ${bag.display} belong to different patients. Do not infuse.`);
      return;
    }
    const unit = await Celltrail.api("GET", `/api/v1/units/${encodeURIComponent(bag.display)}`);
    if (!unit.ok) return show(false, Celltrail.problemText(unit));
    if (unit.data.status !== "thawed") {
      return show(false, `Bag ${bag.display} is ${unit.data.status}, not thawed: it cannot be infused now.`);
    }
    show(true, `Wristband and bag ${bag.display} belong to the same patient.`);
  }

  async function identify(text) {
    const named = await Celltrail.identify([text]);
    if (!named) return show(false, "The server could not be reached; bedside verification needs it.");
    await accept(named[0]);
  }

  document.getElementById("scan-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const text = input.value.trim();
    input.value = "";
    if (text) identify(text);
  });

  toggle.addEventListener("click", async () => {
    if (camera.running) {
      camera.stop();
      video.hidden = true;
      toggle.textContent = "Use camera";
      return;
    }
    await camera.start();
    video.hidden = false;
    toggle.textContent = "Stop camera";
    let last = "";
    camera.loop((codes) => {
      const code = codes.find((c) => c.key !== last && (c.kind === "coi" || c.kind === "unit"));
      if (code && verdict.hidden) {
        last = code.key;
        accept(code);
      }
    });
  });

  document.getElementById("verdict-continue").addEventListener("click", () => {
    const matched = verdict.classList.contains("verdict-match");
    verdict.hidden = true;
    if (matched) {
      signatures.hidden = false;
      signatures.elements.p1.focus();
    } else {
      restart();
    }
  });
  document.getElementById("restart").addEventListener("click", restart);

  signatures.addEventListener("submit", async (event) => {
    event.preventDefault();
    const f = signatures.elements;
    const error = document.getElementById("sign-error");
    const answer = await Celltrail.api("POST", "/api/v1/scans", {
      idempotency_key: Celltrail.uuid(), action: "infuse", site: document.getElementById("site").value,
      codes: [wristband.text, bag.text], device_time: new Date().toISOString(),
      signatures: [
        { username: f.u1.value.trim(), password: f.p1.value, meaning: "verified at bedside" },
        { username: f.u2.value.trim(), password: f.p2.value, meaning: "administered" },
      ],
    });
    f.p1.value = "";
    f.p2.value = "";
    if (!answer.ok) {
      error.textContent = Celltrail.problemText(answer);
      error.hidden = false;
      return;
    }
    error.hidden = true;
    signatures.hidden = true;
    Celltrail.banner(`✔ ${answer.data.message} (event #${answer.data.seq}).`, "ok");
  });

  step();
})();
