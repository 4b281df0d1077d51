// The case page's order and plan panel: order a therapy, the manufacturing site's signed decision, booking,
// rescheduling or cancelling the collection, and each milestone planned against the custody record.
"use strict";

(() => {
  const C = Celltrail;
  const panel = document.getElementById("plan-panel");
  if (!panel) return;
  const coi = panel.dataset.coi;
  const body = document.getElementById("plan-body");
  let plan = null;

  const esc = (text) => String(text ?? "").replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]);
  // 24-hour, in the zone of the site the time belongs to, with the zone named.
  function at(value, zone) {
    if (!value) return "—";
    try {
      return new Intl.DateTimeFormat("en-GB", {
        timeZone: zone || "UTC", day: "2-digit", month: "short", year: "numeric",
        hour: "2-digit", minute: "2-digit", hourCycle: "h23", timeZoneName: "short",
      }).format(new Date(value));
    } catch (e) {
      return String(value).slice(0, 16).replace("T", " ") + " UTC";
    }
  }
  const STATES = { done: "done", done_late: "done, late", pending: "planned", overdue: "overdue", at_risk: "at risk" };

  async function load() {
    const result = await C.api("GET", `/api/v1/cases/${coi}/plan`);
    if (!result.ok) {
      body.innerHTML = `<p class="muted">${esc(C.problemText(result))}</p>`;
      return;
    }
    plan = result.data;
    render();
  }

  function render() {
    const o = plan.order;
    const zones = plan.time_zones || {};
    let html = "";
    if (!o) {
      html += `<p>No treatment order yet.</p>`;
    } else {
      html += `<dl class="facts" data-testid="order-facts">
        <dt>Order</dt><dd><span class="badge">${esc(o.status)}</span> ${esc(o.product)}</dd>
        <dt>Collection at</dt><dd>${esc(o.collection_site)}</dd>
        <dt>Manufacturing at</dt><dd>${esc(o.manufacturing_site)}</dd>
        <dt>MDT decision</dt><dd>${esc(o.mdt_reference)}, ${esc(o.mdt_date)}</dd>
        <dt>Physician</dt><dd>${esc(o.physician)}</dd>
        <dt>Ordered</dt><dd>${esc(o.ordered_by)}, ${at(o.ordered_at, zones[o.ordering_site])}</dd>
        ${o.withdrawn_at ? `<dt>Withdrawn</dt><dd>${esc(o.withdrawn_by)}, ${at(o.withdrawn_at, zones[o.ordering_site])} — ${esc(o.withdrawal_reason)}</dd>` : ""}
        ${o.decided_at ? `<dt>Decided</dt><dd>${esc(o.decided_by)}, ${at(o.decided_at, zones[o.manufacturing_site])}${o.decision_reason ? ` — ${esc(o.decision_reason)}` : ""}</dd>` : ""}
      </dl>`;
    }
    const b = plan.booking;
    if (b) {
      html += `<p data-testid="booking">Collection booked at ${esc(b.collection_site)} for <strong>${at(b.collection_at, zones[b.collection_site])}</strong>;
        manufacturing run in suite ${esc(b.suite)} from ${esc(b.manufacturing_start)} at ${esc(b.manufacturing_site)}.
        ${b.flagged ? `<span class="badge warn">no longer fits: ${esc(b.flag_reason)}</span>` : ""}</p>`;
    }
    if (plan.can_order) html += orderForm();
    if (plan.can_decide) html += decisionForm();
    if (plan.can_book) html += bookingControls(b);
    if (plan.can_withdraw) html += withdrawForm();
    if (b) html += milestones(zones, o);
    body.innerHTML = html;
    wire();
  }

  function orderForm() {
    return `<form id="order-form" class="plan-form" aria-label="Order a therapy">
      <label>Product <input name="product" value="car-t" required pattern="[a-z0-9][a-z0-9_-]{1,40}"></label>
      <label>Collection site <input name="collection_site" required placeholder="site code"></label>
      <label>Manufacturing site <input name="manufacturing_site" required placeholder="site code"></label>
      <label>MDT decision reference <input name="mdt_reference" required maxlength="200"></label>
      <label>MDT decision date <input type="date" name="mdt_date" required></label>
      <label>Treating physician <input name="physician" required maxlength="200"></label>
      <button type="submit" class="button">Order therapy</button>
    </form>`;
  }

  function decisionForm() {
    return `<form id="decision-form" class="plan-form" aria-label="Accept or decline the order">
      <label>Reason (needed to decline) <input name="reason" maxlength="1000"></label>
      <label>Your password (signature) <input type="password" name="password" required autocomplete="current-password"></label>
      <div class="buttons"><button type="submit" class="button" value="accept">Accept and sign</button>
      <button type="submit" class="button" value="decline">Decline and sign</button></div>
    </form>`;
  }

  function withdrawForm() {
    return `<form id="withdraw-form" class="plan-form" aria-label="Withdraw the order">
      <label>Reason for withdrawing <input name="reason" required minlength="3" maxlength="1000"></label>
      <button type="submit" class="button">Withdraw the order</button>
    </form>`;
  }

  function bookingControls(b) {
    return `<form id="slot-form" aria-label="${b ? "Reschedule the collection" : "Book the collection"}">
      <div class="buttons"><button type="button" class="button" id="find-slots">${b ? "Find another slot" : "Find a collection slot"}</button>
      ${b ? `<button type="button" class="button" id="cancel-booking">Cancel the booking</button>` : ""}</div>
      ${b ? `<label>Reason for the change <input name="reason" id="change-reason" minlength="3" maxlength="1000"></label>` : ""}
      <div id="slot-choices"></div>
    </form>`;
  }

  function milestones(zones, o) {
    const zoneOf = { collection: o.collection_site, shipment_to_manufacturing: o.collection_site,
      manufacturing_start: o.manufacturing_site, release: o.manufacturing_site, return_shipment: o.manufacturing_site,
      receipt: o.ordering_site, infusion: o.ordering_site };
    const rows = plan.milestones.map((m) => `<tr>
      <th scope="row">${esc(m.label)}</th><td>${at(m.planned_at, zones[zoneOf[m.milestone]])}</td>
      <td>${at(m.actual_at, zones[zoneOf[m.milestone]])}</td>
      <td class="state-${esc(m.state)}">${esc(STATES[m.state] || m.state)}${m.delay_hours !== null ? ` (${m.delay_hours > 0 ? "+" : ""}${m.delay_hours} h)` : ""}</td></tr>`).join("");
    return `<table class="simple plan-milestones" data-testid="milestones">
      <caption>Plan against the custody record (slack ${esc(plan.slack_hours)} h; actual times come from the record)</caption>
      <thead><tr><th scope="col">Milestone</th><th scope="col">Planned</th><th scope="col">Actual</th><th scope="col">State</th></tr></thead>
      <tbody>${rows}</tbody></table>`;
  }

  async function act(method, path, payload, done) {
    const result = await C.api(method, path, payload);
    if (!result.ok) {
      C.banner(C.problemText(result), "error");
      return false;
    }
    C.banner(done, "ok");
    await load();
    return true;
  }

  async function showSlots() {
    const list = document.getElementById("slot-choices");
    const result = await C.api("GET", `/api/v1/cases/${coi}/slots?days=42`);
    if (!result.ok) { C.banner(C.problemText(result), "error"); return; }
    const zone = result.data.time_zone;
    const slots = result.data.slots;
    if (!slots.length) { list.innerHTML = `<p class="muted">No free slot at the collection site in the next six weeks.</p>`; return; }
    list.innerHTML = `<fieldset class="plan-slots"><legend>Free slots (${esc(zone)}); greyed: no manufacturing run free</legend>
      ${slots.map((s) => `<label class="${s.fits ? "" : "no-fit"}"><input type="radio" name="slot" value="${s.id}" ${s.fits ? "" : "disabled"}>
        ${at(s.starts_at, zone)}${s.fits ? ` · run from ${esc(s.manufacturing_start)}` : ` · ${esc(s.why_not)}`}</label>`).join("")}
      </fieldset><button type="button" class="button" id="book-slot">${plan.booking ? "Move the booking here" : "Book this slot"}</button>`;
    const first = list.querySelector('input[name="slot"]:not([disabled])');
    if (first) first.focus();
    document.getElementById("book-slot").addEventListener("click", async () => {
      const chosen = list.querySelector('input[name="slot"]:checked');
      if (!chosen) { C.banner("Choose a slot first.", "error"); return; }
      if (plan.booking) {
        const reason = document.getElementById("change-reason").value;
        await act("POST", `/api/v1/cases/${coi}/booking/reschedule`, { slot_id: Number(chosen.value), reason }, "Collection rescheduled.");
      } else {
        await act("POST", `/api/v1/cases/${coi}/booking`, { slot_id: Number(chosen.value) }, "Collection booked.");
      }
    });
  }

  function wire() {
    const order = document.getElementById("order-form");
    if (order) {
      order.addEventListener("submit", (event) => {
        event.preventDefault();
        const f = order.elements;
        act("POST", `/api/v1/cases/${coi}/order`, {
          product: f.product.value, collection_site: f.collection_site.value.trim().toUpperCase(),
          manufacturing_site: f.manufacturing_site.value.trim().toUpperCase(), mdt_reference: f.mdt_reference.value,
          mdt_date: f.mdt_date.value, physician: f.physician.value,
        }, "Therapy ordered; the manufacturing site is asked to accept it.");
      });
    }
    const decision = document.getElementById("decision-form");
    if (decision) {
      decision.addEventListener("submit", (event) => {
        event.preventDefault();
        const f = decision.elements;
        const choice = event.submitter ? event.submitter.value : "accept";
        act("POST", `/api/v1/cases/${coi}/order/decision`, {
          decision: choice, password: f.password.value, reason: f.reason.value || null,
        }, choice === "accept" ? "Order accepted and signed." : "Order declined and signed.");
      });
    }
    const withdraw = document.getElementById("withdraw-form");
    if (withdraw) {
      withdraw.addEventListener("submit", (event) => {
        event.preventDefault();
        act("POST", `/api/v1/cases/${coi}/order/withdraw`, { reason: withdraw.elements.reason.value },
          "Order withdrawn; a booking it held is cancelled and its capacity free again.");
      });
    }
    const find = document.getElementById("find-slots");
    if (find) find.addEventListener("click", showSlots);
    const cancel = document.getElementById("cancel-booking");
    if (cancel) {
      cancel.addEventListener("click", () => {
        const reason = document.getElementById("change-reason").value;
        act("POST", `/api/v1/cases/${coi}/booking/cancel`, { reason }, "Booking cancelled; its capacity is free again.");
      });
    }
  }

  load();
})();
