// The eventfabric console page: reads the JSON API (/api/...) of `fabric ui`
// and renders it. Every value from the data directory is inserted as text,
// never as HTML.
"use strict";

const $ = (id) => document.getElementById(id);

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === "class") node.className = v; else node.setAttribute(k, v);
  }
  for (const c of children) {
    if (c === null || c === undefined) continue;
    node.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return node;
}

function bytes(n) {
  if (!n) return "0 B";
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) { n /= 1024; i++; }
  return (i === 0 ? n : n.toFixed(1)) + " " + units[i];
}

async function api(path, options) {
  const res = await fetch(path, options);
  let body;
  try { body = await res.json(); } catch (e) { body = { error: "not JSON: " + e }; }
  if (!res.ok) throw new Error(body.error || ("HTTP " + res.status));
  return body;
}

function fill(tbody, rows, empty, cols) {
  tbody.replaceChildren();
  if (rows.length === 0) {
    tbody.append(el("tr", {}, el("td", { colspan: cols, class: "muted" }, empty)));
  }
  for (const r of rows) tbody.append(r);
}

function showError(e) {
  const box = $("error");
  box.hidden = false;
  box.textContent = String(e.message || e);
}

let state = { info: null, topics: [] };

function tierBytes(p, tier) {
  const t = (p.tiers || []).find((x) => x.tier === tier);
  return t ? t.bytes : 0;
}

function renderTopics(topics) {
  const rows = [];
  for (const t of topics) {
    t.partitions.forEach((p, i) => {
      const dead = t.name.endsWith(".dlq");
      rows.push(el("tr", { class: (i === 0 ? "topic-first" : "") + (dead ? " dead-topic" : ""), "data-topic": t.name },
        el("td", {}, i === 0 ? el("strong", {}, t.name) : "", i === 0 && dead ? el("span", { class: "muted small" }, " dead letters") : ""),
        el("td", {}, p.partition),
        el("td", { class: "num" }, p.earliest_offset),
        el("td", { class: "num" }, p.next_offset),
        el("td", { class: "num" }, p.next_offset - p.earliest_offset),
        el("td", { class: "num" }, bytes(tierBytes(p, "hot"))),
        el("td", { class: "num" }, bytes(tierBytes(p, "warm"))),
        el("td", { class: "num" }, bytes(tierBytes(p, "cold"))),
        el("td", { class: "num" }, i === 0 && t.dlq_records ? el("span", { class: "badge reason" }, t.dlq_records) : "")));
    });
  }
  fill($("topics").tBodies[0], rows, "no topics", 9);
}

function renderGroups(groups) {
  const rows = [];
  for (const g of groups) {
    g.partitions.forEach((p, i) => {
      rows.push(el("tr", { "data-group": g.group },
        el("td", {}, i === 0 ? el("strong", {}, g.group) : ""),
        el("td", {}, i === 0 ? g.topic : ""),
        el("td", {}, p.partition),
        el("td", { class: "num" }, p.committed === null ? "—" : p.committed),
        el("td", { class: "num" }, p.end),
        el("td", { class: "num " + (p.lag > 0 ? "lag-high" : "lag-zero") }, p.lag)));
    });
    rows.push(el("tr", { class: "muted" }, el("td", {}, ""), el("td", {}, ""), el("td", {}, "total"),
      el("td", {}, ""), el("td", {}, ""),
      el("td", { class: "num group-lag " + (g.lag > 0 ? "lag-high" : "lag-zero") }, "lag " + g.lag)));
  }
  fill($("groups").tBodies[0], rows, "no consumer groups", 6);
}

function renderQueues(queues) {
  fill($("queues").tBodies[0],
    queues.map((q) => el("tr", {}, el("td", {}, q.name), el("td", { class: "num" }, bytes(q.state_bytes)))),
    "no queues", 2);
}

function chooseDlqTopic(topics) {
  const wanted = new URLSearchParams(location.search).get("dlq");
  const sources = topics.filter((t) => !t.name.endsWith(".dlq"));
  const select = $("dlq-topic");
  const previous = select.value;
  select.replaceChildren(...sources.map((t) =>
    el("option", { value: t.name }, t.name + (t.dlq_records ? " (" + t.dlq_records + ")" : ""))));
  const pick = [wanted, previous].find((n) => n && sources.some((t) => t.name === n))
    || (sources.find((t) => t.dlq_records > 0) || sources[0] || {}).name;
  if (pick) select.value = pick;
  return pick;
}

async function loadDlq() {
  const topic = $("dlq-topic").value;
  const tbody = $("dlq").tBodies[0];
  if (!topic) { fill(tbody, [], "no topics", 8); return; }
  const q = new URLSearchParams();
  for (const [key, id] of [["reason", "dlq-reason"], ["type", "dlq-type"], ["q", "dlq-text"]]) {
    const v = $(id).value.trim();
    if (v) q.set(key, v);
  }
  const body = await api("/api/dlq/" + encodeURIComponent(topic) + "?" + q.toString());
  $("dlq-status").textContent = body.matched + " dead letters match in " + body.dlq_topic
    + (body.shown < body.matched ? " (first " + body.shown + " shown)" : "")
    + (body.read_error ? " — stopped at a damaged record: " + body.read_error : "");
  fill(tbody, body.entries.map((e, index) => {
    const env = e.envelope || {};
    const hashClass = e.hash_status === "verified" ? "verified" : "mismatch";
    const mark = e.hash_status === "verified" ? "✓ verified" : "✗ mismatch";
    return el("tr", { class: "dlq-entry" },
      el("td", {}, e.dlq_partition + ":" + e.dlq_offset),
      el("td", { class: "small" }, String(e.dead_lettered_at).replace(/\.\d+Z$/, "Z")),
      el("td", {}, el("span", { class: "badge reason dlq-reason" }, e.reason)),
      el("td", { class: "num" }, e.attempts),
      el("td", {}, e.error),
      el("td", {}, env.event_type || "—"),
      el("td", {}, el("span", { class: "hash-mark " + hashClass }, mark), el("br", {}),
        el("span", { class: "hash", title: e.payload_sha256 }, e.payload_sha256.slice(0, 16) + "…")),
      el("td", {}, el("details", index === 0 ? { open: "" } : {}, el("summary", {}, e.event_id || "raw record"),
        el("pre", {}, JSON.stringify(e.envelope, null, 2)))));
  }), "no dead letters", 8);
}

async function replay() {
  const topic = $("dlq-topic").value;
  const reason = $("dlq-reason").value;
  if (!confirm("Replay the " + (reason || "all") + " dead letters of " + topic + " back into it?")) return;
  try {
    const body = await api("/api/dlq/" + encodeURIComponent(topic) + "/replay", {
      method: "POST", headers: { "Content-Type": "application/json" },
      body: JSON.stringify(reason ? { reason } : {}),
    });
    $("dlq-status").textContent = "replayed " + body.replayed.length + ", already replayed "
      + body.already_replayed + ", unreplayable " + body.unreplayable.length;
    await refresh();
  } catch (e) { showError(e); }
}

async function refresh() {
  $("error").hidden = true;
  try {
    const [info, topics, groups, queues] = await Promise.all([
      api("/api/info"), api("/api/topics"), api("/api/groups"), api("/api/queues")]);
    state.info = info;
    state.topics = topics.topics;
    $("info").textContent = info.data_dir + " · v" + info.version + " · replay "
      + (info.allow_replay ? "enabled (" + info.replay_rate_per_sec + "/s)" : "disabled");
    const button = $("dlq-replay");
    button.disabled = !info.allow_replay;
    button.title = info.allow_replay ? "" : "start fabric ui with --allow-replay to enable";
    renderTopics(topics.topics);
    renderGroups(groups.groups);
    renderQueues(queues.queues);
    chooseDlqTopic(topics.topics);
    await loadDlq();
  } catch (e) { showError(e); }
}

$("refresh").addEventListener("click", refresh);
$("dlq-topic").addEventListener("change", () => loadDlq().catch(showError));
$("dlq-filters").addEventListener("submit", (ev) => { ev.preventDefault(); loadDlq().catch(showError); });
$("dlq-replay").addEventListener("click", replay);
refresh();
