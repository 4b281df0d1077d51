// The courier's phone: pick-up and hand-over by scanning with the camera. Every scan is first written
// to IndexedDB with its idempotency key, then sent; a scan made offline stays there (with the camera
// frame when the phone cannot read the label itself) and is sent when the phone is back online. The
// server answers a repeated key with its first answer, so a scan sent twice is recorded once.
//
// A hand-over names its receiver from the people bound to the shipment's destination site (or by a
// scan of their badge), and is recorded only once the courier has chosen and pressed "Record
// hand-over": nothing is sent while a name is being picked. The site then defaults to the destination.
// The receivers of the shipments in hand are kept on the phone, so the choice works offline too, and a
// service worker keeps the page itself, so reloading it offline shows it with its queue.
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
  const handover = document.getElementById("handover");
  const receiversBox = document.getElementById("receivers");
  const badge = document.getElementById("badge");
  const go = document.getElementById("handover-go");
  const RECEIVERS = `celltrail-receivers-${root.dataset.user}`;
  let pendingShipment = null; // {text, id}: scanned for a hand-over, waiting for the receiver

  const mode = () => task.elements.action.value;
  function chosen() {
    const picked = receiversBox.querySelector("input[name=receiver]:checked");
    return picked ? picked.value : null;
  }
  function current() {
    return { action: mode(), site: task.elements.site.value, handover_to: mode() === "handover" ? chosen() : null };
  }

  function cached() {
    try {
      return JSON.parse(localStorage.getItem(RECEIVERS) || "{}");
    } catch (e) {
      return {};
    }
  }
  function remember(shipmentId, data) {
    const all = cached();
    all[shipmentId] = data;
    localStorage.setItem(RECEIVERS, JSON.stringify(all));
  }

  async function receiversOf(shipmentId) {
    try {
      const answer = await Celltrail.api("GET", `/api/v1/shipments/${encodeURIComponent(shipmentId)}/receivers`);
      if (answer.ok) {
        remember(shipmentId, answer.data);
        return answer.data;
      }
      if (answer.status === 404) return { problem: Celltrail.problemText(answer) };
    } catch (e) { /* offline: what the phone kept */ }
    return cached()[shipmentId] || null;
  }

  // The list the courier picks from: the shipment's receivers, or, before a shipment is known (a label
  // photographed offline), everyone kept for the shipments in hand.
  function showReceivers(groups) {
    receiversBox.replaceChildren();
    const seen = new Set();
    for (const group of groups) {
      for (const person of group.people) {
        if (seen.has(person.username)) continue;
        seen.add(person.username);
        const label = document.createElement("label");
        label.className = "check";
        const radio = document.createElement("input");
        radio.type = "radio";
        radio.name = "receiver";
        radio.value = person.username;
        label.append(radio, ` ${person.full_name} (${person.roles.join(", ")}, ${group.site})`);
        receiversBox.append(label);
      }
    }
    if (!seen.size) {
      const p = document.createElement("p");
      p.className = "muted";
      p.textContent = "Nobody known to take it here; scan their badge.";
      receiversBox.append(p);
    }
    updateGo();
  }

  function updateGo() {
    const who = chosen();
    go.disabled = !(who && pendingShipment);
    capture.disabled = mode() === "handover" && !who;
  }

  async function prepareHandover(text) {
    const id = text.trim().toUpperCase().replace(/^CT1:SHP:/, "");
    if (pendingShipment && pendingShipment.id === id) return;
    pendingShipment = { text, id };
    document.getElementById("handover-what").textContent = `Hand over ${id} to:`;
    const data = await receiversOf(id);
    if (data && data.problem) {
      pendingShipment = null;
      say(`✖ ${data.problem}`, "bad");
      return;
    }
    if (data) {
      const option = [...task.elements.site.options].find((o) => o.value === data.site);
      if (option) task.elements.site.value = data.site;
      showReceivers([data]);
    } else {
      showReceivers([]);
    }
    say(`Choose who takes ${id}, then press “Record hand-over”.`, "info");
  }

  function resetHandover() {
    pendingShipment = null;
    badge.value = "";
    document.getElementById("handover-what").textContent = "Scan the label of the shipment you hand over.";
    showReceivers(Object.values(cached()));
  }

  receiversBox.addEventListener("change", updateGo);
  task.addEventListener("change", (event) => {
    if (event.target.name !== "action") return;
    handover.hidden = mode() !== "handover";
    if (mode() === "handover") resetHandover();
    updateGo();
  });

  // A badge scanned (or its username typed) picks the matching person; offline, when nobody is listed,
  // the name is taken as given and checked by the server when the scan is sent.
  badge.addEventListener("keydown", (event) => {
    if (event.key !== "Enter") return;
    event.preventDefault();
    const who = badge.value.trim().toLowerCase();
    if (!who) return;
    let radio = receiversBox.querySelector(`input[name=receiver][value="${CSS.escape(who)}"]`);
    if (!radio && navigator.onLine && pendingShipment) {
      say(`✖ ${who} is not bound to this shipment's destination; choose from the list.`, "bad");
      return;
    }
    if (!radio) {
      showReceivers([{ site: "badge", people: [{ username: who, full_name: who, roles: ["scanned badge"] }] }]);
      radio = receiversBox.querySelector("input[name=receiver]");
    }
    radio.checked = true;
    badge.value = "";
    updateGo();
  });

  go.addEventListener("click", async () => {
    const who = chosen();
    if (!pendingShipment || !who) return;
    const { id } = pendingShipment;
    recorded.add(`handover:shipment:${id}`);
    await enqueue([pendingShipment.text], null);
    resetHandover();
  });

  function say(text, kind) {
    result.textContent = text;
    result.className = `scan-result ${kind}`;
  }

  async function enqueue(codes, frame) {
    const t = current();
    if (t.action === "handover" && !t.handover_to) {
      say("Choose who you hand over to first.", "bad");
      return;
    }
    const item = {
      idempotency_key: Celltrail.uuid(), ...t, codes, frame: frame || null,
      device_time: new Date().toISOString(), state: "waiting", note: "",
    };
    await put(item);
    say(frame ? "Saved offline: the label photo is sent when you are back online." : `Saved ${codes.join(", ")}; sending…`,
      "pending");
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
    // A shipment just taken: keep who can receive it, for a hand-over made where there is no network.
    if (answer.ok && item.action === "pickup" && answer.data.shipment_id) await receiversOf(answer.data.shipment_id);
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
    const when = Celltrail.time(item.device_time);
    li.textContent = answer.ok
      ? `✔ ${when} ${answer.data.message}`
      : `✖ ${when} ${item.action} ${(item.codes || []).join(", ")}: ${Celltrail.problemText(answer)}`;
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
      li.textContent = `${Celltrail.time(item.device_time)} ${item.action === "handover" ? `hand-over to ${item.handover_to}` : item.action} ${what}` +
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
        for (const code of codes) {
          if (code.kind !== "shipment" && code.kind !== "sscc") {
            if (code.problem) say(`✖ ${code.problem}`, "bad");
            else say(`That is a ${code.kind || "foreign"} label; scan the shipment label.`, "info");
            continue;
          }
          const seen = `${current().action}:${code.key || code.text}`;
          if (recorded.has(seen)) continue;
          if (mode() === "handover") {
            // The hand-over waits for the receiver to be chosen: nothing is recorded yet.
            prepareHandover(code.display || code.text);
            break;
          }
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
    if (!text) return;
    if (mode() === "handover") prepareHandover(text);
    else enqueue([text], null);
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
    // Keep the receivers of the shipments in transit on the phone, for a hand-over made offline.
    const kept = cached();
    for (const s of answer.data.filter((x) => x.status === "in_transit" && !kept[x.id]).slice(0, 20)) {
      await receiversOf(s.id);
    }
    if (mode() === "handover" && !pendingShipment && !chosen()) showReceivers(Object.values(cached()));
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
  if ("serviceWorker" in navigator) {
    navigator.serviceWorker.register("/courier-sw.js", { scope: "/courier" }).catch(() => {
      /* the page works online without it */
    });
  }
})();
