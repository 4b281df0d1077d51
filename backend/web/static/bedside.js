// Bedside verification: wristband, then bag; the server compares them and answers MATCH or STOP. A STOP
// is recorded by the server in each case involved and alerted; the page shows it full-screen. After a
// MATCH the camera stops (its reading must not cover the signature form) and two signatures record the
// infusion (the server checks the match again and refuses a mismatch whatever this page says).
//
// Identity: with the camera, a wristband counts only by its wristband symbol (the QR code whose payload
// names a COI, printed on wristbands only); a bag only by its own symbols (unit id or DIN, never the
// COI it also carries). A keyboard-wedge scanner reads the wristband's COI barcode.
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
  let checking = false;
  let matched = false;

  function step() {
    document.getElementById("step-wristband").className = wristband ? "done" : "current";
    document.getElementById("step-bag").className = bag ? "done" : wristband ? "current" : "";
    document.getElementById("wristband-value").textContent = wristband ? wristband.display : "";
    document.getElementById("bag-value").textContent = bag ? bag.display : "";
  }

  function stopCamera() {
    camera.stop();
    video.hidden = true;
    toggle.textContent = "Use camera";
  }

  function show(match, detail) {
    matched = match;
    if (match) stopCamera();
    verdict.hidden = false;
    verdict.className = `verdict ${match ? "verdict-match" : "verdict-stop"}`;
    document.getElementById("verdict-word").textContent = match ? "MATCH" : "STOP";
    document.getElementById("verdict-detail").textContent = Celltrail.words(detail);
    document.getElementById("verdict-continue").focus();
  }

  function restart() {
    wristband = null;
    bag = null;
    matched = false;
    verdict.hidden = true;
    signatures.hidden = true;
    signatures.reset();
    step();
    input.focus();
  }

  const isBag = (code) => code.kind === "unit" || code.kind === "din";

  async function check() {
    checking = true;
    try {
      let answer;
      try {
        answer = await Celltrail.api("POST", "/api/v1/bedside/verifications", {
          idempotency_key: Celltrail.uuid(), site: document.getElementById("site").value,
          wristband: wristband.text, bag: bag.text, device_time: new Date().toISOString(),
        });
      } catch (e) {
        return show(false, "The server could not be reached; bedside verification needs it. Do not infuse yet.");
      }
      if (answer.ok) return show(true, answer.data.detail);
      show(false, Celltrail.problemText(answer));
    } finally {
      checking = false;
    }
  }

  async function accept(code) {
    if (checking || matched) return;
    if (code.problem) return show(false, `This code was not accepted: ${code.problem}`);
    if (!wristband) {
      if (code.kind !== "coi") return show(false, "Scan the patient's wristband first, not a bag or box.");
      wristband = code;
    } else if (!bag) {
      if (!isBag(code)) return show(false, "Now scan the bag's label: its unit barcode, DIN or QR code.");
      bag = code;
    }
    step();
    if (bag) await check();
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
    if (camera.running) return stopCamera();
    try {
      await camera.start();
    } catch (e) {
      return show(false, `The camera could not be opened: ${e.message}`);
    }
    video.hidden = false;
    toggle.textContent = "Stop camera";
    let last = "";
    camera.loop((codes) => {
      if (!verdict.hidden || checking || matched) return;
      const wanted = !wristband
        ? codes.find((c) => c.kind === "coi" && /^CT\d+:COI:/.test(c.text))
        : codes.find((c) => isBag(c) && c.key !== wristband.key);
      if (wanted && wanted.key !== last) {
        last = wanted.key;
        accept(wanted);
      }
    });
  });

  document.getElementById("verdict-continue").addEventListener("click", () => {
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
    let answer;
    try {
      answer = await Celltrail.api("POST", "/api/v1/scans", {
        idempotency_key: Celltrail.uuid(), action: "infuse", site: document.getElementById("site").value,
        codes: [wristband.text, bag.text], device_time: new Date().toISOString(),
        signatures: [
          { username: f.u1.value.trim(), password: f.p1.value, meaning: "verified at bedside" },
          { username: f.u2.value.trim(), password: f.p2.value, meaning: "administered" },
        ],
      });
    } catch (e) {
      answer = { ok: false, status: 0, data: null };
    }
    f.p1.value = "";
    f.p2.value = "";
    if (!answer.ok) {
      error.textContent = Celltrail.problemText(answer);
      error.hidden = false;
      return;
    }
    error.hidden = true;
    signatures.hidden = true;
    Celltrail.banner(`✔ ${Celltrail.words(answer.data.message)} (event #${answer.data.seq}).`, "ok");
  });

  step();
})();
