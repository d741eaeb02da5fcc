// The emulator's page: draws the control API's answers and calls it for the actions. Plain
// DOM, no framework, no build step; user data is only ever set as text, never as HTML.
"use strict";

const state = { selected: null, version: 0 };

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs || {})) {
    if (name === "class") node.className = value;
    else if (name.startsWith("on")) node.addEventListener(name.slice(2), value);
    else node.setAttribute(name, value);
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

function badge(text, kind) {
  return el("span", { class: "badge " + (kind || "") }, text);
}

// Every request is JSON: the emulator refuses state changes that are not.
async function api(method, path, body) {
  const init = { method, headers: { "Content-Type": "application/json" } };
  if (method !== "GET") init.body = JSON.stringify(body || {});
  const response = await fetch("/emulator" + path, init);
  const data = await response.json().catch(() => null);
  if (!response.ok) {
    const why = data && data.error ? data.error : "HTTP " + response.status;
    throw new Error(why);
  }
  return data;
}

function legName(call) {
  if (call.parent_call_sid) return "child leg";
  return call.client_leg ? "parent leg" : "call";
}

// Who is on the leg, as the Call resource says: from → to, and its direction.
function ends(call) {
  return el("span", { class: "ends" },
    el("code", {}, call.from), " → ", el("code", {}, call.to), " ", badge(call.direction, ""));
}

// The Voice SDK client on this leg: the caller of an inbound leg, the callee of another.
function clientOn(call) {
  const own = call.direction === "inbound" ? call.from : call.to;
  return own && own.startsWith("client:") ? own.slice("client:".length) : null;
}

function drawCalls(calls) {
  const list = document.getElementById("calls");
  list.replaceChildren();
  if (calls.length === 0) list.append(el("li", { class: "muted" }, "No calls yet."));
  for (const call of calls) {
    const here = call.client_call_sid === call.sid;
    const item = el("li", { class: call.sid === state.selected ? "selected" : "", "data-sid": call.sid },
      el("button", { type: "button", onclick: () => select(call.sid), "aria-label": "Show call " + call.sid },
        el("span", { class: "sid" }, call.sid),
        badge(call.status, call.status === "in-progress" ? "ok" : call.status === "ringing" ? "warn" : ""),
        el("br"),
        el("span", { class: "muted" }, legName(call) + (call.client_leg ? " (" + call.client_leg + ")" : "")),
        here ? badge("client here", "ok") : badge("no client", ""),
        clientOn(call) ? badge("identity " + clientOn(call), "ok") : null,
        el("br"), ends(call),
        call.conference_sid ? el("div", { class: "muted" }, "in conference " + call.conference_sid) : null));
    list.append(item);
  }
}

function content(text) {
  return el("pre", {}, text);
}

function attemptLine(a) {
  const faults = [];
  if (a.dropped) faults.push(badge("dropped first", "bad"));
  if (a.duplicate) faults.push(badge("duplicate", "warn"));
  if (a.reordered) faults.push(badge("reordered", "warn"));
  const outcome = a.status !== null && a.status !== undefined
    ? badge("status " + a.status, a.status >= 200 && a.status < 300 ? "ok" : "bad")
    : badge(a.error || "no answer", "bad");
  return el("li", { class: "attempt" },
    "#" + a.number + " ", outcome, " ", el("code", {}, a.url),
    " · " + a.elapsed_ms + " ms · signed " + a.signature_scheme, faults,
    a.status !== null && a.error ? el("div", { class: "muted" }, a.error) : null);
}

function drawTimeline(t) {
  const items = [];
  for (const m of t.received) {
    items.push([m.at_ms, el("li", { class: "in" },
      el("strong", {}, "→ client received "), badge("on " + m.call_sid, ""), " ", el("span", { class: "sid" }, m.sid),
      content(JSON.stringify(m.content)))]);
  }
  for (const d of t.dropped) {
    items.push([d.message.at_ms, el("li", { class: "dropped" },
      el("strong", {}, "✕ dropped by the client "), badge("sent to " + d.call_sid, "bad"), " ",
      el("span", { class: "sid" }, d.message.sid),
      content(JSON.stringify(d.message.content)),
      el("div", { class: "reason" }, d.reason))]);
  }
  for (const m of t.sent) {
    const deliveries = m.deliveries.map((d) => el("li", {},
      el("div", {}, "to ", el("code", {}, d.callback), " ",
        d.delivered ? badge("delivered", "ok") : d.done ? badge("failed", "bad") : badge("in progress", "warn")),
      el("ol", { class: "attempts" }, d.attempts.map(attemptLine))));
    items.push([m.at_ms, el("li", { class: "out" },
      el("strong", {}, "← client sent "), badge("CallSid " + m.call_sid, ""), " ",
      badge("SequenceNumber " + m.sequence_number, ""), " ", el("span", { class: "sid" }, m.sid),
      content(m.content_text),
      m.deliveries.length === 0 ? el("div", { class: "muted" }, "no subscription: nothing posted")
        : el("ul", { class: "deliveries" }, deliveries))]);
  }
  for (const r of t.refused) {
    items.push([r.at_ms, el("li", { class: "refused" },
      el("strong", {}, "REST refused "), el("code", {}, r.method + " " + r.path), " ",
      badge(r.status === null ? "no answer" : "HTTP " + r.status, "bad"),
      r.code ? badge("code " + r.code, "bad") : null,
      el("div", {}, r.message))]);
  }
  items.sort((a, b) => a[0] - b[0]);
  const list = document.getElementById("timeline");
  list.replaceChildren(...items.map(([, node]) => node));
  if (items.length === 0) list.append(el("li", { class: "muted" }, "Nothing happened in this call yet."));

  const subs = document.getElementById("subscriptions");
  subs.replaceChildren(...t.subscriptions.map((s) => el("li", {},
    el("span", { class: "sid" }, s.sid), " ", badge(s.method, ""), " on ", el("span", { class: "sid" }, s.call_sid),
    " → ", el("code", {}, s.callback))));
  if (t.subscriptions.length === 0) subs.append(el("li", { class: "muted" }, "None."));

  const legs = document.getElementById("legs");
  legs.replaceChildren(...t.legs.map((l) => el("div", { class: "leg" },
    legName(l) + ": ", el("span", { class: "sid" }, l.sid), badge(l.status, ""),
    l.client_call_sid === l.sid ? badge("client here", "ok") : null,
    clientOn(l) ? badge("identity " + clientOn(l), "ok") : null, " ", ends(l))));
}

function drawConferences(conferences) {
  const list = document.getElementById("conferences");
  list.replaceChildren();
  if (conferences.length === 0) list.append(el("li", { class: "muted" }, "No conferences."));
  for (const c of conferences) {
    list.append(el("li", { "data-sid": c.sid },
      el("span", { class: "sid" }, c.sid), " ", badge(c.status, c.status === "in-progress" ? "ok" : ""),
      " ", c.friendly_name,
      el("ul", {}, c.participants.map((p) => el("li", {},
        el("button", { type: "button", onclick: () => select(p.call_sid), "aria-label": "Show call " + p.call_sid },
          el("span", { class: "sid" }, p.call_sid)), " ", badge(p.status, "ok"))))));
  }
}

async function select(sid) {
  state.selected = sid;
  document.getElementById("call-title").textContent = "Call " + sid;
  document.getElementById("call-actions").hidden = false;
  await refresh();
}

async function refresh() {
  const calls = await api("GET", "/calls");
  drawCalls(calls);
  drawConferences(await api("GET", "/conferences"));
  if (state.selected && calls.some((c) => c.sid === state.selected)) {
    drawTimeline(await api("GET", "/calls/" + state.selected + "/timeline"));
  } else if (state.selected) {
    state.selected = null;
    document.getElementById("call-title").textContent = "No call selected";
    document.getElementById("call-actions").hidden = true;
    for (const id of ["timeline", "subscriptions", "legs"]) document.getElementById(id).replaceChildren();
  }
}

// Live: the server answers when something changed (or after a while).
async function follow() {
  const live = document.getElementById("live");
  live.textContent = "live";
  for (;;) {
    try {
      const { version } = await api("GET", "/changes?after=" + state.version);
      if (version !== state.version) {
        state.version = version;
        await refresh();
      }
      live.textContent = "live";
    } catch (e) {
      live.textContent = "disconnected: " + e.message;
      await new Promise((done) => setTimeout(done, 1000));
    }
  }
}

function report(id, text) {
  document.getElementById(id).textContent = text;
}

async function createCall(event) {
  event.preventDefault();
  const leg = document.getElementById("new-call-leg").value;
  const status = document.getElementById("new-call-status").value;
  const body = leg === "single" ? { status } : { status, client_leg: leg };
  try {
    const call = await api("POST", "/calls", body);
    await select(call.sid);
  } catch (e) {
    report("settings-result", e.message);
  }
}

async function send(event) {
  event.preventDefault();
  const text = document.getElementById("content").value;
  try {
    JSON.parse(text);
  } catch (e) {
    report("content-error", "Not valid JSON: " + e.message);
    return;
  }
  try {
    await api("POST", "/calls/" + state.selected + "/client-messages", { content_text: text });
    report("content-error", "");
  } catch (e) {
    report("content-error", "Refused: " + e.message);
  }
}

async function complete() {
  try {
    await api("POST", "/calls/" + state.selected, { status: "completed" });
  } catch (e) {
    report("content-error", e.message);
  }
}

async function applySettings(event) {
  event.preventDefault();
  const rate = (id) => Number(document.getElementById(id).value || 0);
  const limit = document.getElementById("concurrency-limit").value;
  try {
    await api("POST", "/callback-faults", {
      duplicate: rate("fault-duplicate"), reorder: rate("fault-reorder"), drop_first: rate("fault-drop-first"),
    });
    await api("POST", "/limits", { concurrency_limit: limit === "" ? null : Number(limit) });
    report("settings-result", "Applied.");
  } catch (e) {
    report("settings-result", "Refused: " + e.message);
  }
}

async function reset() {
  await api("POST", "/reset");
  state.selected = null;
  report("settings-result", "Reset: every call, message and counter forgotten.");
  await refresh();
}

async function loadSettings() {
  const s = await api("GET", "/settings");
  document.getElementById("fault-duplicate").value = s.callback_faults.duplicate;
  document.getElementById("fault-reorder").value = s.callback_faults.reorder;
  document.getElementById("fault-drop-first").value = s.callback_faults.drop_first;
  document.getElementById("concurrency-limit").value = s.concurrency_limit === null ? "" : s.concurrency_limit;
}

document.addEventListener("DOMContentLoaded", async () => {
  document.getElementById("new-call").addEventListener("submit", createCall);
  document.getElementById("send").addEventListener("submit", send);
  document.getElementById("complete-call").addEventListener("click", complete);
  document.getElementById("settings").addEventListener("submit", applySettings);
  document.getElementById("reset").addEventListener("click", reset);
  const about = await api("GET", "/");
  document.getElementById("account").textContent = "account " + about.account_sid + " · " + about.base_url;
  await loadSettings();
  await refresh();
  follow();
});
