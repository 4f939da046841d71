// The cxrd worklist: signs in with a token kept in this tab's sessionStorage only, lists stored
// results from GET /results, and shows one result's image, heatmap, findings and PDF, each
// fetched with the token (images become blob: URLs; nothing is loaded by a bare URL). Text from
// results is always set with textContent, never parsed as HTML.
"use strict";

const FINDINGS = ["Tuberculosis", "Cardiomegaly", "Pleural Thickening", "Pleural Effusion",
  "Pneumothorax", "Consolidation", "Atelectasis", "Nodule Mass", "Fibrosis", "Infiltration",
  "Calcification"];
const RESULT_RANK = { "TB Presumptive": 0, "Abnormal": 1, "Normal": 2 };

// pageSize: results per request; "More results" asks for the next page (offset), so a day of
// more than one page is never cut short without the reader knowing.
const state = { rows: [], sortKey: null, sortDir: 1, urls: {}, blobs: {}, showing: "source",
  selected: null, query: "", pageSize: 200, more: false };

function $(id) { return document.getElementById(id); }
function token() { return sessionStorage.getItem("cxrd-token"); }

async function api(path) {
  const response = await fetch(path, { headers: { "Authorization": "Bearer " + token() } });
  if (response.status === 401) {
    signOut("Your token was refused (" + (await messageOf(response)) + "). Sign in again.");
    throw new Error("unauthorised");
  }
  return response;
}

async function messageOf(response) {
  try { return (await response.json()).Message; } catch (e) { return response.statusText; }
}

function forgetImages() {
  for (const key of Object.keys(state.urls)) URL.revokeObjectURL(state.urls[key]);
  state.urls = {};
  state.blobs = {};
}

function signOut(message) {
  sessionStorage.removeItem("cxrd-token");
  forgetImages();
  $("worklist").hidden = true;
  $("signin").hidden = false;
  $("signin-error").textContent = message || "";
  $("token").value = "";
}

async function signIn(event) {
  event.preventDefault();
  const value = $("token").value.trim().replace(/^Bearer\s+/i, "");
  if (!value) return;
  sessionStorage.setItem("cxrd-token", value);
  $("token").value = "";
  try {
    await load();
  } catch (e) {
    return;
  }
  $("signin").hidden = true;
  $("worklist").hidden = false;
}

function topText(row) {
  return row.top_finding ? row.top_finding.name + " (" + row.top_finding.confidence.toFixed(3) + ")"
    : "";
}

function sortValue(row, key) {
  if (key === "result") return RESULT_RANK[row.result];
  if (key === "top") return topText(row);
  return row[key] || "";
}

function render() {
  const rows = state.rows.slice();
  if (state.sortKey) {
    rows.sort((a, b) => {
      const x = sortValue(a, state.sortKey), y = sortValue(b, state.sortKey);
      return (x < y ? -1 : x > y ? 1 : 0) * state.sortDir;
    });
  }
  for (const th of document.querySelectorAll("#results th")) {
    th.classList.toggle("sorted-asc", th.dataset.key === state.sortKey && state.sortDir > 0);
    th.classList.toggle("sorted-desc", th.dataset.key === state.sortKey && state.sortDir < 0);
  }
  const body = document.querySelector("#results tbody");
  body.replaceChildren();
  for (const row of rows) {
    const tr = document.createElement("tr");
    tr.dataset.id = row.id;
    tr.className = row.result === "TB Presumptive" ? "result-tb"
      : row.result === "Abnormal" ? "result-abnormal" : "result-normal";
    if (state.selected === row.id) tr.classList.add("selected");
    for (const text of [localTime(row.time), row.patient_id,
      row.patient_name, row.result, topText(row), row.model_version]) {
      const td = document.createElement("td");
      td.textContent = text;
      tr.appendChild(td);
    }
    tr.addEventListener("click", () => openResult(row));
    body.appendChild(tr);
  }
}

// A stored UTC time in the reader's own zone, as YYYY-MM-DD hh:mm:ss.
function localTime(utc) {
  const t = new Date(utc);
  const two = (n) => String(n).padStart(2, "0");
  return t.getFullYear() + "-" + two(t.getMonth() + 1) + "-" + two(t.getDate()) + " " +
    two(t.getHours()) + ":" + two(t.getMinutes()) + ":" + two(t.getSeconds());
}

async function load() {
  const query = new URLSearchParams();
  const filters = { result: $("filter-result").value, finding: $("filter-finding").value,
    job: $("filter-job").value.trim() };
  for (const [key, value] of Object.entries(filters)) if (value) query.set(key, value);
  // The date picked is the reader's day, not a UTC one: at UTC+05:30 a UTC day would put the
  // morning's images under yesterday. Its bounds go to the server as instants.
  const day = $("filter-date").value;
  if (day) {
    const [year, month, date] = day.split("-").map(Number);
    query.set("from", new Date(year, month - 1, date).toISOString());
    query.set("to", new Date(year, month - 1, date + 1).toISOString());
  }
  state.query = query.toString();
  state.rows = [];
  await loadPage();
}

// Appends the next page of the current filters. Results that arrived since the first page push
// the list down, so a page may repeat rows already shown: they are skipped by ID.
async function loadPage() {
  const query = new URLSearchParams(state.query);
  query.set("limit", state.pageSize);
  query.set("offset", state.rows.length);
  $("status").textContent = "Loading...";
  const response = await api("/results?" + query.toString());
  const body = await response.json();
  if (response.status !== 200) {
    $("status").textContent = body.Message;
    state.rows = [];
    state.more = false;
  } else {
    const seen = new Set(state.rows.map((row) => row.id));
    state.rows = state.rows.concat(body.Data.filter((row) => !seen.has(row.id)));
    state.more = body.Data.length === state.pageSize;
    $("status").textContent = state.rows.length + " results" +
      (state.rows.length ? ", TB Presumptive first" : "") +
      (state.more ? "; more are stored: press More results" : "");
  }
  $("more").hidden = !state.more;
  render();
}

async function fetchFile(row, name) {
  const response = await api("/results/" + row.id + "/" + name);
  if (response.status !== 200) throw new Error(await messageOf(response));
  return await response.blob();
}

// Keeps a fetched file only while its result is still the one open. A reader who clicks on to
// another row (or opens the PDF, then another row) before a slow answer arrives must never get
// the earlier patient's image or report under the later patient's name; a late file is dropped.
function keep(row, key, name, blob) {
  if (state.selected !== row.id) return false;
  state.blobs[name] = blob;
  state.urls[key] = URL.createObjectURL(blob);
  return true;
}

function show(which) {
  state.showing = which;
  const image = $("detail-image");
  image.src = state.urls[which] || "";
  image.dataset.showing = which;
  const button = $("toggle-heatmap");
  button.textContent = which === "heatmap" ? "Heatmap on" : "Heatmap off";
  button.setAttribute("aria-pressed", which === "heatmap" ? "true" : "false");
}

async function openResult(row) {
  state.selected = row.id;
  render();
  forgetImages();
  $("detail").hidden = false;
  $("detail-title").textContent = row.patient_id + " \u2014 " + row.result +
    (row.patient_name ? " \u2014 " + row.patient_name : "");
  const findings = document.querySelector("#findings tbody");
  findings.replaceChildren();
  for (const finding of row.findings || []) {
    const tr = document.createElement("tr");
    for (const text of [finding.name, finding.confidence.toFixed(3),
      finding.presence ? "yes" : "no"]) {
      const td = document.createElement("td");
      td.textContent = text;
      tr.appendChild(td);
    }
    if (finding.presence) tr.cells[2].className = "present";
    findings.appendChild(tr);
  }
  $("detail-note").textContent = "";
  const image = $("detail-image");
  image.removeAttribute("src");
  delete image.dataset.showing;
  $("toggle-heatmap").disabled = !row.has_heatmap;
  $("pdf-link").hidden = !row.has_files;
  if (!row.has_files) {
    $("detail-note").textContent = "No files were saved for this result.";
    return;
  }
  try {
    if (!keep(row, "source", "source_image.png", await fetchFile(row, "source_image.png"))) return;
    if (row.has_heatmap &&
      !keep(row, "heatmap", "heatmap.png", await fetchFile(row, "heatmap.png"))) return;
  } catch (e) {
    if (state.selected === row.id) $("detail-note").textContent = e.message;
    return;
  }
  show(row.has_heatmap ? "heatmap" : "source");
}

async function openPdf(event) {
  event.preventDefault();
  const row = state.rows.find((r) => r.id === state.selected);
  if (!row) return;
  try {
    if (!state.urls.pdf && !keep(row, "pdf", "report.pdf", await fetchFile(row, "report.pdf"))) {
      return;
    }
  } catch (e) {
    if (state.selected === row.id) $("detail-note").textContent = e.message;
    return;
  }
  const link = document.createElement("a");
  link.href = state.urls.pdf;
  link.download = row.patient_id + "_report.pdf";
  document.body.appendChild(link);
  link.click();
  link.remove();
}

function setup() {
  for (const name of FINDINGS) {
    const option = document.createElement("option");
    option.textContent = name;
    $("filter-finding").appendChild(option);
  }
  $("signin-form").addEventListener("submit", signIn);
  $("filters").addEventListener("submit", (event) => { event.preventDefault(); load(); });
  $("signout").addEventListener("click", () => signOut(""));
  $("more").addEventListener("click", () => { loadPage().catch(() => {}); });
  $("toggle-heatmap").addEventListener("click",
    () => show(state.showing === "heatmap" ? "source" : "heatmap"));
  $("pdf-link").addEventListener("click", openPdf);
  for (const th of document.querySelectorAll("#results th")) {
    th.addEventListener("click", () => {
      state.sortDir = state.sortKey === th.dataset.key ? -state.sortDir : 1;
      state.sortKey = th.dataset.key;
      render();
    });
  }
  if (token()) {
    load().then(() => { $("signin").hidden = true; $("worklist").hidden = false; },
      () => {});
  }
}

document.addEventListener("DOMContentLoaded", setup);
