// Shared by every page: calls to the JSON API with the CSRF token, the session's expiry, messages,
// and the camera reader used by the courier, receipt and bedside pages.
"use strict";

const Celltrail = (() => {
  const csrf = () => document.querySelector('meta[name="csrf-token"]')?.content || "";

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
    if (result.data && result.data.detail) return result.data.detail;
    return `the server answered ${result.status}`;
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
      label.textContent = `session ends ${end.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" })}`;
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

  document.addEventListener("DOMContentLoaded", () => {
    watchSession();
    document.getElementById("sign-out")?.addEventListener("click", signOut);
  });

  return { api, problemText, banner, uuid, Camera, identify, sessionEnded };
})();
