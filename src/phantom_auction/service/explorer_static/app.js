// The explorer's pages: the live feed (/), one auction (/auctions/{id}), the bidders (/bidders).
// Rendered from public JSON only; every auction page verifies itself (verify.js).

import { canonicalJSON, documentFacts, documentProblems, parseExact, verifyCompetition, webCrypto, exactIntegersSupported } from "./verify.js";

const main = document.getElementById("main");
const POLL_MS = 300;
// The feed is a long poll: the server answers when an auction opens or ends (or after
// FEED_WAIT_S), so a page sees each auction while it is open, even a 100 ms one; the
// page asks again at once, but never more often than every FEED_FLOOR_MS. An open
// auction's commit count is at most FEED_WAIT_S old (commits do not wake the feed).
const FEED_WAIT_S = 2;
const FEED_FLOOR_MS = 50;
// The rows are redrawn at most every FEED_DRAW_MS: an answer a change (at 5 auctions/s,
// ~11 a second) each laying out the 200 rows took half a core of the browser.
const FEED_DRAW_MS = 250;
// While the server does not answer, ask again after 0.5, 1, 2, 4, then every 5 s.
const BACKOFF_MS = [500, 1000, 2000, 4000, 5000];
function backoff(failures) {
  return BACKOFF_MS[Math.min(failures, BACKOFF_MS.length) - 1];
}
function sleep(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
// What to say of a failed request: the server's reason if it sent one (JSON `detail`),
// else its status and what it could not send (never an HTML error page's source).
function failure(status, body, what) {
  return typeof body.detail === "string" && body.detail ? body.detail : `HTTP ${status} (the server could not send ${what})`;
}
// A request the server answered with an error (not: did not answer).
class Refused extends Error {}
function notAnswering(error, delay) {
  const again = `retrying in ${Math.round(delay / 100) / 10} s`;
  return error instanceof Refused ? `${error.message}; ${again}` : `The server is not answering; ${again}`;
}
// Rows the feed shows (the server's feed answers at most as many).
const FEED_ROWS = 200;

// ------------------------------------------------------------------ helpers

function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === null || value === undefined || value === false) continue;
    if (key === "class") el.className = value;
    else if (key === "text") el.textContent = value;
    else el.setAttribute(key, value === true ? "" : String(value));
  }
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

async function getJSON(url) {
  const response = await fetch(url, { headers: { Accept: "application/json" }, cache: "no-store" });
  const text = await response.text();
  let body;
  try {
    body = parseExact(text);
  } catch {
    body = {}; // not JSON (a proxy's error page): callers say the status
  }
  return { status: response.status, body };
}

const numberFormat = new Intl.NumberFormat("en-US", { maximumSignificantDigits: 10 });
const integerFormat = new Intl.NumberFormat("en-US", { maximumFractionDigits: 0 });
function num(x, unit) {
  if (x === null || x === undefined) return "—";
  // Integers exactly (nonces, counts); other numbers to 10 significant digits.
  let text = String(x); // BigInt, decimal string
  if (typeof x === "number") text = (Number.isInteger(x) ? integerFormat : numberFormat).format(x);
  return unit ? `${text} ${unit}` : text;
}
function bps(x) {
  return x === null || x === undefined ? "—" : `${x.toFixed(2)} bps`;
}
function percent(x) {
  return x === null || x === undefined ? "—" : `${(100 * x).toFixed(1)} %`;
}
// An id in full (copyable, read whole by screen readers), cut short on screen by the
// style sheet where it is too long, the whole of it in its title.
function idText(id) {
  return h("span", { class: "id", title: id }, id);
}
function shortId(id) {
  return id.length > 12 ? `${id.slice(0, 8)}…` : id;
}
function shortHex(hex) {
  return hex ? `${hex.slice(0, 10)}…` : "—";
}
function pair(tokens) {
  return `${tokens[0]} → ${tokens[1]}`;
}
function today() {
  return new Date(Date.now() + clockSkew).toISOString().slice(0, 10);
}
// A time as HH:MM:SS.mmm UTC, with its date when it is not on the day of `ref` (an ISO
// time; by default today): `ref` null always shows the date. The full ISO time is its
// title and datetime.
function time(iso, ref) {
  if (!iso) return "—";
  const text = new Date(iso).toISOString(); // YYYY-MM-DDTHH:MM:SS.mmmZ
  const day = ref === undefined ? today() : ref && new Date(ref).toISOString().slice(0, 10);
  const shown = text.slice(0, 10) === day ? `${text.slice(11, 23)} UTC` : `${text.slice(0, 10)} ${text.slice(11, 23)} UTC`;
  return h("time", { datetime: iso, title: iso }, shown);
}
function winnerLabel(summary) {
  if (summary.winner) return summary.winner;
  return summary.outcome === "phantom_won" ? "phantom (CFMM)" : "—";
}
function outcomeLabel(summary) {
  if (summary.status === "open") return "open";
  return summary.outcome ? summary.outcome.replaceAll("_", " ") : summary.status;
}

// Server time minus local time (ms), so that "time left" does not depend on the viewer's clock.
let clockSkew = 0;
function noteServerTime(iso) {
  if (iso) clockSkew = Date.parse(iso) - Date.now();
}
// The time left in the auction's phase, and that phase: bids are collected until the
// commit deadline, then revealed until the reveal deadline.
function timeLeft(summary) {
  if (summary.status !== "open") return "ended";
  const now = Date.now() + clockSkew;
  const commitLeft = Date.parse(summary.commit_deadline) - now;
  const revealLeft = Date.parse(summary.reveal_deadline) - now;
  const [left, phase] = commitLeft > 0 ? [commitLeft, "collecting"] : [revealLeft, "revealing"];
  if (left <= 0) return "clearing…";
  return left >= 10000 ? `${Math.ceil(left / 1000)} s (${phase})` : `${Math.ceil(left)} ms (${phase})`;
}

function setText(el, text) {
  if (el.textContent !== text) el.textContent = text;
}

// Make `el` look like `fresh` (built the same way), replacing only the children that
// differ, so that focus and a text selection elsewhere in it stay. A child holding the
// time left ([data-left]) only has its text updated (a ticker keeps it current).
function patch(el, fresh) {
  for (const { name, value } of fresh.attributes) if (el.getAttribute(name) !== value) el.setAttribute(name, value);
  const now = [...fresh.children];
  if (el.children.length !== now.length) {
    el.replaceChildren(...now);
    return;
  }
  const left = (x) => (x.matches("[data-left]") ? x : x.querySelector("[data-left]"));
  now.forEach((child, i) => {
    const old = el.children[i];
    const [was, is] = [left(old), left(child)];
    if (was && is) setText(was, is.textContent);
    else if (!old.isEqualNode(child)) old.replaceWith(child);
  });
}

// The phantom commitment of each auction this browser saw open (the feed or its page),
// the first one seen, kept in localStorage for the auction page to check the revealed
// seed against after the end: a server cannot swap both afterwards. The latest
// SEEN_KEPT auctions are kept.
const SEEN_KEY = "phantom-auction-explorer/commitments-seen-open";
const SEEN_KEPT = 2000;
const seenHere = new Set();
// The terms announced at open (phantom policy, rules, phantom model), kept the same way:
// a server cannot clear, or draw the phantoms, by other terms than it announced.
const TERMS_KEY = "phantom-auction-explorer/terms-seen-open";
// A kept map (auction id -> value) from localStorage; empty if none or unreadable.
function readKept(key) {
  try {
    const kept = JSON.parse(localStorage.getItem(key) || "[]");
    return new Map(Array.isArray(kept) ? kept : []);
  } catch {
    return new Map();
  }
}
function rememberOpenCommitments(summaries) {
  const fresh = summaries.filter((s) => s.status === "open" && typeof s.phantom_commitment === "string" && !seenHere.has(s.auction_id));
  if (fresh.length === 0) return;
  try {
    const seen = readKept(SEEN_KEY); // again: another tab may have added some
    const terms = readKept(TERMS_KEY);
    for (const s of fresh) {
      seenHere.add(s.auction_id);
      if (!seen.has(s.auction_id)) seen.set(s.auction_id, s.phantom_commitment);
      if (s.terms && !terms.has(s.auction_id)) terms.set(s.auction_id, canonicalJSON(s.terms));
    }
    localStorage.setItem(SEEN_KEY, JSON.stringify([...seen].slice(-SEEN_KEPT)));
    localStorage.setItem(TERMS_KEY, JSON.stringify([...terms].slice(-SEEN_KEPT)));
  } catch {
    // No storage (disabled, full): the auction page says the open was not seen.
  }
  if (seenHere.size > 4 * SEEN_KEPT) seenHere.clear();
}
function commitmentSeenOpen(auctionId) {
  return readKept(SEEN_KEY).get(auctionId);
}
function termsSeenOpen(auctionId) {
  return readKept(TERMS_KEY).get(auctionId);
}

function setTitle(text) {
  document.title = `${text} · Phantom auction explorer`;
  for (const link of document.querySelectorAll("[data-nav]")) {
    const current = (link.dataset.nav === "bidders") === location.pathname.startsWith("/bidders");
    if (current && !location.pathname.startsWith("/auctions/")) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
}

// A table whose cells are labelled with their column's header (with its unit): the
// phone layout shows one card per row, each value beside that label.
function table(caption, headers, rows, attrs = {}) {
  if (rows.length === 0) rows = [h("tr", {}, h("td", { colspan: headers.length, class: "muted" }, "None."))];
  for (const row of rows) {
    [...row.children].forEach((td, i) => {
      if (td.hasAttribute("data-label") && headers[i]) td.setAttribute("data-label", headers[i]);
    });
  }
  return h(
    "div",
    { class: "table-wrap" },
    h(
      "table",
      attrs,
      h("caption", {}, caption),
      h("thead", {}, h("tr", {}, headers.map((x) => h("th", { scope: "col" }, x)))),
      h("tbody", {}, rows),
    ),
  );
}

function cell(label, content, attrs = {}) {
  return h("td", { "data-label": label, ...attrs }, content);
}

// ------------------------------------------------------------------ the feed

const FEED_HEADERS = [
  "Auction", "Pair (in → out)", "Amount (token A)", "Baseline (B per A)", "Outcome",
  "Winner", "Price (B per A)", "Improvement", "Real bids", "Phantom bids", "Time left",
];

function feedRow(summary) {
  const row = h(
    "tr",
    { "data-testid": "feed-row", "data-auction-id": summary.auction_id, "data-status": summary.status },
    cell("Auction", h("a", { href: `/auctions/${summary.auction_id}`, "aria-label": `Auction ${summary.auction_id}` }, shortId(summary.auction_id))),
    cell("Pair", pair(summary.token_pair)),
    cell("Amount", num(summary.amount, "A"), { class: "n" }),
    cell("Baseline", num(summary.baseline_price), { class: "n" }),
    cell("Outcome", h("span", { class: `badge ${summary.status === "open" ? "open" : summary.outcome || ""}` }, outcomeLabel(summary)), { "data-testid": "feed-outcome" }),
    cell("Winner", summary.winner ? idText(summary.winner) : winnerLabel(summary)),
    cell("Price", num(summary.price), { class: "n" }),
    cell("Improvement", bps(summary.improvement_bps), { class: "n" }),
    cell("Real bids", summary.real_bids === null ? `${summary.commits} sealed` : String(summary.real_bids), { class: "n" }),
    cell("Phantom bids", summary.phantom_bids === null ? "sealed" : String(summary.phantom_bids), { class: "n" }),
    cell("Time left", timeLeft(summary), { "data-left": "", class: "nowrap" }),
  );
  [...row.children].forEach((td, i) => td.setAttribute("data-label", FEED_HEADERS[i]));
  return row;
}

async function feedPage() {
  setTitle("Auctions");
  // Per auction shown: its summary, that summary as text without its seq (to tell a
  // change), and its row. Rows are updated where their summary changed and added or
  // removed as auctions are; the rest stay as they are (focus, selection, a screen
  // reader's place), and the time left is ticked in place.
  let shown = new Map();
  const body = h("tbody", { "aria-live": "off" });
  const empty = h("tr", {}, h("td", { colspan: FEED_HEADERS.length, class: "muted" }, "No auctions yet."));
  // Announced (role=status) only when it changes: the count, or a connection problem.
  const status = h("span", { role: "status", "data-testid": "feed-status" }, "Connecting…");
  const updated = h("span", { "data-testid": "feed-updated" });
  const feed = h(
    "table",
    { class: "feed", "data-testid": "feed" },
    h("caption", { class: "sr-only" }, "Open and recent auctions, newest first"),
    h("thead", {}, h("tr", {}, FEED_HEADERS.map((x) => h("th", { scope: "col" }, x)))),
    body,
  );
  main.replaceChildren(
    h("h1", {}, "Auctions"),
    h("p", { class: "lede" }, "Live: auctions appear as they open and update as they finish. The rows are the server's summaries, not checked here: open an auction to see its competition and verify it in your browser."),
    h("p", { class: "muted" }, status, " ", updated),
    h("div", { class: "table-wrap" }, feed),
  );
  let since = 0;
  let epoch = "";
  let down = false; // the last request failed: rows dimmed, countdowns stopped
  const render = () => {
    // Newest first; only the rows shown are kept, so a page left open stays as small and
    // as quick as a fresh one (at 100 auctions/s it would gather 360,000 in an hour).
    const ordered = [...shown.values()].sort((a, b) => b.openedMs - a.openedMs || (a.summary.auction_id < b.summary.auction_id ? 1 : -1));
    for (const old of ordered.splice(FEED_ROWS)) shown.delete(old.summary.auction_id);
    for (const entry of ordered) {
      if (!entry.row) entry.row = feedRow(entry.summary);
      else if (entry.changed) patch(entry.row, feedRow(entry.summary));
      entry.changed = false;
    }
    const wanted = new Set(ordered.map((entry) => entry.row));
    for (const row of [...body.children]) if (!wanted.has(row)) row.remove();
    ordered.forEach((entry, i) => {
      if (body.children[i] !== entry.row) body.insertBefore(entry.row, body.children[i] || null);
    });
    if (ordered.length === 0) body.append(empty);
  };
  const poll = async () => {
    // Only what changed since the last answer: summaries, and auctions removed (pruned,
    // or ended without a result); or, after a restart or a long pause, the whole feed
    // (the rows of the auctions it lists unchanged are kept).
    const { status: code, body: page } = await getJSON(`/explorer/api/feed?since=${since}&epoch=${epoch}&wait=${FEED_WAIT_S}`);
    if (code !== 200) throw new Refused(failure(code, page, "the feed"));
    noteServerTime(page.server_time);
    const before = shown;
    if (page.reset) shown = new Map();
    for (const id of page.removed || []) shown.delete(id);
    rememberOpenCommitments(page.auctions);
    for (const summary of page.auctions) {
      const { seq, ...rest } = summary;
      const key = JSON.stringify(rest);
      const old = before.get(summary.auction_id);
      if (old && old.key === key) {
        shown.set(summary.auction_id, old);
        continue;
      }
      const entry = { summary, key, openedMs: Date.parse(summary.opened_at), row: old ? old.row : null, changed: true };
      shown.set(summary.auction_id, entry);
    }
    since = page.seq;
    epoch = page.epoch;
    lastAnswer = page.server_time;
    if (drawing === null) drawing = setTimeout(draw, Math.max(0, drawn + FEED_DRAW_MS - Date.now()));
  };
  // The rows and the status line as of the latest answer (its commitments are kept as it
  // comes: rememberOpenCommitments).
  let drawing = null;
  let drawn = -Infinity;
  let lastAnswer = null;
  const draw = () => {
    drawing = null;
    drawn = Date.now();
    render();
    if (down) return; // the status says so until an answer comes
    setText(status, `Live · ${shown.size} auctions`);
    setText(updated, `· updated ${new Date(Date.parse(lastAnswer)).toISOString().slice(11, 23)} UTC`);
  };
  // While the server does not answer, the rows are dimmed and their countdowns stop: what
  // they say may be out of date. They come back as they were with its next answer.
  const setDown = (now) => {
    down = now;
    feed.classList.toggle("stale", now);
    if (now) {
      for (const entry of shown.values()) if (entry.summary.status === "open" && entry.row) setText(entry.row.querySelector("[data-left]"), "—");
    }
  };
  let stopped = false;
  const ticker = setInterval(() => {
    if (down) return;
    for (const entry of shown.values()) {
      if (entry.summary.status === "open" && entry.row) setText(entry.row.querySelector("[data-left]"), timeLeft(entry.summary));
    }
  }, 100);
  (async () => {
    let failures = 0;
    while (!stopped) {
      const started = Date.now();
      let delay;
      try {
        await poll();
        failures = 0;
        if (down) setDown(false);
        delay = FEED_FLOOR_MS - (Date.now() - started);
      } catch (error) {
        failures += 1;
        delay = backoff(failures);
        setDown(true);
        setText(status, notAnswering(error, delay));
        setText(updated, "");
      }
      if (delay > 0) await sleep(delay);
    }
  })();
  return () => {
    stopped = true;
    clearInterval(ticker);
  };
}

// ------------------------------------------------------------------ the chart

// Round tick values (1, 2 or 5 times a power of ten) covering [lo, hi].
function niceTicks(lo, hi, count) {
  const raw = (hi - lo) / count || 1;
  const power = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].map((m) => m * power).find((s) => s >= raw);
  const ticks = [];
  for (let v = Math.ceil(lo / step) * step; v <= hi + 1e-9 * step; v += step) ticks.push(Number(v.toPrecision(12)));
  return ticks;
}

function chart(doc) {
  // As wide as the page has room for (at most 720): on a phone the chart is drawn at
  // about its screen size, so its text keeps its size (11-12 px) instead of shrinking.
  const width = Math.round(Math.max(300, Math.min(720, main.clientWidth - 24)));
  const height = 260;
  // The clearing price's label sits in the top margin, above every bid.
  const pad = { left: 56, right: 16, top: 34, bottom: 44 };
  const ranking = doc.ranking || [];
  const clearing = doc.price ? ((doc.price - doc.baseline_price) / doc.baseline_price) * 10000 : 0;
  const xs = ranking.map((r) => r.improvement_bps).concat([0, clearing, doc.phantom_model ? doc.phantom_model.max_bps : 0]);
  const xMin = Math.min(...xs);
  const xMax = Math.max(...xs);
  const span = xMax - xMin || 1;
  const vMax = 1.1 * Math.max(...ranking.map((r) => r.volume), doc.amount);
  const x = (v) => pad.left + ((v - xMin) / span) * (width - pad.left - pad.right);
  const y = (v) => height - pad.bottom - (v / vMax) * (height - pad.top - pad.bottom);
  const svg = (tag, attrs = {}, ...children) => {
    const el = document.createElementNS("http://www.w3.org/2000/svg", tag);
    for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, String(v));
    for (const c of children) el.append(c instanceof Node ? c : document.createTextNode(String(c)));
    return el;
  };
  const parts = [];
  for (const v of niceTicks(xMin, xMax, Math.max(3, Math.floor(width / 120)))) {
    parts.push(svg("line", { x1: x(v), x2: x(v), y1: pad.top, y2: height - pad.bottom, class: "grid" }));
    parts.push(svg("text", { x: x(v), y: height - pad.bottom + 16, "text-anchor": "middle", class: "tick" }, numberFormat.format(v)));
  }
  for (const v of niceTicks(0, vMax, 4)) {
    parts.push(svg("line", { x1: pad.left, x2: width - pad.right, y1: y(v), y2: y(v), class: "grid" }));
    parts.push(svg("text", { x: pad.left - 6, y: y(v) + 4, "text-anchor": "end", class: "tick" }, numberFormat.format(v)));
  }
  parts.push(svg("text", { x: (pad.left + width - pad.right) / 2, y: height - 6, "text-anchor": "middle", class: "axis" }, "improvement over baseline (bps)"));
  parts.push(svg("text", { x: 12, y: height / 2, transform: `rotate(-90 12 ${height / 2})`, "text-anchor": "middle", class: "axis" }, "volume (token A)"));
  parts.push(svg("line", { x1: x(0), x2: x(0), y1: pad.top, y2: height - pad.bottom, class: "baseline" }));
  if (doc.price) {
    parts.push(svg("line", { x1: x(clearing), x2: x(clearing), y1: pad.top, y2: height - pad.bottom, class: "clearing", "data-testid": "chart-clearing" }));
    const right = x(clearing) > width - 140; // near the right edge: the label to its left
    parts.push(svg("text", { x: x(clearing) + (right ? -4 : 4), y: pad.top - 10, "text-anchor": right ? "end" : "start", class: "clearing-label" }, `price ${clearing.toFixed(2)} bps`));
  }
  for (const r of ranking) {
    const title = svg("title", {}, `${r.bidder_id}: ${r.improvement_bps.toFixed(2)} bps, ${numberFormat.format(r.volume)} A, rank ${r.rank}`);
    if (r.is_phantom) {
      const cx = x(r.improvement_bps);
      const cy = y(r.volume);
      parts.push(svg("path", { d: `M${cx} ${cy - 6} L${cx + 6} ${cy} L${cx} ${cy + 6} L${cx - 6} ${cy} Z`, class: r.allocated > 0 ? "phantom won" : "phantom" }, title));
    } else {
      parts.push(svg("circle", { cx: x(r.improvement_bps), cy: y(r.volume), r: 6, class: r.filled > 0 ? "real won" : "real" }, title));
    }
  }
  return h(
    "figure",
    { class: "chart" },
    svg("svg", { viewBox: `0 0 ${width} ${height}`, role: "img", "aria-label": `Bids by improvement: ${ranking.filter((r) => !r.is_phantom).length} real, ${ranking.filter((r) => r.is_phantom).length} phantom; clearing price at ${clearing.toFixed(2)} bps`, "data-testid": "chart" }, ...parts),
    h(
      "figcaption",
      {},
      h("span", { class: "key real-key" }, "● real bid"),
      h("span", { class: "key won-key" }, "● real bid that filled"),
      h("span", { class: "key phantom-key" }, "◇ phantom bid"),
      h("span", { class: "key phantom-key" }, "◆ phantom ranked for volume (sent to the CFMM)"),
      h("span", { class: "key clearing-key" }, "│ clearing price"),
      h("span", { class: "key baseline-key" }, "┆ baseline (0 bps)"),
    ),
  );
}

// ------------------------------------------------------------------ one auction

// ✓, ✗ or – (not checked), named for screen readers (role="img" with its label).
function mark(item) {
  if (!item || item.ok === null) {
    const label = item ? `not checked: ${item.label}` : "not checked";
    return h("span", { class: "mark none", role: "img", title: item ? item.detail : null, "aria-label": label }, "–");
  }
  return h("span", { class: `mark ${item.ok ? "ok" : "bad"}`, role: "img", title: item.detail, "aria-label": item.ok ? `verified: ${item.label}` : `failed: ${item.label}` }, item.ok ? "✓" : "✗");
}

function marks(items, ref) {
  const mine = items.filter((i) => i.ref === ref);
  if (mine.length === 0) return mark(null);
  return mark(mine.find((i) => i.ok === false) || mine.find((i) => i.ok) || mine[0]);
}

// The checks a fact of an ended auction rests on: its clearing's items by `ref`, the
// summary's fields compared with it (the summary check, ref "summary"), and the inputs
// of the clearing (a failed reveal, phantom or terms check fails every fact).
const CLEARING_INPUTS = new Set(["commitments", "ranking", "phantoms"]);
const FACT_CHECKS = {
  outcome: { name: "the outcome", refs: ["outcome"], fields: ["status", "outcome"] },
  winner: { name: "the winner", refs: ["fills", "ranking"], fields: ["winner"] },
  price: { name: "the price to the user", refs: ["price", "fills"], fields: ["price"] },
  improvement: { name: "the improvement", refs: ["price"], fields: ["improvement_bps"] },
};
// ✓ beside a fact whose checks passed, ✗ if one failed (naming it), – if not all made.
function factMark(items, fact) {
  if (!items) return null;
  const { name, refs, fields } = FACT_CHECKS[fact];
  const mine = items.filter((i) => refs.includes(i.ref) || (i.ref === "summary" && (i.ok || i.fields.some((f) => fields.includes(f)))));
  if (mine.length === 0) return null;
  const inputs = items.filter((i) => i.ok === false && (CLEARING_INPUTS.has(i.group) || i.ref === "terms"));
  const failed = [...mine.filter((i) => i.ok === false), ...inputs];
  const ok = failed.length ? false : mine.every((i) => i.ok) ? true : null;
  const detail = (failed.length ? failed : mine).map((i) => i.label).join("; ");
  return [" ", h("span", { "data-testid": "fact-check", "data-fact": fact, "data-ok": ok === null ? "unchecked" : String(ok) }, mark({ ok, label: name, detail }))];
}

// The facts of an auction; `doc` once it has ended (its competition), with `seen`, the
// phantom commitment this browser kept while the auction was open (if it saw it open),
// and `items`, its checks. Once ended, the outcome, winner and price are the document's
// (what the checks verify), not the server's summary's.
function summaryList(summary, doc, seen, items) {
  const open = summary.status === "open";
  const facts = doc ? { ...summary, ...documentFacts(doc) } : summary;
  const commitments = doc ? doc.commitments || [] : [];
  const accepted = commitments.filter((c) => c.accepted).length;
  const rows = [
    ["Status", [h("span", { "data-testid": "auction-outcome", "data-status": facts.status, class: `badge ${open ? "open" : facts.outcome || ""}` }, outcomeLabel(facts)), factMark(items, "outcome")]],
    ["Pair (in → out)", pair(summary.token_pair)],
    ["Amount", num(summary.amount, "token A")],
    ["Baseline price", num(summary.baseline_price, "B per A")],
    ["Mechanism", summary.mechanism || "—"],
    ["Winner", [facts.winner ? h("span", { class: "id" }, facts.winner) : winnerLabel(facts), factMark(items, "winner")]],
    ["Price to the user", [num(facts.price, "B per A"), factMark(items, "price")]],
    ["Improvement", [bps(facts.improvement_bps), factMark(items, "improvement")]],
    // As the feed counts: real bids are the revealed bids ranked; a commit may have been
    // refused (a duplicate, a late one) or never revealed.
    open
      ? ["Sealed bids", summary.commits === undefined ? "—" : `${summary.commits} so far`]
      : ["Commits", doc ? `${commitments.length} (${accepted} accepted, ${commitments.length - accepted} refused)` : num(summary.commits)],
    open ? null : ["Real bids (ranked)", doc ? String((doc.ranking || []).filter((r) => !r.is_phantom).length) : num(summary.real_bids)],
    ["Opened", time(summary.opened_at, null)],
    ["Bids sealed until", time(summary.commit_deadline, summary.opened_at)],
    ["Reveals until", time(summary.reveal_deadline, summary.opened_at)],
    ["Time left", h("span", { "data-left": "" }, timeLeft(summary))],
    ["Phantom commitment", h("code", { class: "hex", "data-testid": "phantom-commitment" }, doc ? doc.phantom_commitment : summary.phantom_commitment)],
  ].filter(Boolean);
  if (doc) {
    rows.push([
      "Commitment seen at open",
      seen
        ? h("code", { class: `hex${seen === doc.phantom_commitment ? "" : " bad"}`, "data-testid": "commitment-seen-open" }, seen)
        : h("span", { class: "muted", "data-testid": "commitment-seen-open" }, "not seen: this browser did not see this auction while it was open"),
    ]);
    rows.push(["Phantom seed", doc.phantom_seed ? h("code", { class: "hex", "data-testid": "phantom-seed" }, doc.phantom_seed) : h("span", { class: "warn", "data-testid": "phantom-seed" }, "not published")]);
  } else {
    rows.push(["Phantom seed", h("span", { class: "muted" }, open ? "sealed until the auction ends" : "published with the competition")]);
  }
  return h("dl", { class: "facts" }, rows.map(([k, v]) => [h("dt", {}, k), h("dd", {}, v)]));
}

function competitionSections(doc, items, summary) {
  const reveals = doc.reveals || [];
  const revealOf = new Map();
  reveals.forEach((r, index) => {
    if (!revealOf.has(r.bidder_id) || r.accepted) revealOf.set(r.bidder_id, { reveal: r, index });
  });
  const unrevealed = new Set(doc.unrevealed || []);
  // An auction aborted before its reveal window opened: no one could reveal.
  const noWindow = summary.reveal_window_opened === false;
  const opened = doc.opened_at;
  const ranking = table(
    "Ranking: every real and phantom bid, best score first",
    ["Rank", "Bidder", "Kind", "Price (B per A)", "Improvement", "Fee (token)", "Score (bps)", "Allocated (A)", "Filled (A)", "Fill price (B per A)", "Check"],
    (doc.ranking || []).map((r) =>
      h(
        "tr",
        { "data-testid": "ranking-row", "data-bidder-id": r.bidder_id, "data-rank": r.rank, "data-price": String(r.improved_price), "data-volume": String(r.volume), "data-filled": String(r.filled), class: r.is_phantom ? "phantom-row" : "" },
        cell("Rank", String(r.rank), { class: "n" }),
        cell("Bidder", idText(r.bidder_id)),
        cell("Kind", r.is_phantom ? h("span", { class: "badge phantom" }, "phantom") : "real"),
        cell("Price", num(r.improved_price), { class: "n" }),
        cell("Improvement", bps(r.improvement_bps), { class: "n" }),
        cell("Fee", num(r.priority_fee), { class: "n" }),
        cell("Score", num(r.score), { class: "n" }),
        cell("Allocated", num(r.allocated), { class: "n" }),
        cell("Filled", num(r.filled), { class: "n" }),
        cell("Fill price", num(r.fill_price), { class: "n" }),
        cell("Check", r.is_phantom ? marks(items, r.bidder_id) : marks(items, `rank-${r.bidder_id}`)),
      ),
    ),
    { "data-testid": "ranking" },
  );
  const fills = table(
    "Fills (the CFMM takes what no bid fills, at the baseline)",
    ["Filled by", "Volume (token A)", "Price (B per A)"],
    (doc.fills || []).map((f) => h("tr", { "data-testid": "fill-row" }, cell("Filled by", f.bidder_id ? idText(f.bidder_id) : "CFMM (baseline)"), cell("Volume", num(f.volume), { class: "n" }), cell("Price", num(f.price), { class: "n" }))),
  );
  const commitments = table(
    "Commitments and their reveals",
    ["Bidder", "Commit", "Commitment · nonce", "Reveal", "Revealed price (B per A) · volume (A) · fee (token)", "Check"],
    (doc.commitments || []).map((c) => {
      const found = c.accepted ? revealOf.get(c.bidder_id) : undefined;
      const reveal = found ? found.reveal : undefined;
      let revealText = "—";
      let warn = false;
      if (c.accepted && reveal) [revealText, warn] = reveal.accepted ? ["revealed", false] : [`refused: ${reveal.reason}`, true];
      else if (c.accepted && unrevealed.has(c.bidder_id)) [revealText, warn] = noWindow ? ["not revealed: aborted before the reveal window", false] : ["no reveal", true];
      return h(
        "tr",
        { "data-testid": "commitment-row", "data-bidder-id": c.bidder_id },
        cell("Bidder", idText(c.bidder_id)),
        cell("Commit", h("span", {}, c.accepted ? "accepted" : h("span", { class: "warn" }, `refused: ${c.reason}`), h("br"), h("span", { class: "muted" }, time(c.received_at, opened)))),
        cell("Commitment · nonce", h("span", {}, h("code", { class: "hex", title: c.commitment }, shortHex(c.commitment)), h("br"), h("span", { class: "muted" }, `nonce ${String(c.nonce)}`))),
        cell("Reveal", revealText, { class: warn ? "warn" : revealText === "—" || revealText === "revealed" ? "" : "muted" }),
        cell("Revealed", reveal ? `${num(reveal.improved_price)} · ${num(reveal.volume)} · ${num(reveal.priority_fee)}` : "—", { class: "n" }),
        cell("Check", found ? marks(items, `reveal-${found.index}`) : mark(null)),
      );
    }),
  );
  const rejections = table(
    "Rejections, with their reason codes",
    ["Kind", "Bidder", "At", "Reason", "Detail"],
    (doc.rejections || []).map((r) => h("tr", { "data-testid": "rejection-row" }, cell("Kind", r.kind), cell("Bidder", idText(r.bidder_id)), cell("At", time(r.received_at, opened)), cell("Reason", h("code", {}, r.reason)), cell("Detail", r.detail || "—", { class: "detail" }))),
  );
  const phantoms = table(
    "Phantom bids, redrawn here from the revealed seed",
    ["Phantom", "Price (B per A)", "Improvement", "Volume (A)", "Fee (token)", "Check"],
    (doc.phantom_bids || []).length
      ? doc.phantom_bids.map((p) =>
          h(
            "tr",
            { "data-testid": "phantom-row", "data-bidder-id": p.bidder_id },
            cell("Phantom", p.bidder_id),
            cell("Price", num(p.improved_price), { class: "n" }),
            cell("Improvement", bps(((p.improved_price - doc.baseline_price) / doc.baseline_price) * 10000), { class: "n" }),
            cell("Volume", num(p.volume), { class: "n" }),
            cell("Fee", num(p.priority_fee), { class: "n" }),
            cell("Check", marks(items, p.bidder_id)),
          ),
        )
      : [h("tr", {}, h("td", { colspan: 6, class: "muted" }, "No phantom bid in this auction."))],
  );
  const m = doc.phantom_model || {};
  const model = h(
    "p",
    { class: "muted" },
    `Phantom model: ${m.max_phantom_bidders} slots, each present with probability ${m.bid_probability}; improvement a normal (mean ${m.mean_bps} bps, sd ${m.sd_bps} bps) truncated to [${m.min_bps}, ${m.max_bps}] bps; volume ${m.volume_fraction?.join("–")} of the amount; fee ${m.fee_fraction?.join("–")} of the largest allowed (${m.priority_fee_max_ratio} per unit).`,
  );
  return [
    h("section", { "aria-labelledby": "h-chart" }, h("h2", { id: "h-chart" }, "Bids by improvement"), chart(doc)),
    h("section", { "aria-labelledby": "h-ranking" }, h("h2", { id: "h-ranking" }, "Ranking and fills"), ranking, fills),
    h("section", { "aria-labelledby": "h-commit" }, h("h2", { id: "h-commit" }, "Commitments"), commitments, rejections),
    h("section", { "aria-labelledby": "h-phantoms" }, h("h2", { id: "h-phantoms" }, "Phantom bids"), model, phantoms),
  ];
}

function verifyPanel(items) {
  const failed = items.filter((i) => i.ok === false);
  const unchecked = items.filter((i) => i.ok === null);
  const checked = items.length - unchecked.length;
  // Green only when every check was made and passed; some not made: partly verified.
  let verdict = `✓ all ${checked} checks passed`;
  let kind = "verified";
  if (failed.length) {
    [verdict, kind] = [`✗ ${failed.length} of ${checked} checks failed`, "failed"];
    if (unchecked.length) verdict += `; ${unchecked.length} not checked`;
  } else if (unchecked.length) {
    [verdict, kind] = [`◐ Partly verified: ${checked} checks passed, ${unchecked.length} not checked`, "partial"];
  }
  const result = h(
    "p",
    { class: `verdict ${kind}`, "data-testid": "verify-result", "data-ok": failed.length ? "false" : "true", "data-verdict": kind, role: "status" },
    verdict,
  );
  const notes = unchecked.map((i) => h("p", { class: "unchecked", "data-testid": "verify-unchecked" }, mark(i), " ", h("strong", {}, i.label), ` — ${i.detail}`));
  const byHand = unchecked.filter((i) => i.byHand);
  const hand = byHand.length
    ? h("details", { class: "by-hand" }, h("summary", {}, "How to check these by hand"), byHand.map((i) => h("p", {}, h("strong", {}, i.label), `: ${i.byHand}`)))
    : null;
  // Failed checks first, then those not made, each group in its order.
  const rank = (i) => (i.ok === false ? 0 : i.ok === null ? 1 : 2);
  const sorted = items.map((item, k) => [item, k]).sort((a, b) => rank(a[0]) - rank(b[0]) || a[1] - b[1]).map(([item]) => item);
  const list = h(
    "ul",
    { class: "checks", "data-testid": "verify-items" },
    sorted.map((i) => h("li", { "data-testid": "verify-item", "data-ok": i.ok === null ? "unchecked" : i.ok ? "true" : "false", "data-group": i.group }, mark(i), " ", h("strong", {}, i.label), h("span", { class: "muted" }, ` — ${i.detail}`))),
  );
  return [result, ...notes, hand, h("details", { open: failed.length > 0 }, h("summary", {}, "Every check"), list)].filter(Boolean);
}

async function auctionPage(auctionId) {
  setTitle(`Auction ${shortId(auctionId)}`);
  main.replaceChildren(h("p", { class: "muted" }, "Loading…"));
  let stopped = false;
  let down = false; // the last request failed: facts dimmed, the countdown stopped
  let current = null; // the summary shown
  let facts = null; // while open: its facts, updated in place as the summary changes
  let shownKey = null;
  // Announced only when something goes wrong (and when it is over).
  const problem = h("p", { class: "warn problem", role: "status", "data-testid": "auction-problem" });
  const ticker = setInterval(() => {
    if (current && current.status === "open" && !down) {
      const left = main.querySelector("[data-left]");
      if (left) setText(left, timeLeft(current));
    }
  }, 100);
  const header = () => [
    h("p", { class: "crumbs" }, h("a", { href: "/" }, "Auctions"), " / ", h("span", {}, shortId(auctionId))),
    h("h1", {}, "Auction ", h("code", { class: "hex" }, auctionId)),
  ];
  const render = async () => {
    const { status, body: summary } = await getJSON(`/explorer/api/auctions/${encodeURIComponent(auctionId)}`);
    if (status === 404) {
      main.replaceChildren(h("h1", {}, "Auction not found"), h("p", {}, failure(status, summary, "the auction")), h("p", {}, h("a", { href: "/" }, "Back to the auctions")));
      return true;
    }
    if (status !== 200) throw new Refused(failure(status, summary, "the auction"));
    noteServerTime(summary.server_time);
    setText(problem, "");
    current = summary;
    if (summary.status === "open") {
      rememberOpenCommitments([summary]);
      const { server_time: _, ...rest } = summary;
      const key = JSON.stringify(rest);
      if (facts && facts.isConnected) {
        // The same page: only what changed (the commits so far) is redrawn.
        if (key !== shownKey) patch(facts, summaryList(summary, null));
      } else {
        facts = summaryList(summary, null);
        main.replaceChildren(...header(), problem, facts, h("p", { class: "muted" }, "Bidding is sealed: the competition, the seed and the phantom bids are published when the auction ends. This page updates by itself."));
      }
      shownKey = key;
      return false;
    }
    const { status: code, body: doc } = await getJSON(`/v1/auctions/${encodeURIComponent(auctionId)}/competition`);
    if (code !== 200) {
      // Ended, its competition not sent: the facts are the summary's until it is.
      if (!facts || !facts.isConnected || facts.dataset.ended !== "true") {
        facts = summaryList(summary, null);
        facts.dataset.ended = "true";
        main.replaceChildren(...header(), problem, facts);
      }
      throw new Refused(`The competition is not available: ${failure(code, doc, "the competition")}`);
    }
    // The commitment this browser kept while the auction was open, never the one sent
    // now with the seed (a server could swap both).
    const seen = commitmentSeenOpen(auctionId);
    const termsAtOpen = termsSeenOpen(auctionId);
    const panel = h("section", { class: "verify", "aria-labelledby": "h-verify" });
    const button = h("button", { type: "button", "data-testid": "verify-button" }, "Verify again");
    // A document the checks cannot read is a failure of its own, said field by field;
    // it is not fetched again (the server sent what it publishes).
    const malformed = documentProblems(doc);
    if (malformed.length) {
      const shown = malformed.slice(0, 8);
      if (malformed.length > shown.length) shown.push(`${malformed.length - shown.length} more`);
      main.replaceChildren(
        ...header(),
        summaryList(summary, null),
        h(
          "section",
          { class: "verify", "aria-labelledby": "h-verify" },
          h("h2", { id: "h-verify" }, "Verification"),
          h("p", { class: "verdict failed", "data-testid": "verify-result", "data-ok": "false", "data-verdict": "failed", role: "status" }, "✗ The competition document is malformed: it cannot be checked"),
          h("ul", { class: "checks", "data-testid": "malformed" }, shown.map((text) => h("li", {}, mark({ ok: false, label: "malformed", detail: text }), " ", text))),
          h("p", { class: "muted" }, "The facts above are the server's summary, not verified."),
        ),
      );
      return true;
    }
    let shownFacts = summaryList(summary, doc, seen);
    const verify = async () => {
      const focused = document.activeElement === button; // kept on it when it is back
      button.disabled = true;
      panel.replaceChildren(h("h2", { id: "h-verify" }, "Verification"), h("p", { class: "muted", role: "status" }, "Checking…"));
      let items;
      try {
        items = await verifyCompetition(doc, { phantomCommitmentAtOpen: seen, termsAtOpen, summary });
      } catch (error) {
        items = [{ group: "document", label: "the document can be checked", ok: false, detail: error.message, ref: "document" }];
      }
      let sections = [];
      try {
        sections = competitionSections(doc, items, summary);
      } catch (error) {
        items.push({ group: "document", label: "the document can be shown", ok: false, detail: error.message, ref: "document" });
      }
      const notes = [];
      if (!webCrypto) notes.push("WebCrypto is not available on this page (plain http to a remote host): SHA-256 computed in JavaScript.");
      if (!exactIntegersSupported) notes.push("This browser reads integers above 2^53 as rounded numbers: nonces may not verify.");
      panel.replaceChildren(
        h("h2", { id: "h-verify" }, "Verification"),
        h("p", { class: "muted" }, "Recomputed in this browser from the public documents: each reveal's SHA-256 commitment (docs/commitment.md), each phantom bid from the revealed seed (docs/phantoms.md), against the phantom commitment this browser kept while the auction was open, the terms (phantom policy, rules, phantom model) it kept then, and the clearing: the ranking, allocations, fill prices, CFMM remainder, price and outcome the published rules give those bids (docs/rule-book.md), bit for bit; and the server's summary (what the feed lists) against the document."),
        ...verifyPanel(items),
        ...notes.map((n) => h("p", { class: "warn" }, n)),
        button,
      );
      // The facts again, each marked with its checks.
      const marked = summaryList(summary, doc, seen, items);
      shownFacts.replaceWith(marked);
      shownFacts = marked;
      button.disabled = false;
      if (focused) button.focus();
      for (const section of main.querySelectorAll("section.data")) section.remove();
      for (const section of sections) {
        section.classList.add("data");
        main.append(section);
      }
    };
    button.addEventListener("click", verify);
    main.replaceChildren(...header(), shownFacts, panel);
    await verify();
    return true;
  };
  // While the server does not answer (or answers an error), ask again after a growing
  // delay, the facts dimmed and the countdown stopped.
  const setDown = (now) => {
    down = now;
    if (facts) facts.classList.toggle("stale", now);
    const left = main.querySelector("[data-left]");
    if (now && left && current && current.status === "open") setText(left, "—");
  };
  const loop = async () => {
    let failures = 0;
    while (!stopped) {
      let done = false;
      let delay = POLL_MS;
      try {
        done = await render();
        failures = 0;
        if (down) setDown(false);
      } catch (error) {
        failures += 1;
        delay = backoff(failures);
        setDown(true);
        const text = notAnswering(error, delay);
        if (problem.isConnected) setText(problem, text);
        else main.replaceChildren(h("p", { class: "warn", role: "status", "data-testid": "auction-problem" }, text));
      }
      if (done) return;
      await sleep(delay);
    }
  };
  await loop();
  clearInterval(ticker);
  return () => {
    stopped = true;
    clearInterval(ticker);
  };
}

// ------------------------------------------------------------------ bidders

async function biddersPage() {
  setTitle("Bidders");
  const { status, body } = await getJSON("/explorer/api/bidders");
  if (status !== 200) {
    main.replaceChildren(h("h1", {}, "Bidders"), h("p", { class: "warn" }, failure(status, body, "the bidders")));
    return;
  }
  const rows = body.bidders.map((b) =>
    h(
      "tr",
      { "data-testid": "bidder-row", "data-bidder-id": b.bidder_id },
      cell("Bidder", idText(b.bidder_id)),
      cell("Auctions entered", String(b.auctions), { class: "n" }),
      cell("Wins", String(b.wins), { class: "n" }),
      cell("Win share", percent(b.win_share), { class: "n" }),
      cell("No-reveals", `${b.no_reveals} (${percent(b.no_reveal_share)})`, { class: "n" }),
      cell("No-reveal rate (penalty EWMA)", b.no_reveal_rate === null ? "—" : `${percent(b.no_reveal_rate)} of ${percent(b.no_reveal_threshold)} limit`, { class: "n" }),
      cell("Penalty state", b.blocked ? h("span", { class: "badge bad" }, "blocked until ", time(b.blocked_until)) : h("span", { class: "badge ok" }, b.block_count ? `active (${b.block_count} past blocks)` : "active")),
    ),
  );
  main.replaceChildren(
    h("h1", {}, "Bidders"),
    h("p", { class: "lede" }, `Every bidder that committed in the last ${body.recent_auctions} finished auctions: how often it entered, won and failed to reveal, and its penalty state now.`),
    table("Bidders", ["Bidder", "Auctions entered", "Wins", "Win share", "No-reveals", "No-reveal rate (penalty EWMA)", "Penalty state"], rows.length ? rows : [h("tr", {}, h("td", { colspan: 7, class: "muted" }, "No bidder yet."))], { "data-testid": "bidders" }),
    h("p", { class: "muted" }, "A no-reveal is counted where the bidder could have revealed: not in an auction aborted before its reveal window opened."),
  );
}

// ------------------------------------------------------------------ routing

async function route() {
  const path = location.pathname;
  const match = path.match(/^\/auctions\/([^/]+)\/?$/);
  if (match) return auctionPage(decodeURIComponent(match[1]));
  if (path === "/bidders" || path === "/bidders/") return biddersPage();
  return feedPage();
}

route();
