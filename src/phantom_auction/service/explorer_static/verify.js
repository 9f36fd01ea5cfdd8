// Verification of an auction from its public documents, in the browser.
//
// Written from docs/commitment.md (the sealed-bid commitment) and docs/phantoms.md (the
// phantom draw) alone: SHA-256 (WebCrypto, or the fallback below where WebCrypto is not
// offered: pages served over plain http to another host), SHAKE-256 (written here:
// WebCrypto has none) and IEEE-754 double arithmetic in the documented order.

// ------------------------------------------------------------------ bytes

const encoder = new TextEncoder();

export function hexToBytes(hex) {
  if (typeof hex !== "string" || hex.length % 2 !== 0 || /[^0-9a-fA-F]/.test(hex)) {
    throw new Error(`not hex: ${String(hex).slice(0, 80)}`);
  }
  const out = new Uint8Array(hex.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(hex.substr(2 * i, 2), 16);
  return out;
}

export function bytesToHex(bytes) {
  let s = "";
  for (const b of bytes) s += b.toString(16).padStart(2, "0");
  return s;
}

function concat(parts) {
  const total = parts.reduce((n, p) => n + p.length, 0);
  const out = new Uint8Array(total);
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

// ------------------------------------------------------------------ JSON with exact integers

// JSON.parse reads 1795735040612562678 as a double (rounded): integers beyond 2^53 (nonces,
// token ids) are read from their source text as BigInt instead (JSON.parse source text
// access, Chrome 114+, Firefox 135+, Safari 18.4+).
export function parseExact(text) {
  return JSON.parse(text, (key, value, context) => {
    if (typeof value === "number" && !Number.isSafeInteger(value) && context && /^-?\d+$/.test(context.source)) {
      return BigInt(context.source);
    }
    return value;
  });
}

export const exactIntegersSupported = (() => {
  try {
    return typeof parseExact("[9007199254740993]")[0] === "bigint";
  } catch {
    return false;
  }
})();

// ------------------------------------------------------------------ SHA-256

const K256 = new Uint32Array([
  0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
  0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
  0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
  0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
  0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
  0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
  0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
  0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
]);

// SHA-256 in plain JavaScript (FIPS 180-4), for where crypto.subtle is missing.
export function sha256Plain(data) {
  const bitLength = data.length * 8;
  const padded = new Uint8Array(((data.length + 9 + 63) >> 6) << 6);
  padded.set(data);
  padded[data.length] = 0x80;
  const view = new DataView(padded.buffer);
  view.setUint32(padded.length - 8, Math.floor(bitLength / 2 ** 32));
  view.setUint32(padded.length - 4, bitLength >>> 0);
  const h = new Uint32Array([
    0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19,
  ]);
  const w = new Uint32Array(64);
  const rotr = (x, n) => (x >>> n) | (x << (32 - n));
  for (let block = 0; block < padded.length; block += 64) {
    for (let i = 0; i < 16; i++) w[i] = view.getUint32(block + 4 * i);
    for (let i = 16; i < 64; i++) {
      const s0 = rotr(w[i - 15], 7) ^ rotr(w[i - 15], 18) ^ (w[i - 15] >>> 3);
      const s1 = rotr(w[i - 2], 17) ^ rotr(w[i - 2], 19) ^ (w[i - 2] >>> 10);
      w[i] = (w[i - 16] + s0 + w[i - 7] + s1) >>> 0;
    }
    let [a, b, c, d, e, f, g, hh] = h;
    for (let i = 0; i < 64; i++) {
      const t1 = (hh + (rotr(e, 6) ^ rotr(e, 11) ^ rotr(e, 25)) + ((e & f) ^ (~e & g)) + K256[i] + w[i]) >>> 0;
      const t2 = ((rotr(a, 2) ^ rotr(a, 13) ^ rotr(a, 22)) + ((a & b) ^ (a & c) ^ (b & c))) >>> 0;
      hh = g;
      g = f;
      f = e;
      e = (d + t1) >>> 0;
      d = c;
      c = b;
      b = a;
      a = (t1 + t2) >>> 0;
    }
    h[0] += a; h[1] += b; h[2] += c; h[3] += d; h[4] += e; h[5] += f; h[6] += g; h[7] += hh;
  }
  const out = new Uint8Array(32);
  const outView = new DataView(out.buffer);
  for (let i = 0; i < 8; i++) outView.setUint32(4 * i, h[i]);
  return out;
}

export const webCrypto = typeof crypto !== "undefined" && crypto.subtle !== undefined;

export async function sha256(data) {
  if (webCrypto) return new Uint8Array(await crypto.subtle.digest("SHA-256", data));
  return sha256Plain(data);
}

// ------------------------------------------------------------------ SHAKE-256 (FIPS 202)

const MASK64 = (1n << 64n) - 1n;
const KECCAK_RC = [
  0x0000000000000001n, 0x0000000000008082n, 0x800000000000808an, 0x8000000080008000n,
  0x000000000000808bn, 0x0000000080000001n, 0x8000000080008081n, 0x8000000000008009n,
  0x000000000000008an, 0x0000000000000088n, 0x0000000080008009n, 0x000000008000000an,
  0x000000008000808bn, 0x800000000000008bn, 0x8000000000008089n, 0x8000000000008003n,
  0x8000000000008002n, 0x8000000000000080n, 0x000000000000800an, 0x800000008000000an,
  0x8000000080008081n, 0x8000000000008080n, 0x0000000080000001n, 0x8000000080008008n,
];
// Rotation of lane x + 5y.
const KECCAK_ROT = [0, 1, 62, 28, 27, 36, 44, 6, 55, 20, 3, 10, 43, 25, 39, 41, 45, 15, 21, 8, 18, 2, 61, 56, 14];

function rotl64(x, n) {
  if (n === 0) return x;
  const k = BigInt(n);
  return ((x << k) | (x >> (64n - k))) & MASK64;
}

function keccakF(a) {
  const c = new Array(5);
  const b = new Array(25);
  for (let round = 0; round < 24; round++) {
    for (let x = 0; x < 5; x++) c[x] = a[x] ^ a[x + 5] ^ a[x + 10] ^ a[x + 15] ^ a[x + 20];
    for (let x = 0; x < 5; x++) {
      const d = c[(x + 4) % 5] ^ rotl64(c[(x + 1) % 5], 1);
      for (let y = 0; y < 25; y += 5) a[x + y] ^= d;
    }
    for (let x = 0; x < 5; x++) {
      for (let y = 0; y < 5; y++) {
        b[y + 5 * ((2 * x + 3 * y) % 5)] = rotl64(a[x + 5 * y], KECCAK_ROT[x + 5 * y]);
      }
    }
    for (let y = 0; y < 25; y += 5) {
      for (let x = 0; x < 5; x++) {
        a[x + y] = b[x + y] ^ (~b[((x + 1) % 5) + y] & MASK64 & b[((x + 2) % 5) + y]);
      }
    }
    a[0] ^= KECCAK_RC[round];
  }
}

export function shake256(data, length) {
  const rate = 136;
  const a = new Array(25).fill(0n);
  const padded = new Uint8Array(Math.floor(data.length / rate + 1) * rate);
  padded.set(data);
  padded[data.length] ^= 0x1f;
  padded[padded.length - 1] ^= 0x80;
  const absorb = (block, at) => {
    for (let i = 0; i < rate / 8; i++) {
      let lane = 0n;
      for (let j = 7; j >= 0; j--) lane = (lane << 8n) | BigInt(block[at + 8 * i + j]);
      a[i] ^= lane;
    }
  };
  for (let at = 0; at < padded.length; at += rate) {
    absorb(padded, at);
    keccakF(a);
  }
  const out = new Uint8Array(length);
  let at = 0;
  for (;;) {
    for (let i = 0; i < rate / 8 && at < length; i++) {
      let lane = a[i];
      for (let j = 0; j < 8 && at < length; j++) {
        out[at++] = Number(lane & 0xffn);
        lane >>= 8n;
      }
    }
    if (at >= length) return out;
    keccakF(a);
  }
}

// ------------------------------------------------------------------ the commitment (docs/commitment.md)

export const COMMITMENT_DOMAIN = "phantom-auction/commitment/v1";
export const COMMITMENT_DOMAIN_V2 = "phantom-auction/commitment/v2";
// The versions a reveal may open its commitment in (the engine accepts either).
export const COMMITMENT_VERSIONS = [2, 1];

// The shortest round-trip decimal in plain positional notation: String(x) is the shortest
// round-trip text; only its exponent form needs rewriting.
export function canonicalDecimal(x) {
  if (typeof x !== "number" || !Number.isFinite(x)) throw new Error(`not a finite number: ${x}`);
  if (x === 0) return "0";
  let s = String(x);
  const e = s.indexOf("e");
  if (e >= 0) {
    let mantissa = s.slice(0, e);
    const exponent = parseInt(s.slice(e + 1), 10);
    const negative = mantissa.startsWith("-");
    if (negative) mantissa = mantissa.slice(1);
    const dot = mantissa.indexOf(".");
    const digits = mantissa.replace(".", "");
    const point = (dot >= 0 ? dot : mantissa.length) + exponent; // digits before the point
    if (point <= 0) s = "0." + "0".repeat(-point) + digits;
    else if (point >= digits.length) s = digits + "0".repeat(point - digits.length);
    else s = digits.slice(0, point) + "." + digits.slice(point);
    if (negative) s = "-" + s;
  }
  if (s.includes(".")) s = s.replace(/0+$/, "").replace(/\.$/, "");
  return s;
}

function text(s) {
  const bytes = encoder.encode(s);
  const out = new Uint8Array(4 + bytes.length);
  new DataView(out.buffer).setUint32(0, bytes.length);
  out.set(bytes, 4);
  return out;
}

function integer(value, signed) {
  const n = BigInt(value);
  const out = new Uint8Array(8);
  const view = new DataView(out.buffer);
  if (signed) {
    if (n < -(2n ** 63n) || n >= 2n ** 63n) throw new Error(`not an i64: ${n}`);
    view.setBigInt64(0, n);
  } else {
    if (n < 0n || n >= 2n ** 64n) throw new Error(`not a u64: ${n}`);
    view.setBigUint64(0, n);
  }
  return out;
}

// Version 2's price field: the binary64 bits, big-endian; zero (-0 too) as +0.
export function float64(x) {
  if (typeof x !== "number" || !Number.isFinite(x)) throw new Error(`not a finite number: ${x}`);
  const out = new Uint8Array(8);
  new DataView(out.buffer).setFloat64(0, x + 0);
  return out;
}

// Version 1 writes the prices as canonical decimals, version 2 as binary64.
export function commitmentPreimage(auctionId, bid, version = 1) {
  if (version !== 1 && version !== 2) throw new Error(`unknown commitment version: ${version}`);
  const salt = hexToBytes(bid.salt);
  if (salt.length !== 32) throw new Error("the salt must be 32 bytes");
  const price = version === 1 ? (x) => text(canonicalDecimal(x)) : float64;
  return concat([
    text(version === 1 ? COMMITMENT_DOMAIN : COMMITMENT_DOMAIN_V2),
    text(auctionId),
    text(bid.bidder_id),
    integer(bid.token_pair[0], true),
    integer(bid.token_pair[1], true),
    price(bid.improved_price),
    price(bid.volume),
    price(bid.priority_fee),
    integer(bid.nonce, false),
    salt,
  ]);
}

export async function commitment(auctionId, bid, version = 1) {
  return bytesToHex(await sha256(commitmentPreimage(auctionId, bid, version)));
}

// The reveal's digest in each version: {2: hex, 1: hex}.
export async function commitments(auctionId, bid) {
  const out = {};
  for (const version of COMMITMENT_VERSIONS) out[version] = await commitment(auctionId, bid, version);
  return out;
}

// ------------------------------------------------------------------ the phantom draw (docs/phantoms.md)

export const PHANTOM_DOMAIN = "phantom-auction/phantoms/v2";
const SQRT_HALF = 0.7071067811865476;
const LN2_HI = 6.9314718036912381649e-1;
const LN2_LO = 1.90821492927058770002e-10;
const TWO_M53 = 1 / 9007199254740992;
const MAX_ATTEMPTS = 1000;

const scratch = new DataView(new ArrayBuffer(8));

// x = m * 2^k with 0.5 <= m < 1, exactly (from the bits).
function frexp(x) {
  scratch.setFloat64(0, x);
  let exponent = (scratch.getUint16(0) >>> 4) & 0x7ff;
  let k = 0;
  if (exponent === 0) {
    // subnormal: scale up by 2^64 (exact) first
    scratch.setFloat64(0, x * 18446744073709551616);
    exponent = (scratch.getUint16(0) >>> 4) & 0x7ff;
    k = -64;
  }
  const top = scratch.getUint16(0);
  scratch.setUint16(0, (top & 0x800f) | (1022 << 4));
  return [scratch.getFloat64(0), k + exponent - 1022];
}

export function ln(x) {
  let [m, k] = frexp(x);
  if (m < SQRT_HALF) {
    m = m * 2;
    k = k - 1;
  }
  const f = m - 1;
  const s = f / (2 + f);
  const t = s * s;
  let q = (2 / 23) * t + 2 / 21;
  for (const n of [19, 17, 15, 13, 11, 9, 7, 5, 3]) q = q * t + 2 / n;
  const r = t * q;
  const hfsq = 0.5 * f * f;
  return k * LN2_HI - ((hfsq - (s * (hfsq + r) + k * LN2_LO)) - f);
}

export function proposal(a, b) {
  if (a === b) return { kind: "point", sign: 1, low: a, high: b };
  if (a < 0 && 0 < b) return { kind: b - a >= 5 ? "normal" : "uniform", sign: 1, low: a, high: b, peak: 0 };
  const [sign, low, high] = a >= 0 ? [1, a, b] : [-1, -b, -a];
  const alpha = 0.5 * (low + Math.sqrt(low * low + 4));
  return { kind: alpha * (high - low) < 1 ? "uniform" : "exponential", sign, low, high, peak: low };
}

class Uniforms {
  constructor(seed, first) {
    this.input = concat([encoder.encode(PHANTOM_DOMAIN), seed]);
    this.bytes = new Uint8Array(0);
    this.grow(first);
  }
  grow(words) {
    this.bytes = shake256(this.input, 8 * words);
    this.view = new DataView(this.bytes.buffer);
  }
  at(j) {
    if (8 * j + 8 > this.bytes.length) this.grow(Math.max(2 * (this.bytes.length / 8), j + 64));
    const hi = this.view.getUint32(8 * j);
    const lo = this.view.getUint32(8 * j + 4);
    return (hi * 2097152 + (lo >>> 11)) * TWO_M53;
  }
}

// The phantom bids [slot, improved_price, volume, priority_fee] of a seed (bytes).
export function phantomBids(seed, model, baselinePrice, amount) {
  const n = model.max_phantom_bidders;
  const u = new Uniforms(seed, 3 * n + 4 * n + 8);
  const mean = model.mean_bps;
  const sd = model.sd_bps;
  const minBps = model.min_bps;
  const maxBps = model.max_bps;
  const p = proposal((minBps - mean) / sd, (maxBps - mean) / sd);
  const alpha = 0.5 * (p.low + Math.sqrt(p.low * p.low + 4));
  const [vLo, vHi] = model.volume_fraction;
  const [fLo, fHi] = model.fee_fraction;
  const bids = [];
  let cursor = 3 * n;
  for (let s = 0; s < n; s++) {
    if (!(u.at(3 * s) < model.bid_probability)) continue;
    let improvement = minBps;
    for (let attempt = 0; p.kind !== "point" && attempt < MAX_ATTEMPTS; attempt++) {
      const u1 = u.at(cursor);
      const v = 1 - u.at(cursor + 1);
      cursor += 2;
      let z;
      if (p.kind === "normal") {
        const x = 2 * u1 - 1;
        const y = 2 * v - 1;
        const r = x * x + y * y;
        if (r >= 1 || r === 0) continue;
        z = x * Math.sqrt((-2 * ln(r)) / r);
        if (!(p.low <= z && z <= p.high)) continue;
      } else {
        let h;
        if (p.kind === "exponential") {
          z = p.low - ln(1 - u1) / alpha;
          if (z > p.high) continue;
          const d = z - alpha;
          h = -0.5 * (d * d);
        } else {
          z = p.low + (p.high - p.low) * u1;
          h = 0.5 * ((p.peak - z) * (p.peak + z));
        }
        if (v - 1 > h * v || (v - 1 > h && ln(v) > h)) continue;
      }
      improvement = Math.min(Math.max(mean + sd * (p.sign * z), minBps), maxBps);
      break;
    }
    const volume = amount * (vLo + (vHi - vLo) * u.at(3 * s + 1));
    const fee = volume * model.priority_fee_max_ratio * (fLo + (fHi - fLo) * u.at(3 * s + 2));
    bids.push([s, baselinePrice * (1 + improvement / 10000), volume, fee]);
  }
  return bids;
}

// ------------------------------------------------------------------ one auction, every item

function same(a, b) {
  return a === b || (typeof a === "bigint" && BigInt(b) === a) || (typeof b === "bigint" && BigInt(a) === b);
}

// Every check of docs/phantoms.md ("Verifying an auction") on a competition document:
// [{group, label, ok, detail, ref}], ref naming the row it belongs to; ok is null for a
// check that could not be made: the seed against the commitment published at open,
// without phantomCommitmentAtOpen (kept by the caller from the open: never taken from
// a document sent after the end, which could have been swapped with the seed).
export async function verifyCompetition(doc, { phantomCommitmentAtOpen } = {}) {
  const items = [];
  const add = (group, label, ok, detail, ref) => items.push({ group, label, ok, detail, ref });
  const auctionId = doc.auction_id;

  // Commitments: every reveal's fields hash to the commitment the bidder committed.
  const committed = new Map();
  for (const c of doc.commitments || []) if (c.accepted) committed.set(c.bidder_id, c);
  for (const [index, reveal] of (doc.reveals || []).entries()) {
    const ref = `reveal-${index}`;
    const commit = committed.get(reveal.bidder_id);
    let hashes;
    try {
      hashes = await commitments(auctionId, reveal);
    } catch (error) {
      add("commitments", `${reveal.bidder_id}: reveal`, false, `cannot encode: ${error.message}`, ref);
      continue;
    }
    // The version the reveal opens its commitment in (v2 or v1), if any.
    const version = commit === undefined ? undefined : COMMITMENT_VERSIONS.find((k) => hashes[k] === commit.commitment);
    const opens = version !== undefined && same(reveal.nonce, commit.nonce);
    if (reveal.accepted) {
      const ok = opens;
      const hash = hashes[version ?? 2];
      add(
        "commitments",
        `${reveal.bidder_id}: reveal hashes to its commitment`,
        ok,
        ok
          ? `SHA-256 (v${version}) = ${hash.slice(0, 16)}…`
          : `recomputed ${hashes[2].slice(0, 16)}… (v2) / ${hashes[1].slice(0, 16)}… (v1), committed ${commit ? commit.commitment.slice(0, 16) : "nothing"}…`,
        ref,
      );
    } else if (reveal.reason === "commitment_mismatch") {
      const ok = !opens;
      add(
        "commitments",
        `${reveal.bidder_id}: refused reveal does not match`,
        ok,
        ok ? "its fields do not hash to the commitment: refusal justified" : "its fields hash to the commitment: the refusal is wrong",
        ref,
      );
    }
  }
  // Accepted reveals are the real bids of the ranking.
  const realRanked = (doc.ranking || []).filter((r) => !r.is_phantom);
  const accepted = (doc.reveals || []).filter((r) => r.accepted);
  for (const reveal of accepted) {
    const entry = realRanked.find((r) => r.bidder_id === reveal.bidder_id);
    const ok =
      entry !== undefined &&
      entry.improved_price === reveal.improved_price &&
      entry.volume === reveal.volume &&
      entry.priority_fee === reveal.priority_fee;
    add("ranking", `${reveal.bidder_id}: ranked as revealed`, ok, ok ? "price, volume and fee as revealed" : "the ranking differs from the reveal", `rank-${reveal.bidder_id}`);
  }
  if (realRanked.length !== accepted.length && doc.status === "finalized") {
    add("ranking", "real bids in the ranking", false, `${realRanked.length} ranked, ${accepted.length} accepted reveals`, "ranking");
  }

  // Phantoms: the seed matches its commitment and redraws every phantom bid.
  let seed;
  try {
    seed = hexToBytes(doc.phantom_seed);
  } catch {
    seed = null;
  }
  const seedHash = seed && seed.length === 32 ? bytesToHex(await sha256(seed)) : null;
  add("phantoms", "seed hashes to the phantom commitment", seedHash !== null && seedHash === doc.phantom_commitment, seedHash ? `SHA-256(seed) = ${seedHash.slice(0, 16)}…` : "no 32-byte seed", "seed");
  const atOpen = "commitment is the one published at open";
  if (phantomCommitmentAtOpen) {
    const kept = String(phantomCommitmentAtOpen);
    const ok = seedHash === kept && doc.phantom_commitment === kept;
    add(
      "phantoms",
      atOpen,
      ok,
      ok
        ? `SHA-256(seed) = ${kept.slice(0, 16)}…, the commitment this browser kept while the auction was open`
        : `this browser kept ${kept.slice(0, 16)}… while the auction was open; the document's commitment is ${String(doc.phantom_commitment).slice(0, 16)}…${seedHash ? `, SHA-256(seed) ${seedHash.slice(0, 16)}…` : ""}`,
      "seed",
    );
  } else {
    add(
      "phantoms",
      atOpen,
      null,
      `not checked: this browser did not see this auction open. Compare by hand the phantom_commitment published at open (the auction_opened push, GET /v1/auctions/open, or the feed while it was open) with ${doc.phantom_commitment}`,
      "seed",
    );
  }
  if (seed && seed.length === 32) {
    const drawn = phantomBids(seed, doc.phantom_model, doc.baseline_price, doc.amount);
    const listed = doc.phantom_bids || [];
    const bySlot = new Map(drawn.map((b) => [b[0], b]));
    for (const bid of listed) {
      const expected = bySlot.get(bid.slot);
      const ok =
        expected !== undefined &&
        bid.bidder_id === `phantom-${bid.slot}` &&
        expected[1] === bid.improved_price &&
        expected[2] === bid.volume &&
        expected[3] === bid.priority_fee;
      add("phantoms", `phantom-${bid.slot} redrawn from the seed`, ok, ok ? "price, volume and fee exact" : expected ? `drawn ${expected[1]} / ${expected[2]} / ${expected[3]}` : "no such slot in the draw", `phantom-${bid.slot}`);
      const ranked = (doc.ranking || []).find((r) => r.is_phantom && r.bidder_id === bid.bidder_id);
      const inRanking = ranked !== undefined && ranked.improved_price === bid.improved_price && ranked.volume === bid.volume && ranked.priority_fee === bid.priority_fee;
      add("phantoms", `phantom-${bid.slot} ranked as drawn`, inRanking, inRanking ? "in the ranking unchanged" : "missing or changed in the ranking", `phantom-${bid.slot}`);
    }
    const listedSlots = new Set(listed.map((b) => b.slot));
    const missing = drawn.filter((b) => !listedSlots.has(b[0])).map((b) => `phantom-${b[0]}`);
    const rankedPhantoms = (doc.ranking || []).filter((r) => r.is_phantom).length;
    const countOk = missing.length === 0 && listed.length === drawn.length && rankedPhantoms === drawn.length;
    add("phantoms", "every drawn phantom listed, no other", countOk, countOk ? `${drawn.length} phantom bids` : `drawn ${drawn.length}, listed ${listed.length}, ranked ${rankedPhantoms}${missing.length ? `; missing ${missing.join(", ")}` : ""}`, "phantoms");
  }
  return items;
}
