// The courier's phone: pick-up and hand-over by scanning with the camera. Every scan is first written
// to IndexedDB with its idempotency key, then sent; a scan made offline stays there (with the camera
// frame when the phone cannot read the label itself) and is sent when the phone is back online. The
// server answers a repeated key with its first answer, so a scan sent twice is recorded once.
"use strict";

(() => {
  const root = document.getElementById("courier");
  const task = document.getElementById("task");
  const video = document.getElementById("camera");
  const toggle = document.getElementById("camera-toggle");
  const capture = document.getElementById("capture");
  const result = document.getElementById("scan-result");
  const net = document.getElementById("net");
  const camera = new Celltrail.Camera(video);
  // (action, shipment) pairs recorded in this session: a label left in view is one scan, not one a second.
  const recorded = new Set();
  let pendingPhotos = 0;
  let flushing = false;

  // ---------------------------------------------------------------- the queue (IndexedDB)
  const dbReady = new Promise((resolve, reject) => {
    const open = indexedDB.open(`celltrail-courier-${root.dataset.user}`, 1);
    open.onupgradeneeded = () => open.result.createObjectStore("scans", { keyPath: "idempotency_key" });
    open.onsuccess = () => resolve(open.result);
    open.onerror = () => reject(open.error);
  });

  async function store(mode, fn) {
    const db = await dbReady;
    return new Promise((resolve, reject) => {
      const tx = db.transaction("scans", mode);
      const request = fn(tx.objectStore("scans"));
      tx.oncomplete = () => resolve(request ? request.result : undefined);
      tx.onerror = () => reject(tx.error);
    });
  }
  const put = (item) => store("readwrite", (s) => s.put(item));
  const remove = (key) => store("readwrite", (s) => s.delete(key));
  const all = () => store("readonly", (s) => s.getAll());

  // ---------------------------------------------------------------- the task
  function current() {
    const action = task.elements.action.value;
    return {
      action,
      site: task.elements.site.value,
      handover_to: action === "handover" ? task.elements.handover_to.value.trim() || null : null,
    };
  }
  task.addEventListener("change", () => {
    document.getElementById("handover-to").hidden = current().action !== "handover";
  });

  function say(text, kind) {
    result.textContent = text;
    result.className = `scan-result ${kind}`;
  }

  async function enqueue(codes, frame) {
    const t = current();
    if (t.action === "handover" && !t.handover_to) {
      say("Enter who you hand over to first.", "bad");
      return;
    }
    const item = {
      idempotency_key: Celltrail.uuid(), ...t, codes, frame: frame || null,
      device_time: new Date().toISOString(), state: "waiting", note: "",
    };
    await put(item);
    say(frame ? "Saved offline: the label photo is sent when you are back online." : `Saved ${codes.join(", ")}; sending…`,
      frame ? "pending" : "pending");
    await render();
    flush();
  }

  // ---------------------------------------------------------------- sending
  async function send(item) {
    let codes = item.codes;
    if (!codes) {
      const read = await camera.read(item.frame);
      if (read === null) throw new Error("offline");
      const shipments = read.filter((c) => c.kind === "shipment" || c.kind === "sscc");
      if (!shipments.length) {
        item.state = "failed";
        item.note = "no shipment label could be read in the photo taken offline; scan it again";
        await put(item);
        return;
      }
      codes = [shipments[0].text];
      item.codes = codes;
      recorded.add(`${item.action}:${shipments[0].key}`);
      await put(item);
    }
    const answer = await Celltrail.api("POST", "/api/v1/scans", {
      idempotency_key: item.idempotency_key, action: item.action, site: item.site, codes,
      handover_to: item.handover_to, device_time: item.device_time,
    });
    if (answer.status === 401) throw new Error("signed out");
    if (answer.status >= 500 || answer.status === 429) throw new Error("try later");
    await remove(item.idempotency_key);
    addDone(item, answer);
  }

  async function flush() {
    if (flushing) return;
    flushing = true;
    try {
      const items = (await all()).filter((i) => i.state === "waiting");
      items.sort((a, b) => a.device_time.localeCompare(b.device_time));
      for (const item of items) {
        try {
          await send(item);
        } catch (e) {
          setOnline(false);
          break;
        }
        setOnline(true);
      }
    } finally {
      flushing = false;
      await render();
    }
  }

  function addDone(item, answer) {
    const li = document.createElement("li");
    li.className = answer.ok ? "ok" : "bad";
    const when = new Date(item.device_time).toLocaleTimeString();
    li.textContent = answer.ok
      ? `✔ ${when} ${answer.data.message}`
      : `✖ ${when} ${item.action} ${item.codes.join(", ")}: ${Celltrail.problemText(answer)}`;
    document.getElementById("done").prepend(li);
    say(li.textContent, answer.ok ? "ok" : "bad");
  }

  async function render() {
    const items = await all();
    const list = document.getElementById("queue");
    list.replaceChildren();
    for (const item of items) {
      const li = document.createElement("li");
      li.className = item.state;
      const what = item.codes ? item.codes.join(", ") : "label photo";
      li.textContent = `${new Date(item.device_time).toLocaleTimeString()} ${item.action} ${what}` +
        (item.note ? ` — ${item.note}` : "");
      if (item.state === "failed") {
        const drop = document.createElement("button");
        drop.type = "button";
        drop.textContent = "Dismiss";
        drop.addEventListener("click", async () => { await remove(item.idempotency_key); render(); });
        li.append(" ", drop);
      }
      list.append(li);
    }
    const waiting = items.filter((i) => i.state === "waiting");
    pendingPhotos = waiting.filter((i) => !i.codes).length;
    document.getElementById("queue-count").textContent = String(waiting.length);
  }

  function setOnline(online) {
    net.dataset.online = String(online);
    net.textContent = online ? "Online" : "Offline — scans are kept on this phone";
    capture.hidden = online || !camera.running;
  }

  // ---------------------------------------------------------------- camera and manual entry
  toggle.addEventListener("click", async () => {
    if (camera.running) {
      camera.stop();
      video.hidden = true;
      capture.hidden = true;
      toggle.textContent = "Scan with camera";
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
    setOnline(navigator.onLine);
    camera.loop(
      (codes) => {
        setOnline(true);
        // Photos taken offline go first: they may be this very label, and must not be recorded twice.
        if (pendingPhotos > 0) return flush();
        if (current().action === "handover" && !current().handover_to) {
          say("Enter who you hand over to first.", "bad");
          return;
        }
        for (const code of codes) {
          if (code.kind !== "shipment" && code.kind !== "sscc") {
            if (code.problem) say(`✖ ${code.problem}`, "bad");
            else say(`That is a ${code.kind || "foreign"} label; scan the shipment label.`, "info");
            continue;
          }
          const seen = `${current().action}:${code.key || code.text}`;
          if (recorded.has(seen)) continue;
          recorded.add(seen);
          enqueue([code.text], null);
          break; // one label per frame: a shipment label's Code 128 and QR are the same shipment
        }
      },
      () => setOnline(false),
    );
  });

  capture.addEventListener("click", async () => {
    const frame = await camera.frame();
    if (frame) await enqueue(null, frame);
  });

  document.getElementById("manual").addEventListener("submit", (event) => {
    event.preventDefault();
    const field = event.target.elements.code;
    const text = field.value.trim().toUpperCase();
    field.value = "";
    if (text) enqueue([text], null);
  });

  // ---------------------------------------------------------------- hand-overs to me
  async function loadConfirmations() {
    const list = document.getElementById("to-confirm");
    let answer;
    try {
      answer = await Celltrail.api("GET", "/api/v1/shipments?active=true");
    } catch (e) {
      return;
    }
    if (!answer.ok) return;
    const mine = answer.data.filter((s) => s.pending_handover && s.pending_handover_to === root.dataset.user);
    list.replaceChildren();
    if (!mine.length) {
      const li = document.createElement("li");
      li.className = "muted";
      li.textContent = "Nothing to confirm.";
      list.append(li);
    }
    for (const s of mine) {
      const li = document.createElement("li");
      const button = document.createElement("button");
      button.type = "button";
      button.className = "primary big";
      button.textContent = `Confirm I took ${s.id}`;
      button.addEventListener("click", async () => {
        const done = await Celltrail.api("POST", `/api/v1/handovers/${s.pending_handover}/confirm`);
        say(done.ok ? `✔ You now hold ${s.id}.` : `✖ ${Celltrail.problemText(done)}`, done.ok ? "ok" : "bad");
        loadConfirmations();
      });
      li.append(button);
      list.append(li);
    }
  }

  window.addEventListener("online", () => { setOnline(true); flush(); loadConfirmations(); });
  window.addEventListener("offline", () => setOnline(false));
  setInterval(() => { flush(); loadConfirmations(); }, 15000);
  setOnline(navigator.onLine);
  render().then(flush);
  loadConfirmations();
})();
