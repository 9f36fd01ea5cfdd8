// The explorer's pages: the live feed (/), one auction (/auctions/{id}), the bidders (/bidders).
// Rendered from public JSON only; every auction page verifies itself (verify.js).

import { parseExact, verifyCompetition, webCrypto, exactIntegersSupported } from "./verify.js";

const main = document.getElementById("main");
const POLL_MS = 300;
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
    body = { detail: text };
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
function shortId(id) {
  return id.length > 12 ? `${id.slice(0, 8)}…` : id;
}
function shortHex(hex) {
  return hex ? `${hex.slice(0, 10)}…` : "—";
}
function pair(tokens) {
  return `${tokens[0]} → ${tokens[1]}`;
}
function time(iso) {
  if (!iso) return "—";
  const d = new Date(iso);
  return `${d.toISOString().slice(11, 23)} UTC`;
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
function timeLeft(summary) {
  if (summary.status !== "open") return "ended";
  const left = Date.parse(summary.reveal_deadline) - (Date.now() + clockSkew);
  if (left <= 0) return "clearing…";
  const commitLeft = Date.parse(summary.commit_deadline) - (Date.now() + clockSkew);
  const phase = commitLeft > 0 ? "collecting" : "revealing";
  return left >= 10000 ? `${Math.ceil(left / 1000)} s (${phase})` : `${Math.ceil(left)} ms (${phase})`;
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
    cell("Winner", winnerLabel(summary), { class: "nowrap" }),
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
  const summaries = new Map();
  const body = h("tbody", { "aria-live": "off" });
  const status = h("p", { class: "muted", role: "status", "data-testid": "feed-status" }, "Connecting…");
  main.replaceChildren(
    h("h1", {}, "Auctions"),
    h("p", { class: "lede" }, "Live: auctions appear as they open and update as they finish. Open one to see its competition and verify it in your browser."),
    status,
    h(
      "div",
      { class: "table-wrap" },
      h(
        "table",
        { class: "feed", "data-testid": "feed" },
        h("caption", { class: "sr-only" }, "Open and recent auctions, newest first"),
        h("thead", {}, h("tr", {}, FEED_HEADERS.map((x) => h("th", { scope: "col" }, x)))),
        body,
      ),
    ),
  );
  let since = 0;
  let epoch = "";
  const render = () => {
    // Newest first; only the rows shown are kept, so a page left open stays as small and
    // as quick as a fresh one (at 100 auctions/s it would gather 360,000 in an hour).
    const ordered = [...summaries.values()].sort((a, b) => b.openedMs - a.openedMs);
    for (const old of ordered.splice(FEED_ROWS)) summaries.delete(old.auction_id);
    body.replaceChildren(...ordered.map(feedRow));
    if (ordered.length === 0) body.append(h("tr", {}, h("td", { colspan: FEED_HEADERS.length, class: "muted" }, "No auctions yet.")));
  };
  const poll = async () => {
    try {
      // Only what changed since the last answer: summaries, and auctions removed (pruned,
      // or ended without a result); or, after a restart or a long pause, the whole feed.
      const { status: code, body: page } = await getJSON(`/explorer/api/feed?since=${since}&epoch=${epoch}`);
      if (code !== 200) throw new Error(page.detail || `HTTP ${code}`);
      noteServerTime(page.server_time);
      if (page.reset) summaries.clear();
      for (const id of page.removed || []) summaries.delete(id);
      for (const summary of page.auctions) summaries.set(summary.auction_id, { ...summary, openedMs: Date.parse(summary.opened_at) });
      since = page.seq;
      epoch = page.epoch;
      render();
      status.textContent = `Live · ${summaries.size} auctions · updated ${time(page.server_time)}`;
    } catch (error) {
      status.textContent = `Cannot reach the server (${error.message}); retrying…`;
    }
  };
  await poll();
  const timer = setInterval(poll, POLL_MS);
  const ticker = setInterval(() => {
    for (const row of body.querySelectorAll("tr[data-status='open']")) {
      const summary = summaries.get(row.dataset.auctionId);
      if (summary) row.querySelector("[data-left]").textContent = timeLeft(summary);
    }
  }, 100);
  return () => {
    clearInterval(timer);
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
  const width = 720;
  const height = 260;
  const pad = { left: 56, right: 16, top: 24, bottom: 44 };
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
  for (const v of niceTicks(xMin, xMax, 6)) {
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
    parts.push(svg("text", { x: x(clearing) + 4, y: pad.top + 10, class: "clearing-label" }, `price ${clearing.toFixed(2)} bps`));
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

function mark(item) {
  if (!item) return h("span", { class: "mark none" }, "–");
  return h("span", { class: `mark ${item.ok ? "ok" : "bad"}`, title: item.detail, "aria-label": item.ok ? `verified: ${item.label}` : `failed: ${item.label}` }, item.ok ? "✓" : "✗");
}

function marks(items, ref) {
  const mine = items.filter((i) => i.ref === ref);
  if (mine.length === 0) return mark(null);
  const bad = mine.find((i) => !i.ok);
  return mark(bad || mine[0]);
}

function summaryList(summary, doc) {
  const rows = [
    ["Status", h("span", { "data-testid": "auction-outcome", "data-status": summary.status, class: `badge ${summary.status === "open" ? "open" : summary.outcome || ""}` }, outcomeLabel(summary))],
    ["Pair (in → out)", pair(summary.token_pair)],
    ["Amount", num(summary.amount, "token A")],
    ["Baseline price", num(summary.baseline_price, "B per A")],
    ["Mechanism", summary.mechanism || "—"],
    ["Winner", winnerLabel(summary)],
    ["Price to the user", num(summary.price, "B per A")],
    ["Improvement", bps(summary.improvement_bps)],
    ["Opened", time(summary.opened_at)],
    ["Bids sealed until", time(summary.commit_deadline)],
    ["Reveals until", time(summary.reveal_deadline)],
    ["Time left", h("span", { "data-left": "" }, timeLeft(summary))],
    ["Phantom commitment", h("code", { class: "hex" }, summary.phantom_commitment)],
  ];
  if (doc) rows.push(["Phantom seed", h("code", { class: "hex", "data-testid": "phantom-seed" }, doc.phantom_seed)]);
  else rows.push(["Phantom seed", h("span", { class: "muted" }, "sealed until the auction ends")]);
  return h("dl", { class: "facts" }, rows.map(([k, v]) => [h("dt", {}, k), h("dd", {}, v)]));
}

function competitionSections(doc, items) {
  const reveals = doc.reveals || [];
  const revealOf = new Map();
  reveals.forEach((r, index) => {
    if (!revealOf.has(r.bidder_id) || r.accepted) revealOf.set(r.bidder_id, { reveal: r, index });
  });
  const unrevealed = new Set(doc.unrevealed || []);
  const ranking = table(
    "Ranking: every real and phantom bid, best score first",
    ["Rank", "Bidder", "Kind", "Price (B per A)", "Improvement", "Fee (token)", "Score", "Allocated (A)", "Filled (A)", "Fill price (B per A)", "Check"],
    (doc.ranking || []).map((r) =>
      h(
        "tr",
        { "data-testid": "ranking-row", "data-bidder-id": r.bidder_id, "data-rank": r.rank, "data-price": String(r.improved_price), "data-volume": String(r.volume), "data-filled": String(r.filled), class: r.is_phantom ? "phantom-row" : "" },
        cell("Rank", String(r.rank), { class: "n" }),
        cell("Bidder", r.bidder_id),
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
    (doc.fills || []).map((f) => h("tr", { "data-testid": "fill-row" }, cell("Filled by", f.bidder_id || "CFMM (baseline)"), cell("Volume", num(f.volume), { class: "n" }), cell("Price", num(f.price), { class: "n" }))),
  );
  const commitments = table(
    "Commitments and their reveals",
    ["Bidder", "Commit", "Commitment · nonce", "Reveal", "Revealed price (B per A) · volume (A) · fee (token)", "Check"],
    (doc.commitments || []).map((c) => {
      const found = c.accepted ? revealOf.get(c.bidder_id) : undefined;
      const reveal = found ? found.reveal : undefined;
      let revealText = "—";
      if (c.accepted) revealText = reveal ? (reveal.accepted ? "revealed" : `refused: ${reveal.reason}`) : unrevealed.has(c.bidder_id) ? "no reveal" : "—";
      return h(
        "tr",
        { "data-testid": "commitment-row", "data-bidder-id": c.bidder_id },
        cell("Bidder", c.bidder_id),
        cell("Commit", h("span", {}, c.accepted ? "accepted" : h("span", { class: "warn" }, `refused: ${c.reason}`), h("br"), h("span", { class: "muted" }, time(c.received_at)))),
        cell("Commitment · nonce", h("span", {}, h("code", { class: "hex", title: c.commitment }, shortHex(c.commitment)), h("br"), h("span", { class: "muted" }, `nonce ${String(c.nonce)}`))),
        cell("Reveal", revealText, { class: revealText === "revealed" || revealText === "—" ? "" : "warn" }),
        cell("Revealed", reveal ? `${num(reveal.improved_price)} · ${num(reveal.volume)} · ${num(reveal.priority_fee)}` : "—", { class: "n" }),
        cell("Check", found ? marks(items, `reveal-${found.index}`) : mark(null)),
      );
    }),
  );
  const rejections = table(
    "Rejections, with their reason codes",
    ["Kind", "Bidder", "At", "Reason", "Detail"],
    (doc.rejections || []).length
      ? doc.rejections.map((r) => h("tr", { "data-testid": "rejection-row" }, cell("Kind", r.kind), cell("Bidder", r.bidder_id), cell("At", time(r.received_at)), cell("Reason", h("code", {}, r.reason)), cell("Detail", r.detail || "—")))
      : [h("tr", {}, h("td", { colspan: 5, class: "muted" }, "None."))],
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
  const failed = items.filter((i) => !i.ok);
  const result = h(
    "p",
    { class: `verdict ${failed.length ? "bad" : "ok"}`, "data-testid": "verify-result", "data-ok": failed.length ? "false" : "true", role: "status" },
    failed.length ? `✗ ${failed.length} of ${items.length} checks failed` : `✓ all ${items.length} checks passed`,
  );
  const list = h(
    "ul",
    { class: "checks", "data-testid": "verify-items" },
    items.map((i) => h("li", { "data-testid": "verify-item", "data-ok": i.ok ? "true" : "false", "data-group": i.group }, mark(i), " ", h("strong", {}, i.label), h("span", { class: "muted" }, ` — ${i.detail}`))),
  );
  return [result, h("details", { open: failed.length > 0 }, h("summary", {}, "Every check"), list)];
}

async function auctionPage(auctionId) {
  setTitle(`Auction ${shortId(auctionId)}`);
  main.replaceChildren(h("p", { class: "muted" }, "Loading…"));
  let stopped = false;
  let ticker = null;
  const render = async () => {
    const { status, body: summary } = await getJSON(`/explorer/api/auctions/${encodeURIComponent(auctionId)}`);
    if (status !== 200) {
      main.replaceChildren(h("h1", {}, "Auction not found"), h("p", {}, summary.detail || `HTTP ${status}`), h("p", {}, h("a", { href: "/" }, "Back to the auctions")));
      return true;
    }
    noteServerTime(summary.server_time);
    const header = [
      h("p", { class: "crumbs" }, h("a", { href: "/" }, "Auctions"), " / ", h("span", {}, shortId(auctionId))),
      h("h1", {}, "Auction ", h("code", { class: "hex" }, auctionId)),
    ];
    if (summary.status === "open") {
      main.replaceChildren(...header, summaryList(summary, null), h("p", { class: "muted", role: "status" }, "Bidding is sealed: the competition, the seed and the phantom bids are published when the auction ends. This page updates by itself."));
      clearInterval(ticker);
      ticker = setInterval(() => {
        const left = main.querySelector("[data-left]");
        if (left) left.textContent = timeLeft(summary);
      }, 100);
      return false;
    }
    clearInterval(ticker);
    const { status: code, body: doc } = await getJSON(`/v1/auctions/${encodeURIComponent(auctionId)}/competition`);
    if (code !== 200) {
      main.replaceChildren(...header, summaryList(summary, null), h("p", { class: "warn" }, `The competition is not available: ${doc.detail || code}`));
      return false;
    }
    const panel = h("section", { class: "verify", "aria-labelledby": "h-verify" });
    const button = h("button", { type: "button", "data-testid": "verify-button" }, "Verify again");
    const verify = async () => {
      button.disabled = true;
      panel.replaceChildren(h("h2", { id: "h-verify" }, "Verification"), h("p", { class: "muted", role: "status" }, "Checking…"));
      let items;
      try {
        items = await verifyCompetition(doc, { phantomCommitmentAtOpen: summary.phantom_commitment });
      } catch (error) {
        items = [{ group: "document", label: "the document can be checked", ok: false, detail: error.message, ref: "document" }];
      }
      const notes = [];
      if (!webCrypto) notes.push("WebCrypto is not available on this page (plain http to a remote host): SHA-256 computed in JavaScript.");
      if (!exactIntegersSupported) notes.push("This browser reads integers above 2^53 as rounded numbers: nonces may not verify.");
      panel.replaceChildren(
        h("h2", { id: "h-verify" }, "Verification"),
        h("p", { class: "muted" }, "Recomputed in this browser from the public documents: each reveal's SHA-256 commitment (docs/commitment.md) and each phantom bid from the revealed seed (docs/phantoms.md)."),
        ...verifyPanel(items),
        ...notes.map((n) => h("p", { class: "warn" }, n)),
        button,
      );
      button.disabled = false;
      for (const section of main.querySelectorAll("section.data")) section.remove();
      for (const section of competitionSections(doc, items)) {
        section.classList.add("data");
        main.append(section);
      }
    };
    button.addEventListener("click", verify);
    main.replaceChildren(...header, summaryList(summary, doc), panel);
    await verify();
    return true;
  };
  const loop = async () => {
    while (!stopped) {
      let done = false;
      try {
        done = await render();
      } catch (error) {
        main.replaceChildren(h("p", { class: "warn" }, `Cannot load the auction (${error.message}); retrying…`));
      }
      if (done) return;
      await new Promise((resolve) => setTimeout(resolve, POLL_MS));
    }
  };
  await loop();
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
    main.replaceChildren(h("h1", {}, "Bidders"), h("p", { class: "warn" }, body.detail || `HTTP ${status}`));
    return;
  }
  const rows = body.bidders.map((b) =>
    h(
      "tr",
      { "data-testid": "bidder-row", "data-bidder-id": b.bidder_id },
      cell("Bidder", b.bidder_id),
      cell("Auctions entered", String(b.auctions), { class: "n" }),
      cell("Wins", String(b.wins), { class: "n" }),
      cell("Win share", percent(b.win_share), { class: "n" }),
      cell("No-reveals", `${b.no_reveals} (${percent(b.no_reveal_share)})`, { class: "n" }),
      cell("No-reveal rate (penalty EWMA)", b.no_reveal_rate === null ? "—" : `${percent(b.no_reveal_rate)} of ${percent(b.no_reveal_threshold)} limit`, { class: "n" }),
      cell("Penalty state", b.blocked ? h("span", { class: "badge bad" }, `blocked until ${time(b.blocked_until)}`) : h("span", { class: "badge ok" }, b.block_count ? `active (${b.block_count} past blocks)` : "active")),
    ),
  );
  main.replaceChildren(
    h("h1", {}, "Bidders"),
    h("p", { class: "lede" }, `Every bidder that committed in the last ${body.recent_auctions} finished auctions: how often it entered, won and failed to reveal, and its penalty state now.`),
    table("Bidders", ["Bidder", "Auctions entered", "Wins", "Win share", "No-reveals", "No-reveal rate (penalty EWMA)", "Penalty state"], rows.length ? rows : [h("tr", {}, h("td", { colspan: 7, class: "muted" }, "No bidder yet."))], { "data-testid": "bidders" }),
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
