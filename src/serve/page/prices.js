// The price plan: asks the server for a plan of a day (POST
// api/schedule/plan), shows it over the day's prices with its expected
// saving, and saves it with the ETag the proposal was made from. Uses the
// helpers of app.js.
"use strict";

const plan = { proposal: null };

// "2026-11-24T17:00:00+01:00" -> minutes since local midnight.
function minuteOfDay(iso) {
  return parseInt(iso.slice(11, 13), 10) * 60 + parseInt(iso.slice(14, 16), 10);
}

function renderPlan(p) {
  const el = $("plan-timeline");
  el.textContent = "";
  const prices = p.slots.map((s) => s.buy_eur_per_kwh);
  const low = Math.min(0, ...prices);
  const high = Math.max(...prices, low + 0.01);
  for (const s of p.slots) {
    const start = minuteOfDay(s.start);
    const end = s.end.slice(0, 10) === s.start.slice(0, 10) ? minuteOfDay(s.end) : 1440;
    const seg = document.createElement("div");
    seg.className = "seg plan-seg " + kindOf(s.value);
    seg.style.left = (start / 14.4) + "%";
    seg.style.width = ((end - start) / 14.4) + "%";
    seg.title = `${s.start.slice(11, 16)}: ${s.buy_eur_per_kwh.toFixed(3)} EUR/kWh, ` +
      `${describe(s.value)}${s.owner ? " (your entry)" : ""}, SoC ${Math.round(s.soc_percent)}%`;
    // The price as a bar behind the value.
    const bar = document.createElement("i");
    bar.className = "price-bar";
    bar.style.height = (((s.buy_eur_per_kwh - low) / (high - low)) * 100) + "%";
    seg.appendChild(bar);
    if (end - start >= 60 && s.value !== "netzero" && s.value !== "netzero+") {
      const label = document.createElement("span");
      label.textContent = short(s.value);
      seg.appendChild(label);
    }
    el.appendChild(seg);
  }
  $("plan-range").textContent =
    `${p.date}: buy price ${Math.min(...prices).toFixed(3)}–${Math.max(...prices).toFixed(3)} EUR/kWh (bars)`;
  $("plan-saving").textContent =
    `Expected saving ${p.expected_saving_eur.toFixed(2)} EUR against an idle battery ` +
    `(charge ${p.charged_kwh.toFixed(2)} kWh, discharge ${p.discharged_kwh.toFixed(2)} kWh, ` +
    `${Object.keys(p.entries).length} entries, replacing ${p.replaced} of the last plan's).`;
  $("plan-result").hidden = false;
  $("plan-save").disabled = p.written;
}

async function askPlan(save) {
  $("plan-error").hidden = true;
  const body = { date: $("plan-day").value, save };
  const extra = save ? { "If-Match": plan.proposal.etag } : {};
  let r;
  try {
    r = await fetch("api/schedule/plan", { method: "POST", headers: headers(extra), body: JSON.stringify(body) });
  } catch (e) {
    return planError("The server did not answer: " + e.message);
  }
  const answer = await r.json().catch(() => ({}));
  if (r.status === 412) return planError("The schedule changed since this plan was made; propose again.");
  if (!r.ok) return planError(answer.error || `HTTP ${r.status}`);
  plan.proposal = answer;
  renderPlan(answer);
  if (save) {
    $("plan-saved").hidden = false;
    await loadSchedule();
  } else {
    $("plan-saved").hidden = true;
  }
}

function planError(message) {
  $("plan-error").textContent = message;
  $("plan-error").hidden = false;
}

document.addEventListener("DOMContentLoaded", () => {
  $("plan-propose").addEventListener("click", () => askPlan(false));
  $("plan-save").addEventListener("click", () => askPlan(true));
});
