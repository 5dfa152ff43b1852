// Operator page for hedgegrid_ops. Plain JavaScript, no build step, no third-party code.
//
// State arrives on the /events WebSocket (a snapshot on connect, then coalesced
// snapshots, fills, order and state events, heartbeats with /health). Actions are
// same-origin POSTs with the API key in X-API-Key; the key lives in sessionStorage,
// so it is gone when the tab closes. Every answer is shown exactly as the API gave it.
"use strict";

const KEY_STORE = "hedgegrid.apiKey";
const STALE_AFTER_MS = 6000; // three missed heartbeats
const MAX_FILLS = 50;
const MAX_EVENTS = 80;
const MAX_EQUITY_POINTS = 600;
const CLOSE_UNAUTHORIZED = 4401;
const CLOSE_BAD_MESSAGE = 4400;

const $ = (sel) => document.querySelector(sel);
const state = {
  ws: null,
  lastMessageAt: 0,
  retryMs: 1000,
  retryTimer: null,
  authFailed: false,
  status: null,
  ladders: null,
  orders: null,
  health: null,
  equity: [],
  throttleDirty: false,
};

// ---------------------------------------------------------------- formatting

function fmtNumber(value, digits) {
  if (value === null || value === undefined) return "—";
  if (typeof value !== "number" || !Number.isFinite(value)) return String(value);
  return value.toFixed(digits);
}

function fmtQty(value) {
  if (typeof value !== "number") return "—";
  return value.toFixed(6).replace(/\.?0+$/, "") || "0";
}

function fmtTime(unixSeconds) {
  if (typeof unixSeconds !== "number") return "—";
  return new Date(unixSeconds * 1000).toISOString().replace("T", " ").slice(0, 19) + "Z";
}

function fmtClock(unixSeconds) {
  return new Date(unixSeconds * 1000).toISOString().slice(11, 19);
}

function fmtDuration(seconds) {
  if (typeof seconds !== "number" || !Number.isFinite(seconds)) return "—";
  const s = Math.max(0, Math.round(seconds));
  const h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60), r = s % 60;
  return h ? `${h}h ${m}m` : m ? `${m}m ${r}s` : `${r}s`;
}

function pick(obj, path) {
  return path.split(".").reduce((o, k) => (o === null || o === undefined ? undefined : o[k]), obj);
}

function el(tag, attrs = {}, text) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
  if (text !== undefined) node.textContent = text;
  return node;
}

function svg(tag, attrs = {}, text) {
  const node = document.createElementNS("http://www.w3.org/2000/svg", tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, String(v));
  if (text !== undefined) node.textContent = text;
  return node;
}

// ---------------------------------------------------------------- rendering

function renderFields(status) {
  const source = { ...status, health: state.health || {} };
  for (const node of document.querySelectorAll("[data-field]")) {
    const value = pick(source, node.dataset.field);
    node.dataset.value = value === null || value === undefined ? "" : String(value);
    if (node.dataset.kind === "time") node.textContent = fmtTime(value);
    else if (node.dataset.kind === "qty") node.textContent = fmtQty(value);
    else if (node.dataset.digits !== undefined) {
      node.textContent = fmtNumber(value, Number(node.dataset.digits));
    } else node.textContent = value === null || value === undefined ? "—" : String(value);
    if (node.classList.contains("pnl") && typeof value === "number") {
      node.classList.toggle("pos", value > 0);
      node.classList.toggle("neg", value < 0);
    }
  }
}

function renderStatus(status) {
  state.status = status;
  document.body.dataset.snapshotTs = String(status.timestamp); // which snapshot is shown
  renderFields(status);
  if (!state.throttleDirty) {
    $("#throttle-range").value = String(status.throttle);
    $("#throttle-out").textContent = fmtNumber(status.throttle, 2);
  }
  const eq = status.equity_usdt;
  if (typeof eq === "number" && Number.isFinite(eq)) {
    const last = state.equity[state.equity.length - 1];
    if (!last || last.t !== status.timestamp) state.equity.push({ t: status.timestamp, v: eq });
    if (state.equity.length > MAX_EQUITY_POINTS) state.equity.shift();
    drawEquity();
  }
  tick();
}

function renderHealth(health) {
  state.health = health;
  $("#health-reason").textContent = health && health.reason ? health.reason : "";
  if (state.status) renderFields(state.status);
  else {
    const node = $("#health");
    node.dataset.value = health.status;
    node.textContent = health.status;
  }
}

function renderOrders(orders) {
  state.orders = orders;
  const body = $("#orders tbody");
  body.replaceChildren();
  for (const o of orders.orders) {
    const tr = el("tr", { "data-coid": o.client_order_id, "data-role": o.role });
    const cells = [
      o.client_order_id, o.side, o.position_side, o.role, o.rung === null ? "" : String(o.rung),
      o.order_type, o.price === null ? fmtNumber(o.trigger_price, 2) + " trg" : fmtNumber(o.price, 2),
      fmtQty(o.quantity), fmtQty(o.filled_qty), o.status,
    ];
    for (const c of cells) tr.append(el("td", {}, c));
    body.append(tr);
  }
  $("#orders-count").textContent = `${orders.count} open`;
}

function drawEquity() {
  const canvas = $("#equity-chart");
  const ratio = window.devicePixelRatio || 1;
  const w = canvas.clientWidth || 600, h = canvas.clientHeight || 140;
  if (canvas.width !== Math.round(w * ratio)) {
    canvas.width = Math.round(w * ratio);
    canvas.height = Math.round(h * ratio);
  }
  const ctx = canvas.getContext("2d");
  ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
  ctx.clearRect(0, 0, w, h);
  const pts = state.equity;
  if (pts.length < 2) return;
  let lo = Infinity, hi = -Infinity;
  for (const p of pts) { lo = Math.min(lo, p.v); hi = Math.max(hi, p.v); }
  if (hi - lo < 1e-9) { hi += 0.5; lo -= 0.5; }
  const t0 = pts[0].t, t1 = pts[pts.length - 1].t || t0 + 1;
  const x = (t) => 50 + ((t - t0) / Math.max(1e-9, t1 - t0)) * (w - 58);
  const y = (v) => 8 + (1 - (v - lo) / (hi - lo)) * (h - 16);
  ctx.strokeStyle = "#30363d";
  ctx.beginPath(); ctx.moveTo(50, 8); ctx.lineTo(50, h - 8); ctx.stroke();
  ctx.fillStyle = "#8b949e";
  ctx.font = "10px monospace";
  ctx.fillText(hi.toFixed(2), 2, 14);
  ctx.fillText(lo.toFixed(2), 2, h - 4);
  ctx.strokeStyle = pts[pts.length - 1].v >= pts[0].v ? "#3fb950" : "#f85149";
  ctx.lineWidth = 1.5;
  ctx.beginPath();
  pts.forEach((p, i) => (i ? ctx.lineTo(x(p.t), y(p.v)) : ctx.moveTo(x(p.t), y(p.v))));
  ctx.stroke();
}

// The ladder: one column per hedge side, every price on one vertical scale, so the
// distance between rungs and to the mid is what the market has to travel.
function drawLadder() {
  const root = $("#ladder");
  const ladders = state.ladders, orders = state.orders, status = state.status;
  root.replaceChildren();
  if (!ladders) return;
  // Drawn in CSS pixels of the element so text keeps its shape at any width.
  const W = Math.max(320, Math.round(root.clientWidth || 600));
  const H = Math.max(240, Math.round(root.clientHeight || 420));
  root.setAttribute("viewBox", `0 0 ${W} ${H}`);
  const top = 22, bottom = H - 10, axisX = 70;
  const exits = (orders ? orders.orders : []).filter((o) => o.role !== "grid");
  const exitPrice = (o) => (o.price !== null ? o.price : o.trigger_price);
  const prices = [
    ...ladders.long_ladder.map((r) => r.price),
    ...ladders.short_ladder.map((r) => r.price),
    ...exits.map(exitPrice).filter((p) => typeof p === "number"),
  ];
  if (typeof ladders.mid_price === "number") prices.push(ladders.mid_price);
  if (typeof ladders.grid_center === "number") prices.push(ladders.grid_center);
  if (!prices.length) {
    root.append(svg("text", { x: W / 2, y: H / 2, "text-anchor": "middle", class: "axis" }, "no rungs placed"));
    return;
  }
  let lo = Math.min(...prices), hi = Math.max(...prices);
  const pad = Math.max((hi - lo) * 0.06, hi * 0.0005);
  lo -= pad; hi += pad;
  const y = (p) => top + (1 - (p - lo) / (hi - lo)) * (bottom - top);
  root.setAttribute("data-lo", String(lo));
  root.setAttribute("data-hi", String(hi));
  // price axis: five ticks
  for (let i = 0; i <= 4; i++) {
    const p = lo + ((hi - lo) * i) / 4;
    root.append(svg("line", { x1: axisX, x2: W, y1: y(p), y2: y(p), stroke: "#1c2128" }));
    root.append(svg("text", { x: 4, y: y(p) + 4, class: "axis" }, p.toFixed(1)));
  }
  const colX = { LONG: [axisX + 6, (axisX + W) / 2 - 4], SHORT: [(axisX + W) / 2 + 4, W - 4] };
  root.append(svg("text", { x: colX.LONG[0] + 2, y: 11, class: "axis" }, "LONG (buy entries)"));
  root.append(svg("text", { x: colX.SHORT[0] + 2, y: 11, class: "axis" }, "SHORT (sell entries)"));
  const rung = (side, r) => {
    const [x1, x2] = colX[side];
    const g = svg("g", {
      class: "rung", "data-side": side.toLowerCase(), "data-role": "grid",
      "data-price": r.price, "data-coid": r.client_order_id, "data-y": y(r.price).toFixed(2),
    });
    const color = side === "LONG" ? "#3fb950" : "#f85149";
    g.append(svg("line", { x1, x2, y1: y(r.price), y2: y(r.price), stroke: color, "stroke-width": 2 }));
    g.append(svg("text", { x: x1 + 2, y: y(r.price) - 3 }, `#${r.rung} ${fmtQty(r.qty)} @ ${r.price.toFixed(1)}`));
    root.append(g);
  };
  ladders.long_ladder.forEach((r) => rung("LONG", r));
  ladders.short_ladder.forEach((r) => rung("SHORT", r));
  for (const o of exits) {
    const p = exitPrice(o);
    if (typeof p !== "number") continue;
    const [x1, x2] = colX[o.position_side] || colX.LONG;
    const g = svg("g", {
      class: "rung exit", "data-side": String(o.position_side).toLowerCase(), "data-role": o.role,
      "data-price": p, "data-coid": o.client_order_id,
    });
    g.append(svg("line", { x1, x2, y1: y(p), y2: y(p), stroke: "#58a6ff", "stroke-width": 1.5, "stroke-dasharray": "6 4" }));
    g.append(svg("text", { x: x2 - 4, y: y(p) - 3, "text-anchor": "end" }, `${o.role} ${fmtQty(o.quantity)} @ ${p.toFixed(1)}`));
    root.append(g);
  }
  if (typeof ladders.grid_center === "number") {
    root.append(svg("line", { x1: axisX, x2: W, y1: y(ladders.grid_center), y2: y(ladders.grid_center), stroke: "#8b949e", "stroke-dasharray": "2 4" }));
  }
  if (typeof ladders.mid_price === "number") {
    const g = svg("g", { class: "mid", "data-price": ladders.mid_price });
    g.append(svg("line", { x1: axisX, x2: W, y1: y(ladders.mid_price), y2: y(ladders.mid_price), stroke: "#e3b341", "stroke-width": 1.5 }));
    g.append(svg("text", { x: W - 4, y: y(ladders.mid_price) + 12, "text-anchor": "end" }, `mid ${ladders.mid_price.toFixed(1)}`));
    root.append(g);
  }
  for (const side of ["long", "short"]) {
    const pos = status && status.positions[side];
    if (pos && pos.quantity > 0) {
      const [x1, x2] = colX[side.toUpperCase()];
      root.append(svg("line", { x1, x2, y1: y(pos.entry_price), y2: y(pos.entry_price), stroke: "#d2a8ff", "stroke-dasharray": "1 3" }));
    }
  }
}

function addFill(fill, time) {
  const body = $("#fills tbody");
  const tr = el("tr", { "data-coid": fill.client_order_id });
  const cells = [
    fmtClock(fill.ts_event || time), fill.side, fill.position_side || "", fill.role || "",
    fmtNumber(fill.price, 2), fmtQty(fill.qty), fill.liquidity, fill.client_order_id,
  ];
  for (const c of cells) tr.append(el("td", {}, c));
  body.prepend(tr);
  while (body.children.length > MAX_FILLS) body.lastElementChild.remove();
}

function logEvent(time, text) {
  const list = $("#events");
  const li = el("li");
  li.append(el("span", { class: "t" }, fmtClock(time)), document.createTextNode(text));
  list.prepend(li);
  while (list.children.length > MAX_EVENTS) list.lastElementChild.remove();
}

function describe(msg) {
  const d = msg.data;
  switch (msg.type) {
    case "trading_state": return `trading ${d.previous} → ${d.state}: ${d.reason}`;
    case "throttle": return `throttle ${d.previous} → ${d.throttle}`;
    case "flatten": return `flatten ${d.phase}: long ${fmtQty(d.long_qty)}, short ${fmtQty(d.short_qty)}`;
    case "kill_switch": return `KILL SWITCH ${d.breaker || ""}: ${d.reason || JSON.stringify(d)}`;
    case "audit": return `audit ${d.action} → ${d.outcome}${d.detail ? ": " + d.detail : ""} (${d.client || d.actor || "?"})`;
    case "order":
      if (d.event === "rejected" || d.event === "denied") return `order ${d.event} ${d.client_order_id}: ${d.reason || ""}`;
      return null;
    default: return null;
  }
}

// ---------------------------------------------------------------- the stream

function setConn(kind, text) {
  const node = $("#conn");
  node.dataset.conn = kind;
  $("#conn-text").textContent = text;
}

function showBanner(text, info = false) {
  const b = $("#banner");
  b.hidden = !text;
  b.textContent = text || "";
  b.classList.toggle("info", info);
}

function onMessage(event) {
  state.lastMessageAt = Date.now();
  let msg;
  try { msg = JSON.parse(event.data); } catch { return; }
  switch (msg.type) {
    case "snapshot":
      state.ladders = msg.data.ladders;
      renderOrders(msg.data.orders);
      renderStatus(msg.data.status);
      drawLadder();
      break;
    case "heartbeat":
      if (msg.data.health) renderHealth(msg.data.health);
      break;
    case "fill":
      addFill(msg.data, msg.time);
      break;
    default: {
      const text = describe(msg);
      if (text) logEvent(msg.time, text);
    }
  }
  tick();
}

function connect() {
  clearTimeout(state.retryTimer);
  if (state.ws) state.ws.close();
  const proto = location.protocol === "https:" ? "wss:" : "ws:";
  const ws = new WebSocket(`${proto}//${location.host}/events`);
  state.ws = ws;
  setConn("connecting", "connecting…");
  ws.onopen = () => {
    const key = sessionStorage.getItem(KEY_STORE);
    if (key) ws.send(JSON.stringify({ type: "auth", key }));
    state.retryMs = 1000;
  };
  ws.onmessage = (ev) => {
    if (state.ws !== ws) return;
    if (state.authFailed) { state.authFailed = false; showBanner(""); }
    onMessage(ev);
  };
  ws.onclose = (ev) => {
    if (state.ws !== ws) return;
    state.ws = null;
    if (ev.code === CLOSE_UNAUTHORIZED || ev.code === CLOSE_BAD_MESSAGE) {
      state.authFailed = true;
      setConn("auth", "API key needed");
      showBanner(`Event stream refused (${ev.code}): ${ev.reason || "no valid API key"}. Enter the API key.`);
      $("#key-panel").hidden = false;
      return; // retry once a key is entered
    }
    const wait = state.retryMs;
    state.retryMs = Math.min(state.retryMs * 2, 15000);
    setConn("down", `disconnected${ev.reason ? ": " + ev.reason : ""} — retry in ${Math.round(wait / 1000)}s`);
    state.retryTimer = setTimeout(connect, wait);
  };
}

// Connection indicator and ages, once a second and after every message.
function tick() {
  if (state.ws && state.ws.readyState === WebSocket.OPEN && state.lastMessageAt) {
    const quiet = Date.now() - state.lastMessageAt;
    if (quiet > STALE_AFTER_MS) setConn("stale", `stale: no data for ${fmtDuration(quiet / 1000)}`);
    else if (state.health && state.health.status !== "healthy") setConn("stale", `live · ${state.health.status}`);
    else setConn("live", "live");
  }
  const s = state.status;
  if (s) {
    const now = Date.now() / 1000;
    $("#bar-age").textContent = s.last_bar ? `${fmtDuration(now - s.last_bar)} ago` : "none yet";
    const nf = s.funding.next_funding_time;
    $("#funding-countdown").textContent = typeof nf === "number" ? `(in ${fmtDuration(nf - now)})` : "";
  }
}

// ---------------------------------------------------------------- actions

async function call(method, path, body) {
  const headers = { Accept: "application/json" };
  const key = sessionStorage.getItem(KEY_STORE);
  if (key) headers["X-API-Key"] = key;
  const init = { method, headers, credentials: "omit", cache: "no-store" };
  if (body !== undefined) {
    headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  const resp = await fetch(path, init);
  const text = await resp.text();
  let json = null;
  try { json = JSON.parse(text); } catch { /* not JSON: shown as text */ }
  return { status: resp.status, ok: resp.ok, json, text };
}

function showResult(label, answer) {
  const node = $("#result");
  node.dataset.status = answer.ok ? "ok" : "error";
  node.dataset.http = String(answer.status);
  const body = answer.json ? JSON.stringify(answer.json, null, 1) : answer.text;
  node.textContent = `${label} → HTTP ${answer.status}\n${body}`;
}

async function act(label, path, body) {
  const buttons = document.querySelectorAll("#card-control button");
  buttons.forEach((b) => (b.disabled = true));
  try {
    const answer = await call("POST", path, body);
    showResult(label, answer);
    if (answer.status === 401) $("#key-panel").hidden = false;
  } catch (err) {
    showResult(label, { ok: false, status: 0, json: null, text: `no answer: ${err}` });
  } finally {
    buttons.forEach((b) => (b.disabled = false));
  }
}

function confirmThen(text, run) {
  const dialog = $("#confirm");
  $("#confirm-text").textContent = text;
  const yes = $("#confirm-yes"), no = $("#confirm-no");
  const done = (ok) => {
    yes.onclick = no.onclick = null;
    dialog.close();
    if (ok) run();
  };
  yes.onclick = (e) => { e.preventDefault(); done(true); };
  no.onclick = (e) => { e.preventDefault(); done(false); };
  dialog.showModal();
}

function wireControls() {
  for (const button of document.querySelectorAll("#card-control [data-action]")) {
    button.addEventListener("click", () => {
      const action = button.dataset.action;
      if (action === "flatten") {
        const side = button.dataset.side;
        confirmThen(
          `Flatten ${side}? Grid orders are cancelled and ${side === "both" ? "both legs are" : "the " + side + " leg is"} closed at market.`,
          () => act(`flatten ${side}`, "/flatten", { side }),
        );
      } else if (action === "stop") {
        act("stop", "/stop", {});
      } else {
        act("start", "/start", {});
      }
    });
  }
  const range = $("#throttle-range");
  range.addEventListener("input", () => {
    state.throttleDirty = true;
    $("#throttle-out").textContent = Number(range.value).toFixed(2);
  });
  $("#throttle-apply").addEventListener("click", async () => {
    await act(`set-throttle ${range.value}`, "/set-throttle", { throttle: Number(range.value) });
    state.throttleDirty = false;
  });
}

function wireKey() {
  const panel = $("#key-panel");
  $("#key-button").addEventListener("click", () => {
    panel.hidden = !panel.hidden;
    if (!panel.hidden) $("#key-input").focus();
  });
  $("#key-form").addEventListener("submit", async (e) => {
    e.preventDefault();
    const key = $("#key-input").value.trim();
    if (!key) return;
    sessionStorage.setItem(KEY_STORE, key);
    $("#key-input").value = "";
    const answer = await call("GET", "/status");
    if (answer.status === 401) {
      showBanner(`API key refused: ${answer.json ? answer.json.detail : answer.text}`);
      setConn("auth", "API key refused");
      return;
    }
    showBanner("");
    panel.hidden = true;
    connect();
  });
  $("#key-forget").addEventListener("click", () => {
    sessionStorage.removeItem(KEY_STORE);
    showBanner("Key forgotten for this tab.", true);
    connect();
  });
}

document.addEventListener("DOMContentLoaded", () => {
  wireControls();
  wireKey();
  window.addEventListener("resize", () => { drawEquity(); drawLadder(); });
  setInterval(tick, 1000);
  start();
});

// Ask /status first: a server with a key answers 401 without one, and the page asks for
// the key instead of opening a stream that would be refused.
async function start() {
  let answer;
  try {
    answer = await call("GET", "/status");
  } catch (err) {
    answer = { status: 0 };
  }
  if (answer.status === 401) {
    setConn("auth", "API key needed");
    showBanner(`API key needed: ${answer.json ? answer.json.detail : answer.text}`);
    $("#key-panel").hidden = false;
    return;
  }
  connect();
}
