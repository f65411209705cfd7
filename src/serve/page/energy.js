// The energy account: the last days' hours as bars (grid import up and
// export down, battery charged up and discharged down) and each day's
// totals, cost and saving, from GET api/energy. Uses the helpers of app.js.
"use strict";

const ENERGY_DAYS = 4;
const ENERGY_REFRESH_MS = 300000;
const SVG = "http://www.w3.org/2000/svg";

function svg(name, attrs) {
  const el = document.createElementNS(SVG, name);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, v);
  return el;
}

const kwh = (v) => v.toFixed(2);
const eur = (v) => (v === null || v === undefined ? "–" : v.toFixed(2));

function renderEnergyChart(days) {
  const hours = days.flatMap((d) => d.hours);
  const el = $("energy-chart");
  el.textContent = "";
  if (hours.length === 0) {
    $("energy-note").textContent = "No hours yet: the controller sends each hour when it ends.";
    return;
  }
  // Every hour of the days shown, so a gap shows as a gap.
  const first = days[0].start;
  const last = days[days.length - 1];
  const slots = (last.start - first) / 3600 + last.hours_in_day;
  const high = Math.max(0.1, ...hours.map((h) => Math.max(h.import_kwh, h.charged_kwh)));
  const low = Math.max(0.1, ...hours.map((h) => Math.max(h.export_kwh, h.discharged_kwh)));
  const width = 1000, height = 220, mid = height * high / (high + low);
  const scale = mid / high;
  const chart = svg("svg", { viewBox: `0 0 ${width} ${height}`, role: "img",
    "aria-label": "energy per hour", class: "energy-svg" });
  chart.appendChild(svg("line", { x1: 0, x2: width, y1: mid, y2: mid, class: "axis" }));
  const step = width / slots;
  const bar = (cls, x, kwhValue, up, title) => {
    const h = kwhValue * scale;
    if (h <= 0) return;
    const r = svg("rect", { x, width: Math.max(step * 0.4, 0.5), y: up ? mid - h : mid, height: h,
      class: cls });
    const t = svg("title", {});
    t.textContent = title;
    r.appendChild(t);
    chart.appendChild(r);
  };
  for (const { date, hours: dayHours } of days) for (const h of dayHours) {
    const x = ((h.hour - first) / 3600) * step;
    const what = `${date} ${h.local}: import ${kwh(h.import_kwh)}, export ${kwh(h.export_kwh)}, ` +
      `charged ${kwh(h.charged_kwh)}, discharged ${kwh(h.discharged_kwh)} kWh, ` +
      `covered ${Math.round(h.covered * 100)}%` + (h.cost_eur === null ? "" : `, cost ${eur(h.cost_eur)} EUR`);
    bar("bar-import", x, h.import_kwh, true, what);
    bar("bar-export", x, h.export_kwh, false, what);
    bar("bar-charged", x + step * 0.45, h.charged_kwh, true, what);
    bar("bar-discharged", x + step * 0.45, h.discharged_kwh, false, what);
  }
  for (const d of days) {
    const x = ((d.start - first) / 3600) * step;
    chart.appendChild(svg("line", { x1: x, x2: x, y1: 0, y2: height, class: "midnight" }));
    const label = svg("text", { x: x + 4, y: 14, class: "day-label" });
    label.textContent = d.date;
    chart.appendChild(label);
  }
  el.appendChild(chart);
  $("energy-note").textContent =
    `Up: grid import, battery charged. Down: grid export, battery discharged. Scale ${kwh(high)} kWh up, ${kwh(low)} kWh down.`;
}

function renderEnergyDays(days, priced) {
  const body = $("energy-days").querySelector("tbody");
  body.textContent = "";
  for (const d of days.slice().reverse()) {
    const tr = document.createElement("tr");
    tr.dataset.date = d.date;
    const cells = [d.date, kwh(d.import_kwh), kwh(d.export_kwh), kwh(d.charged_kwh),
      kwh(d.discharged_kwh), `${d.covered_hours.toFixed(1)} / ${d.hours_in_day}`,
      eur(d.cost_eur), eur(d.saving_eur), eur(d.expected_saving_eur)];
    for (const c of cells) {
      const td = document.createElement("td");
      td.textContent = c;
      tr.appendChild(td);
    }
    body.appendChild(tr);
  }
  $("energy-priced").hidden = priced;
}

async function loadEnergy() {
  try {
    const { body } = await getJson(`api/energy?days=${ENERGY_DAYS}`);
    renderEnergyChart(body.days);
    renderEnergyDays(body.days, body.priced);
    $("energy-error").hidden = true;
  } catch (e) {
    $("energy-error").textContent = "Cannot load the energy account: " + e.message;
    $("energy-error").hidden = false;
  }
}

document.addEventListener("DOMContentLoaded", () => {
  loadEnergy();
  setInterval(loadEnergy, ENERGY_REFRESH_MS);
});
