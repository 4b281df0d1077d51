// Shared by every page: calls to the JSON API with the CSRF token, the session's expiry, messages in
// plain words, times in the site's zone, the live stream, cues for new alerts, and the camera reader used
// by the courier, receipt and bedside pages.
"use strict";

const Celltrail = (() => {
  const csrf = () => document.querySelector('meta[name="csrf-token"]')?.content || "";
  const zone = () => document.querySelector('meta[name="time-zone"]')?.content || "UTC";

  // Every time on a page is in the site's zone, 24-hour, with the zone named: people at two sites read
  // the same record, and a bare "14:05" is ambiguous between them.
  function time(value, withDate) {
    const moment = value instanceof Date ? value : new Date(value);
    if (Number.isNaN(moment.getTime())) return "";
    const options = { timeZone: zone(), hour: "2-digit", minute: "2-digit", hourCycle: "h23", timeZoneName: "short" };
    if (withDate) Object.assign(options, { day: "2-digit", month: "short" });
    try {
      return new Intl.DateTimeFormat("en-GB", options).format(moment);
    } catch (e) {
      return moment.toISOString().slice(0, 16).replace("T", " ") + " UTC";
    }
  }

  // Field and refusal names the API may quote, as a person says them.
  const WORDS = {
    seals_intact: "seals intact", shipper_intact: "shipper intact", temperature_reviewed: "temperature reviewed",
    in_transit: "in transit", storage_location: "storage location", handover_to: "receiver",
    coi_mismatch: "wristband and bag of different patients", not_infusable: "bag cannot be infused",
    unknown_item: "unknown item", unknown_receiver: "unknown receiver", wrong_site: "wrong site",
    wrong_role: "wrong role", out_of_order: "step out of order", idempotency_key: "scan key",
  };
  function words(text) {
    return String(text).replace(/\b[a-z]+(?:_[a-z]+)+\b/g, (w) => WORDS[w] || w.replace(/_/g, " "));
  }

  // Every API error is a problem+json body whose `detail` says what to do; show that, not a status code.
  async function api(method, path, body, extraHeaders) {
    const headers = { "X-CSRF-Token": csrf(), Accept: "application/json", ...(extraHeaders || {}) };
    let payload = body;
    if (body !== undefined && !(body instanceof Blob)) {
      headers["Content-Type"] = "application/json";
      payload = JSON.stringify(body);
    }
    const response = await fetch(path, { method, headers, body: payload, credentials: "same-origin" });
    if (response.status === 401) {
      sessionEnded();
    }
    let data = null;
    const type = response.headers.get("content-type") || "";
    if (type.includes("json")) data = await response.json();
    return { ok: response.ok, status: response.status, data };
  }

  function problemText(result) {
    const data = result.data || {};
    if (data.detail) {
      const fields = Array.isArray(data.errors) ? data.errors.map((e) => e && e.message).filter(Boolean) : [];
      return words([data.detail, ...fields].join(" — "));
    }
    if (result.status === 0) return "The server cannot be reached; try again when the connection is back.";
    if (result.status >= 500) return "The server could not complete this; try again in a moment.";
    return `The server refused this (${result.status}).`;
  }

  function sessionEnded() {
    const next = encodeURIComponent(location.pathname + location.search);
    location.assign(`/login?expired=true&next=${next}`);
  }

  function banner(text, kind) {
    const el = document.getElementById("banner");
    if (!el) return;
    el.textContent = text;
    el.className = `banner banner-${kind || "info"}`;
    el.hidden = false;
  }

  function cookie(name) {
    const found = document.cookie.split("; ").find((c) => c.startsWith(`${name}=`));
    return found ? decodeURIComponent(found.slice(name.length + 1)) : null;
  }

  function watchSession() {
    const expires = cookie("celltrail_session_expires");
    const label = document.getElementById("session-expiry");
    if (!expires || !label) return;
    const end = new Date(expires);
    const tick = () => {
      const minutes = Math.round((end - Date.now()) / 60000);
      if (minutes <= 0) return sessionEnded();
      label.hidden = false;
      label.textContent = `session ends ${time(end)}`;
      if (minutes <= 10) label.classList.add("expiring");
    };
    tick();
    setInterval(tick, 30000);
  }

  async function signOut() {
    await api("POST", "/logout");
    location.assign("/login");
  }

  function uuid() {
    if (crypto.randomUUID) return crypto.randomUUID();
    const b = crypto.getRandomValues(new Uint8Array(16));
    return Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
  }

  // The camera: frames are read by the browser's BarcodeDetector where it has one, otherwise sent to
  // the server, which decodes them with the same decoder as the scanning stations.
  class Camera {
    constructor(video) {
      this.video = video;
      this.canvas = document.createElement("canvas");
      this.stream = null;
      this.detector = null;
      this.timer = null;
      this.busy = false;
    }

    async start() {
      this.stream = await navigator.mediaDevices.getUserMedia({
        video: { facingMode: "environment", width: { ideal: 1280 }, height: { ideal: 720 } },
        audio: false,
      });
      this.video.srcObject = this.stream;
      await this.video.play();
      if ("BarcodeDetector" in window) {
        try {
          const formats = await window.BarcodeDetector.getSupportedFormats();
          if (formats.includes("code_128")) this.detector = new window.BarcodeDetector({ formats });
        } catch (e) {
          this.detector = null;
        }
      }
    }

    stop() {
      clearInterval(this.timer);
      this.timer = null;
      if (this.stream) this.stream.getTracks().forEach((t) => t.stop());
      this.stream = null;
    }

    get running() {
      return this.stream !== null;
    }

    async frame() {
      const { videoWidth: w, videoHeight: h } = this.video;
      if (!w || !h) return null;
      this.canvas.width = w;
      this.canvas.height = h;
      this.canvas.getContext("2d").drawImage(this.video, 0, 0, w, h);
      return new Promise((resolve) => this.canvas.toBlob(resolve, "image/jpeg", 0.9));
    }

    // Codes in one frame as [{text, kind, key, display, coi, problem}], or null when the server could
    // not be reached (offline): then the caller keeps the frame itself.
    async read(blob) {
      if (this.detector) {
        const found = await this.detector.detect(this.video);
        if (found.length) {
          const texts = found.map((f) => f.rawValue);
          const named = await identify(texts);
          return named || texts.map((text) => ({ text, kind: null }));
        }
        return [];
      }
      try {
        const result = await api("POST", "/api/v1/decode", blob, { "Content-Type": "image/jpeg" });
        if (!result.ok) return [];
        return result.data.codes;
      } catch (e) {
        return null;
      }
    }

    // Calls onCodes(codes, blob) for frames with codes, onOffline(blob) when decoding is unreachable.
    loop(onCodes, onOffline, everyMs) {
      this.timer = setInterval(async () => {
        if (this.busy || !this.running) return;
        this.busy = true;
        try {
          const blob = await this.frame();
          if (!blob) return;
          const codes = await this.read(blob);
          if (codes === null) onOffline && onOffline(blob);
          else if (codes.length) onCodes(codes, blob);
        } finally {
          this.busy = false;
        }
      }, everyMs || 400);
    }
  }

  async function identify(texts) {
    try {
      const result = await api("POST", "/api/v1/identify", { codes: texts });
      return result.ok ? result.data : null;
    } catch (e) {
      return null;
    }
  }

  // One live stream per page, shared by the page's script and the alert cues.
  let source = null;
  function stream() {
    if (!source) source = new EventSource("/api/v1/stream");
    return source;
  }
  function payload(event) {
    try {
      return JSON.parse(event.data);
    } catch (e) {
      return {};
    }
  }

  function clock() {
    const el = document.getElementById("clock");
    if (!el) return;
    const tick = () => {
      const now = new Date();
      el.textContent = time(now);
      el.dateTime = now.toISOString();
    };
    tick();
    setInterval(tick, 15000);
  }

  // A new alert while the page is in the background: counted in the title, and, when the person has
  // switched the cues on, a short tone and a desktop notification. Off by default: a ward is no place
  // for a page that beeps on its own.
  const CUES = "celltrail-alert-cues";
  let unseen = 0;
  let audio = null;
  const baseTitle = document.title;
  const cuesOn = () => localStorage.getItem(CUES) === "on";

  function showCount() {
    document.title = unseen > 0 ? `(${unseen}) ${baseTitle}` : baseTitle;
  }

  function tone() {
    if (!audio) return;
    const osc = audio.createOscillator();
    const gain = audio.createGain();
    osc.frequency.value = 880;
    gain.gain.setValueAtTime(0.2, audio.currentTime);
    gain.gain.exponentialRampToValueAtTime(0.001, audio.currentTime + 0.6);
    osc.connect(gain).connect(audio.destination);
    osc.start();
    osc.stop(audio.currentTime + 0.6);
  }

  function cueButton() {
    const button = document.getElementById("alert-cues");
    if (!button) return;
    const show = () => {
      button.setAttribute("aria-pressed", String(cuesOn()));
      button.textContent = cuesOn() ? "Alert sound on" : "Alert sound off";
    };
    button.addEventListener("click", async () => {
      if (cuesOn()) {
        localStorage.removeItem(CUES);
      } else {
        localStorage.setItem(CUES, "on");
        // Created on the click: browsers only let a page play sound after a person's gesture.
        audio = audio || new (window.AudioContext || window.webkitAudioContext)();
        if ("Notification" in window && Notification.permission === "default") {
          try { await Notification.requestPermission(); } catch (e) { /* the tone still plays */ }
        }
      }
      show();
    });
    show();
  }

  function watchAlerts() {
    if (document.body.dataset.alertsLive !== "true") return;
    cueButton();
    stream().addEventListener("alert", (event) => {
      const alert = payload(event);
      if (alert.status !== "open") return;
      if (!document.hidden) return;
      unseen += 1;
      showCount();
      if (!cuesOn()) return;
      tone();
      if ("Notification" in window && Notification.permission === "granted") {
        try {
          new Notification(`Celltrail: ${alert.severity || "new"} alert`, { body: alert.title || "", tag: `alert-${alert.id}` });
        } catch (e) { /* notifications are a courtesy */ }
      }
    });
    document.addEventListener("visibilitychange", () => {
      if (!document.hidden) { unseen = 0; showCount(); }
    });
  }

  document.addEventListener("DOMContentLoaded", () => {
    watchSession();
    clock();
    watchAlerts();
    document.getElementById("sign-out")?.addEventListener("click", signOut);
  });

  return { api, problemText, words, time, zone, banner, uuid, Camera, identify, sessionEnded, stream, payload };
})();
