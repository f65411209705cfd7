// The zcell-sched page: live status, today's and tomorrow's schedule as
// timelines, the entry editor (whole-document PUT with If-Match, so an edit
// made against an old copy is refused), and 24 h plots.
"use strict";

const REFRESH_MS = 5000;
const $ = (id) => document.getElementById(id);

const state = {
  doc: {},        // the schedule document as last loaded
  etag: null,     // its ETag, sent back as If-Match
  editing: null,  // the key being edited, if any
  today: null,    // YYYYMMDD, the server's (home's) date
  zone: undefined, // the home's time zone; times show on its clock
  plot: null,
};

// ---- helpers ----

function kindOf(value) {
  if (value === "netzero") return "netzero";
  if (value === "netzero+") return "netzeroplus";
  if (typeof value === "number" && value > 0) return "charge";
  if (typeof value === "number" && value < 0) return "discharge";
  return "idle";
}

function describe(value) {
  if (value === "netzero") return "NetZero: discharge to cover import, charge from export";
  if (value === "netzero+") return "NetZero+: charge from surplus only, never discharge";
  if (typeof value === "number" && value > 0) return `charge at ${value} W`;
  if (typeof value === "number" && value < 0) return `discharge at ${-value} W`;
  return "idle (0 W)";
}

function short(value) {
  if (value === "netzero") return "NZ";
  if (value === "netzero+") return "NZ+";
  if (typeof value === "number" && value !== 0) return (value > 0 ? "+" : "") + value + " W";
  return "";
}

function minutes(hhmm) {
  return parseInt(hhmm.slice(0, 2), 10) * 60 + parseInt(hhmm.slice(2, 4), 10);
}

function ago(seconds) {
  if (seconds == null) return "";
  if (seconds < 90) return `${Math.round(seconds)} s ago`;
  if (seconds < 5400) return `${Math.round(seconds / 60)} min ago`;
  return `${(seconds / 3600).toFixed(1)} h ago`;
}

function clock(unix) {
  if (unix == null) return "–";
  return new Date(unix * 1000).toLocaleString([], { dateStyle: "short", timeStyle: "medium", timeZone: state.zone });
}

function headers(extra) {
  const h = Object.assign({ "Content-Type": "application/json" }, extra || {});
  const token = $("token").value.trim();
  if (token) h["Authorization"] = "Bearer " + token;
  return h;
}

async function getJson(url) {
  const r = await fetch(url, { headers: headers(), cache: "no-store" });
  const body = await r.json().catch(() => ({}));
  if (!r.ok) throw new Error(body.error || `${url}: HTTP ${r.status}`);
  return { body, etag: r.headers.get("ETag") };
}

function nextDay(yyyymmdd) {
  const d = new Date(Date.UTC(+yyyymmdd.slice(0, 4), +yyyymmdd.slice(4, 6) - 1, +yyyymmdd.slice(6, 8) + 1));
  return d.toISOString().slice(0, 10).replaceAll("-", "");
}

function pretty(yyyymmdd) {
  return `${yyyymmdd.slice(0, 4)}-${yyyymmdd.slice(4, 6)}-${yyyymmdd.slice(6, 8)}`;
}

// ---- the timelines ----

function renderTimeline(el, resolved, nowHHmm) {
  el.textContent = "";
  // Merge runs of the same value into one segment.
  const segs = [];
  for (const r of resolved) {
    const v = r.value == null ? 0 : r.value;
    const start = minutes(r.time);
    const last = segs[segs.length - 1];
    if (last && last.value === v) continue;
    if (last) last.end = start;
    segs.push({ start, end: 1440, value: v, key: r.key });
  }
  for (const s of segs) {
    const div = document.createElement("div");
    div.className = "seg " + kindOf(s.value);
    div.style.width = ((s.end - s.start) / 14.4) + "%";
    div.dataset.value = JSON.stringify(s.value);
    div.dataset.start = String(s.start);
    const hhmm = (m) => String(Math.floor(m / 60)).padStart(2, "0") + ":" + String(m % 60).padStart(2, "0");
    div.title = `${hhmm(s.start)}–${hhmm(s.end)}: ${describe(s.value)}` + (s.key ? ` (${s.key})` : "");
    if (s.end - s.start >= 60) div.textContent = short(s.value);
    el.appendChild(div);
  }
  if (nowHHmm) {
    const mark = document.createElement("div");
    mark.className = "now-mark";
    mark.style.left = (minutes(nowHHmm) / 14.4) + "%";
    mark.title = "now";
    el.appendChild(mark);
  }
}

// ---- the entry list and editor ----

function renderEntries() {
  const body = document.querySelector("#entries tbody");
  body.textContent = "";
  const keys = Object.keys(state.doc).sort();
  $("entries-empty").hidden = keys.length > 0;
  for (const key of keys) {
    const value = state.doc[key];
    const tr = document.createElement("tr");
    tr.dataset.key = key;
    if (key === state.editing) tr.className = "editing";
    const cells = [key, JSON.stringify(value), describe(value)];
    cells.forEach((text, i) => {
      const td = document.createElement("td");
      if (i === 0) {
        const code = document.createElement("code");
        code.textContent = text;
        td.appendChild(code);
      } else {
        td.textContent = text;
      }
      tr.appendChild(td);
    });
    const td = document.createElement("td");
    const edit = document.createElement("button");
    edit.type = "button";
    edit.textContent = "Edit";
    edit.className = "edit";
    edit.onclick = () => startEdit(key);
    const del = document.createElement("button");
    del.type = "button";
    del.textContent = "Delete";
    del.className = "delete";
    del.onclick = () => save((doc) => { delete doc[key]; });
    td.append(edit, del);
    tr.appendChild(td);
    body.appendChild(tr);
  }
}

function formValue() {
  const kind = document.querySelector("input[name=kind]:checked").value;
  const watts = $("entry-watts").value.trim();
  switch (kind) {
    case "netzero": return "netzero";
    case "netzero+": return "netzero+";
    case "idle": return 0;
    // Sent as typed: the server says what is wrong with it.
    case "charge": return /^\d+$/.test(watts) ? +watts : watts;
    default: return /^\d+$/.test(watts) ? -watts : "-" + watts;
  }
}

function startEdit(key) {
  state.editing = key;
  const value = state.doc[key];
  $("entry-key").value = key;
  const kind = value === "netzero" || value === "netzero+" ? value
    : value > 0 ? "charge" : value < 0 ? "discharge" : "idle";
  document.querySelector(`input[name=kind][value="${kind}"]`).checked = true;
  if (typeof value === "number" && value !== 0) $("entry-watts").value = Math.abs(value);
  $("form-title").textContent = "Edit " + key;
  $("entry-cancel").hidden = false;
  syncWatts();
  renderEntries();
  $("entry-key").focus();
}

function stopEdit() {
  state.editing = null;
  $("form-title").textContent = "Add an entry";
  $("entry-cancel").hidden = true;
  renderEntries();
}

function syncWatts() {
  const kind = document.querySelector("input[name=kind]:checked").value;
  $("watts-label").hidden = !(kind === "charge" || kind === "discharge");
}

function showErrors(message, entries) {
  const box = $("form-error");
  box.textContent = "";
  const p = document.createElement("div");
  p.textContent = message;
  box.appendChild(p);
  if (entries && entries.length) {
    const ul = document.createElement("ul");
    for (const e of entries) {
      const li = document.createElement("li");
      li.textContent = (e.key ? `${e.key}: ` : "") + e.error;
      li.dataset.key = e.key || "";
      ul.appendChild(li);
    }
    box.replaceChildren(ul);
  }
  box.hidden = false;
  const key = $("entry-key").value;
  $("entry-key").classList.toggle("invalid", !!(entries || []).find((e) => e.key === key));
}

function clearErrors() {
  $("form-error").hidden = true;
  $("entry-key").classList.remove("invalid");
}

// Applies `change` to a copy of the loaded document and PUTs it whole with
// If-Match: the server refuses it (412) if anyone changed the schedule since.
async function save(change) {
  clearErrors();
  const doc = JSON.parse(JSON.stringify(state.doc));
  change(doc);
  let r;
  try {
    r = await fetch("api/schedule", {
      method: "PUT",
      headers: headers({ "If-Match": state.etag || '""' }),
      body: JSON.stringify(doc),
    });
  } catch (e) {
    showErrors("The server did not answer: " + e.message);
    return false;
  }
  const body = await r.json().catch(() => ({}));
  if (r.status === 412) {
    $("stale").hidden = false;
    return false;
  }
  if (!r.ok) {
    showErrors(body.error || `HTTP ${r.status}`, body.errors);
    return false;
  }
  $("stale").hidden = true;
  stopEdit();
  await loadSchedule();
  return true;
}

async function submitEntry(event) {
  event.preventDefault();
  const key = $("entry-key").value.trim();
  const value = formValue();
  const original = state.editing;
  await save((doc) => {
    if (original && original !== key) delete doc[original];
    doc[key] = value;
  });
}

// ---- loading ----

async function loadSchedule() {
  const sched = await getJson("api/schedule");
  state.doc = sched.body;
  state.etag = sched.etag;
  renderEntries();
  const today = await getJson("schedule/api/charge_schedule_api.php");
  state.today = today.body.date;
  const tomorrowDate = nextDay(state.today);
  const tomorrow = await getJson("schedule/api/charge_schedule_api.php?date=" + tomorrowDate);
  $("today-date").textContent = pretty(state.today);
  $("tomorrow-date").textContent = pretty(tomorrowDate);
  renderTimeline($("timeline-today"), today.body.resolved, today.body.currentTime);
  renderTimeline($("timeline-tomorrow"), tomorrow.body.resolved, null);
}

async function loadStatus() {
  let live;
  try {
    const status = (await getJson("api/status")).body;
    live = status.live;
    state.zone = status.time_zone;
  } catch (e) {
    $("status-updated").textContent = "Status unavailable: " + e.message;
    return;
  }
  const pill = $("status-alive");
  if (live.last_seen == null) {
    pill.className = "pill unknown";
    pill.textContent = "no controller yet";
    $("status-controller").textContent = "never heard from";
  } else if (live.alive) {
    pill.className = "pill alive";
    pill.textContent = "controller alive";
    $("status-controller").textContent = "alive since " + clock(live.since);
  } else {
    pill.className = "pill dead";
    pill.textContent = "controller silent";
    $("status-controller").textContent = "not running since " + clock(live.since);
  }
  $("status-value").textContent = live.value == null ? "–"
    : describe(live.value) + (live.value_since ? ` (since ${clock(live.value_since)})` : "");
  // The owner's override replaces the schedule's value until it ends.
  const manual = live.override;
  $("status-override-row").hidden = manual == null;
  $("status-override").textContent = manual == null ? "–"
    : manual.mode + (manual.mode === "charge" || manual.mode === "discharge" ? ` ${manual.watts} W` : "")
      + (manual.until == null ? " until cleared" : ` until ${clock(manual.until)}`)
      + (manual.by ? ` (set from ${manual.by})` : "");
  $("status-command").textContent = live.last_command == null ? "–"
    : JSON.stringify(live.last_command) + ` (${ago(live.now - live.last_command_at)})`;
  $("status-soc").textContent = live.soc == null ? "–" : `${live.soc} %`;
  $("status-battery").textContent = live.battery_w == null ? "–"
    : live.battery_w > 0 ? `charging ${live.battery_w} W`
    : live.battery_w < 0 ? `discharging ${-live.battery_w} W` : "0 W";
  $("status-meter").textContent = live.meter_w == null ? "–"
    : (live.meter_w >= 0 ? `importing ${live.meter_w} W` : `exporting ${-live.meter_w} W`)
      + ` (${ago(live.meter_age)})`;
  $("status-updated").textContent = "Updated " + new Date().toLocaleTimeString([], { timeZone: state.zone })
    + (state.zone ? ` (times in ${state.zone})` : "");
}

// ---- plots ----

const COLORS = {
  charge: "rgba(46,157,74,0.13)", discharge: "rgba(224,117,45,0.13)",
  netzero: "rgba(47,111,214,0.13)", netzeroplus: "rgba(138,79,209,0.13)", idle: "rgba(0,0,0,0)",
};

async function loadPlots() {
  let data;
  try {
    data = (await getJson("api/data?hours=24")).body;
  } catch (e) {
    $("plot-note").textContent = "Readings unavailable: " + e.message;
    return;
  }
  // One time axis: every sample time, each series null where it has none.
  const times = [...new Set([...data.meter.map((r) => r[0]), ...data.device.map((r) => r[0])])].sort((a, b) => a - b);
  const index = new Map(times.map((t, i) => [t, i]));
  const grid = times.map(() => null), battery = times.map(() => null), soc = times.map(() => null);
  for (const [t, w] of data.meter) grid[index.get(t)] = w;
  for (const [t, s, w] of data.device) { soc[index.get(t)] = s; battery[index.get(t)] = w; }
  const changes = data.schedule;
  const bands = {
    hooks: {
      drawClear: [(u) => {
        // The schedule behind the lines: each value from its start to the next.
        const ctx = u.ctx;
        const { top, height } = u.bbox;
        changes.forEach(([t, v], i) => {
          const end = i + 1 < changes.length ? changes[i + 1][0] : data.now;
          const x0 = u.valToPos(Math.max(t, data.from), "x", true);
          const x1 = u.valToPos(end, "x", true);
          ctx.fillStyle = COLORS[kindOf(v)];
          ctx.fillRect(x0, top, Math.max(x1 - x0, 1), height);
        });
      }],
    },
  };
  const width = Math.max(300, $("plot").clientWidth || 600);
  const opts = {
    width, height: 300,
    tzDate: (ts) => uPlot.tzDate(new Date(ts * 1000), data.time_zone),
    scales: { x: { time: true, range: [data.from, data.now] }, soc: { range: [0, 100] } },
    series: [
      {},
      { label: "Grid W", stroke: "#1d2430", width: 1.5, spanGaps: true },
      { label: "Battery W", stroke: "#e0752d", width: 1.5, spanGaps: true },
      { label: "SoC %", stroke: "#2e9d4a", width: 1.5, scale: "soc", spanGaps: true },
    ],
    axes: [{}, { label: "W" }, { scale: "soc", side: 1, label: "%", grid: { show: false } }],
    plugins: [bands],
  };
  const rows = [times, grid, battery, soc];
  if (state.plot) state.plot.destroy();
  state.plot = new uPlot(opts, rows, $("plot"));
  $("plot-note").textContent = times.length
    ? `${data.meter.length} meter and ${data.device.length} battery samples; shading: the schedule value in force.`
    : "No readings yet: the controller posts them to this server (data_url).";
}

// ---- start ----

async function refresh() {
  await Promise.all([loadStatus(), loadPlots()]);
}

document.addEventListener("DOMContentLoaded", async () => {
  $("token").value = localStorage.getItem("zcell-token") || "";
  $("token").addEventListener("change", () => localStorage.setItem("zcell-token", $("token").value.trim()));
  $("entry-form").addEventListener("submit", submitEntry);
  $("entry-cancel").addEventListener("click", stopEdit);
  $("stale-reload").addEventListener("click", async () => { $("stale").hidden = true; await loadSchedule(); });
  document.querySelectorAll("input[name=kind]").forEach((r) => r.addEventListener("change", syncWatts));
  syncWatts();
  try {
    await loadSchedule();
  } catch (e) {
    showErrors("Cannot load the schedule: " + e.message);
  }
  await refresh();
  setInterval(refresh, REFRESH_MS);
  // The timeline's "now" mark and the day roll over without a reload.
  setInterval(() => loadSchedule().catch(() => {}), 60000);
  window.addEventListener("resize", () => state.plot && state.plot.setSize({ width: $("plot").clientWidth, height: 300 }));
});
