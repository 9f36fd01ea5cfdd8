// Verification of an auction from its public documents, in the browser.
//
// Written from docs/commitment.md (the sealed-bid commitment), docs/phantoms.md (the
// phantom draw), docs/rule-book.md and docs/mechanisms.md (the clearing) alone: SHA-256
// (WebCrypto, or the fallback below where WebCrypto is not offered: pages served over
// plain http to another host), SHAKE-256 (written here: WebCrypto has none) and IEEE-754
// double arithmetic in the documented order.

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
  // A field that cannot be encoded is named in the error (what a reader needs to see).
  const field = (name, encode) => {
    try {
      return encode(bid[name]);
    } catch (error) {
      throw new Error(`${name}: ${error.message}`);
    }
  };
  const salt = field("salt", (x) => {
    const bytes = hexToBytes(x);
    if (bytes.length !== 32) throw new Error(`must be 32 bytes, got ${bytes.length}`);
    return bytes;
  });
  const price = version === 1 ? (x) => text(canonicalDecimal(x)) : float64;
  const pair = field("token_pair", (x) => [integer(x[0], true), integer(x[1], true)]);
  return concat([
    text(version === 1 ? COMMITMENT_DOMAIN : COMMITMENT_DOMAIN_V2),
    text(auctionId),
    text(bid.bidder_id),
    ...pair,
    field("improved_price", price),
    field("volume", price),
    field("priority_fee", price),
    field("nonce", (x) => integer(x, false)),
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
  if (a < 0 && 0 < b) return { kind: b - a >= 5 ? "normal" : "uniform", sign: 1, low: a, high: b, peak: 0 };
  const [sign, low, high] = a >= 0 ? [1, a, b] : [-1, -b, -a];
  const alpha = 0.5 * (low + Math.sqrt(low * low + 4));
  // All the mass at the bound nearest the mean: a one-point interval, or one so many
  // sds away that low * low overflows (no exponential attempt could be accepted).
  if (a === b || !(alpha < Infinity)) return { kind: "point", sign, low, high: low, peak: low };
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
    // A point: no attempt, no uniform used; otherwise min_bps after MAX_ATTEMPTS rejections.
    let improvement = p.kind === "point" ? (p.sign > 0 ? minBps : maxBps) : minBps;
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

function same(a, b) {
  return a === b || (typeof a === "bigint" && BigInt(b) === a) || (typeof b === "bigint" && BigInt(a) === b);
}

// JSON with every object's keys sorted: two documents of the same terms give the same text.
export function canonicalJSON(value) {
  if (Array.isArray(value)) return `[${value.map(canonicalJSON).join(",")}]`;
  if (value !== null && typeof value === "object") {
    return `{${Object.keys(value).sort().map((k) => `${JSON.stringify(k)}:${canonicalJSON(value[k])}`).join(",")}}`;
  }
  return JSON.stringify(value);
}

// ------------------------------------------------------------------ the document's shape

// What a value is, for a reader: "a number (5)", "a list", "nothing".
function kind(value) {
  if (value === undefined) return "nothing";
  if (value === null) return "null";
  if (Array.isArray(value)) return "a list";
  if (typeof value === "object") return "an object";
  const shown = JSON.stringify(typeof value === "bigint" ? String(value) : value).slice(0, 40);
  return `${typeof value === "string" ? "a string" : `a ${typeof value}`} (${shown})`;
}
const isNumber = (x) => typeof x === "number" && Number.isFinite(x);
const isText = (x) => typeof x === "string";
const isObject = (x) => x !== null && typeof x === "object" && !Array.isArray(x);
// The lists of a competition document (absent or null: empty), the fields each entry's
// checks and tables read, and what they must be.
const ENTRY_FIELDS = {
  commitments: { bidder_id: [isText, "a string"] },
  reveals: { bidder_id: [isText, "a string"] },
  phantom_bids: { bidder_id: [isText, "a string"], slot: [Number.isInteger, "an integer"], improved_price: [isNumber, "a number"], volume: [isNumber, "a number"], priority_fee: [isNumber, "a number"] },
  ranking: { bidder_id: [isText, "a string"], rank: [isNumber, "a number"], improvement_bps: [isNumber, "a number"], volume: [isNumber, "a number"] },
  fills: { volume: [isNumber, "a number"] },
  rejections: { bidder_id: [isText, "a string"] },
};

// What is malformed in a competition document, each "field: expected …, got …" (empty if
// nothing): a document the checks and the page cannot read, shown as such.
export function documentProblems(doc) {
  if (!isObject(doc)) return [`the document: expected a JSON object, got ${kind(doc)}`];
  const out = [];
  const expect = (name, value, ok, what) => {
    if (!ok(value)) out.push(`${name}: expected ${what}, got ${kind(value)}`);
  };
  expect("auction_id", doc.auction_id, isText, "a string");
  expect("status", doc.status, isText, "a string");
  expect("amount", doc.amount, isNumber, "a number");
  expect("baseline_price", doc.baseline_price, (x) => isNumber(x) && x > 0, "a positive number");
  expect("phantom_commitment", doc.phantom_commitment, isText, "a string");
  expect("phantom_model", doc.phantom_model, isObject, "an object");
  for (const name of ["price", "improvement_bps"]) expect(name, doc[name], (x) => x === null || x === undefined || isNumber(x), "a number or null");
  for (const name of ["outcome", "phantom_seed"]) expect(name, doc[name], (x) => x === null || x === undefined || isText(x), "a string or null");
  expect("unrevealed", doc.unrevealed, (x) => x === null || x === undefined || (Array.isArray(x) && x.every(isText)), "a list of bidder ids");
  for (const [list, fields] of Object.entries(ENTRY_FIELDS)) {
    const value = doc[list];
    if (value === null || value === undefined) continue;
    if (!Array.isArray(value)) {
      out.push(`${list}: expected a list, got ${kind(value)}`);
      continue;
    }
    value.forEach((entry, i) => {
      if (!isObject(entry)) out.push(`${list}[${i}]: expected an object, got ${kind(entry)}`);
      else for (const [name, [ok, what]] of Object.entries(fields)) expect(`${list}[${i}].${name}`, entry[name], ok, what);
    });
  }
  return out;
}

// ------------------------------------------------------------------ the summary

// The facts the server's summary (/explorer/api/auctions/{id}) states of an ended auction,
// as its competition document gives them: the winner is the first fill's bidder (the
// best-ranked real bid that fills; the CFMM's fill has none).
export function documentFacts(doc) {
  const first = (doc.fills || [])[0];
  return {
    status: doc.status,
    outcome: doc.outcome ?? null,
    winner: (first && first.bidder_id) || null,
    price: doc.price ?? null,
    improvement_bps: doc.improvement_bps ?? null,
  };
}

// The check that the server's summary says what the document says: the summary is what
// the feed lists (and what a page showed before this check), so a summary disagreeing
// with the verified document fails. {group, label, ok, detail, ref, fields}.
export function summaryCheck(summary, doc) {
  const facts = documentFacts(doc);
  const fields = Object.keys(facts).filter((k) => (summary[k] ?? null) !== facts[k]);
  const label = "the server's summary agrees with the document";
  const detail = fields.length
    ? fields.map((k) => `${k}: summary ${exact(summary[k])}, document ${exact(facts[k])}`).join("; ")
    : "status, outcome, winner, price and improvement as the document says (what the feed lists)";
  return { group: "document", label, ok: fields.length === 0, detail, ref: "summary", fields };
}

// ------------------------------------------------------------------ one auction, every item

// The terms an auction clears by beyond its mechanism, as announced at open.
const TERMS = ["phantom_policy", "rules", "phantom_model"];

// Every check of docs/phantoms.md ("Verifying an auction") on a competition document:
// [{group, label, ok, detail, ref}], ref naming the row it belongs to; ok is null for a
// check that could not be made: the seed against the commitment published at open,
// without phantomCommitmentAtOpen (kept by the caller from the open: never taken from
// a document sent after the end, which could have been swapped with the seed); such an
// item's `byHand` says how to check it by hand. With `summary` (the server's summary of
// the auction), its agreement with the document is checked too.
export async function verifyCompetition(doc, { phantomCommitmentAtOpen, termsAtOpen, summary } = {}) {
  const items = [];
  const add = (group, label, ok, detail, ref, byHand) => items.push({ group, label, ok, detail, ref, byHand });
  const auctionId = doc.auction_id;
  const notSeen = "not checked: this browser did not see this auction while it was open";
  if (summary) items.push(summaryCheck(summary, doc));

  // Terms: the phantom policy, rules and phantom model the document clears and draws by
  // are the ones announced at open (kept by the caller, as the phantom commitment).
  const terms = canonicalJSON(Object.fromEntries(TERMS.map((k) => [k, doc[k] ?? null])));
  if (termsAtOpen) {
    const ok = terms === String(termsAtOpen);
    add("document", "terms are the ones announced at open", ok, ok ? "phantom policy, rules and phantom model as this browser kept them while the auction was open" : `announced at open ${termsAtOpen}; the document says ${terms}`, "terms");
  } else {
    add("document", "terms are the ones announced at open", null, `${notSeen}, so it has no copy of the terms announced then to compare with`, "terms", `compare the phantom_policy, rules and phantom_model of the auction_opened push with ${terms}`);
  }

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
      add("commitments", `${reveal.bidder_id}: reveal`, false, `cannot be hashed: ${error.message}`, ref);
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
          : commit === undefined
            ? "no accepted commitment of this bidder to open"
            : version !== undefined
              ? `nonce: revealed ${exact(reveal.nonce)}, committed ${exact(commit.nonce)}`
              : `its price, volume, fee, nonce and salt hash to ${hashes[2].slice(0, 16)}… (v2) / ${hashes[1].slice(0, 16)}… (v1), not to its commitment ${String(commit.commitment).slice(0, 16)}…`,
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
    const wrong = entry === undefined ? ["not in the ranking"] : differences(entry, reveal, "ranked", "revealed");
    const ok = wrong.length === 0;
    add("ranking", `${reveal.bidder_id}: ranked as revealed`, ok, ok ? "price, volume and fee as revealed" : wrong.join("; "), `rank-${reveal.bidder_id}`);
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
  const noSeed =
    doc.phantom_seed === null || doc.phantom_seed === undefined
      ? "the document publishes no phantom seed (phantom_seed is null)"
      : `phantom_seed: expected 64 hex digits (32 bytes), got ${kind(doc.phantom_seed)}`;
  const seedOk = seedHash !== null && seedHash === doc.phantom_commitment;
  add(
    "phantoms",
    "seed hashes to the phantom commitment",
    seedOk,
    seedHash === null ? noSeed : seedOk ? `SHA-256(seed) = ${seedHash.slice(0, 16)}…` : `SHA-256(seed) = ${seedHash.slice(0, 16)}…, the document's commitment is ${String(doc.phantom_commitment).slice(0, 16)}…`,
    "seed",
  );
  const atOpen = "commitment is the one published at open";
  if (phantomCommitmentAtOpen) {
    // Without a seed, only the document's commitment can be compared (the check above
    // fails for the seed).
    const kept = String(phantomCommitmentAtOpen);
    const ok = doc.phantom_commitment === kept && (seedHash === null || seedHash === kept);
    let detail = `SHA-256(seed) = ${kept.slice(0, 16)}…, the commitment this browser kept while the auction was open`;
    if (!ok) detail = `this browser kept ${kept.slice(0, 16)}… while the auction was open; the document's commitment is ${String(doc.phantom_commitment).slice(0, 16)}…${seedHash ? `, SHA-256(seed) ${seedHash.slice(0, 16)}…` : ""}`;
    else if (seedHash === null) detail = `the document's commitment is the one this browser kept while the auction was open (${kept.slice(0, 16)}…), but there is no seed to open it`;
    add("phantoms", atOpen, ok, detail, "seed");
  } else {
    add(
      "phantoms",
      atOpen,
      null,
      `${notSeen}, so it has no copy of the phantom commitment announced then to compare with`,
      "seed",
      `compare the phantom_commitment published at open (the auction_opened push, GET /v1/auctions/open, or the feed while it was open) with ${doc.phantom_commitment}`,
    );
  }
  if (seed && seed.length === 32) {
    const drawn = phantomBids(seed, doc.phantom_model, doc.baseline_price, doc.amount);
    const listed = doc.phantom_bids || [];
    const bySlot = new Map(drawn.map((b) => [b[0], b]));
    for (const bid of listed) {
      const expected = bySlot.get(bid.slot);
      const wrong = [];
      if (expected === undefined) wrong.push(`slot ${bid.slot}: no phantom bid in that slot of the draw`);
      else wrong.push(...differences(bid, { improved_price: expected[1], volume: expected[2], priority_fee: expected[3] }, "published", "redrawn"));
      if (bid.bidder_id !== `phantom-${bid.slot}`) wrong.push(`bidder_id: published ${bid.bidder_id}, expected phantom-${bid.slot}`);
      const ok = wrong.length === 0;
      add("phantoms", `phantom-${bid.slot} redrawn from the seed`, ok, ok ? "price, volume and fee exact" : wrong.join("; "), `phantom-${bid.slot}`);
      const ranked = (doc.ranking || []).find((r) => r.is_phantom && r.bidder_id === bid.bidder_id);
      const moved = ranked === undefined ? ["not in the ranking"] : differences(ranked, bid, "ranked", "listed");
      add("phantoms", `phantom-${bid.slot} ranked as drawn`, moved.length === 0, moved.length ? moved.join("; ") : "in the ranking unchanged", `phantom-${bid.slot}`);
    }
    const listedSlots = new Set(listed.map((b) => b.slot));
    const missing = drawn.filter((b) => !listedSlots.has(b[0])).map((b) => `phantom-${b[0]}`);
    const rankedPhantoms = (doc.ranking || []).filter((r) => r.is_phantom).length;
    const countOk = missing.length === 0 && listed.length === drawn.length && rankedPhantoms === drawn.length;
    add("phantoms", "every drawn phantom listed, no other", countOk, countOk ? `${drawn.length} phantom bids` : `drawn ${drawn.length}, listed ${listed.length}, ranked ${rankedPhantoms}${missing.length ? `; missing ${missing.join(", ")}` : ""}`, "phantoms");
  } else {
    add("phantoms", "every drawn phantom listed, no other", false, `without the seed no phantom can be redrawn: the ${(doc.phantom_bids || []).length} published are unchecked`, "phantoms");
  }

  // Clearing: the auction cleared again from the reveals and phantoms checked above.
  items.push(...reclearChecks(doc));
  return items;
}

// ------------------------------------------------------------------ re-clearing (docs/rule-book.md, docs/mechanisms.md)

// The auction cleared again from the document alone: the accepted reveals (commit order)
// and the phantom bids (slot order) scored, ranked and cleared under the document's
// `mechanism`, `phantom_policy` and `rules`, then each real winner priced and the CFMM
// given the rest. Every step is the reference's (engine/settlement.py,
// mechanisms/rules.py, clearing.py, pricing.py) operation by operation in binary64, which
// JavaScript numbers are: the results are compared with the published ones bit for bit.

const BPS = 10000;
// The slack a bid at the least accepted improvement may carry below it (rules.py).
const IMPROVEMENT_TOLERANCE_BPS = 1e-9;
const MECHANISM_ALIASES = { second_price: "vickrey", second_score: "vickrey", first_price: "discriminatory", pay_as_bid: "discriminatory" };

export function canonicalMechanism(name) {
  const key = String(name).trim().toLowerCase().replace(/-/g, "_");
  const canonical = MECHANISM_ALIASES[key] || key;
  if (!["vcg", "vickrey", "uniform", "discriminatory"].includes(canonical)) throw new Error(`unknown mechanism: ${name}`);
  return canonical;
}

// The correctly rounded sum of doubles: Python's math.fsum (Shewchuk's exact partials,
// then CPython's final rounding, half to even across partials). The CFMM remainder and the
// user's mean price are fsums in the engine; a plain running sum differs in the last bits.
export function fsum(values) {
  const partials = [];
  for (let x of values) {
    let i = 0;
    for (let j = 0; j < partials.length; j++) {
      let y = partials[j];
      if (Math.abs(x) < Math.abs(y)) [x, y] = [y, x];
      const hi = x + y;
      const lo = y - (hi - x);
      if (lo !== 0) partials[i++] = lo;
      x = hi;
    }
    partials.length = i;
    partials.push(x);
  }
  let n = partials.length;
  if (n === 0) return 0;
  let hi = partials[--n];
  let lo = 0;
  while (n > 0) {
    const x = hi;
    const y = partials[--n];
    hi = x + y;
    lo = y - (hi - x);
    if (lo !== 0) break;
  }
  // A half-way case between two doubles is settled by the sign of the partials below.
  if (n > 0 && ((lo < 0 && partials[n - 1] < 0) || (lo > 0 && partials[n - 1] > 0))) {
    const y = lo * 2;
    const x = hi + y;
    if (y === x - hi) hi = x;
  }
  return hi;
}

// Indices of `values` from the highest down, ties by index (Python's stable
// sorted(..., reverse=True); Array.prototype.sort is stable too).
export function valueOrder(values) {
  return values.map((_, i) => i).sort((a, b) => (values[a] > values[b] ? -1 : values[a] < values[b] ? 1 : 0));
}

// One clearing (docs/mechanisms.md): `values` per unit (scores), `quantities`, `ranked`
// their value order; {allocated, payment} per index (payment: value x units, a total) and
// the winners in value order. The whole eligible book is walked, as mechanisms.md states
// the rules; the engine stops reading it where no price depends on the rest
// (clearing._clear_head), which it documents as the same bits.
export function clearScores(mechanism, values, quantities, ranked, supply, reserve) {
  const n = values.length;
  const allocated = new Array(n).fill(0);
  const payment = new Array(n).fill(0);
  // Eligible: at or above the reserve, with units. Second price reads its winner and
  // runner-up only.
  let order = ranked.filter((i) => values[i] >= reserve && quantities[i] > 0);
  if (mechanism === "vickrey") order = order.slice(0, 2);
  if (order.length === 0 || !(supply > 0)) return { allocated, payment, winners: [] };
  const vs = order.map((i) => values[i]);
  const qs = order.map((i) => quantities[i]);
  // x = clip(S - ahead, 0, q), `ahead` the running sum of the bids before (not cum - q).
  const filled = [];
  let ahead = 0;
  for (const units of qs) {
    const left = supply - ahead;
    filled.push(left < 0 ? 0 : units < left ? units : left);
    ahead += units;
  }
  const m = vs.length;
  // f: the first bid not filled in full (winners filled in full are a prefix).
  let f = 0;
  for (let k = 0; k < m; k++) if (filled[k] === qs[k]) f++;
  let paid;
  if (mechanism === "discriminatory") {
    paid = filled.map((x, k) => x * vs[k]);
  } else if (mechanism === "vickrey") {
    // One winner: min(q, S) at the runner-up's value, at least the reserve.
    for (let k = 1; k < m; k++) filled[k] = 0;
    const runnerUp = m > 1 ? vs[1] : reserve;
    const price = runnerUp > reserve ? runnerUp : reserve;
    paid = filled.map((x, k) => (k === 0 ? x * price : 0));
  } else if (mechanism === "uniform") {
    // The highest rejected unit: the first bid not filled in full; the reserve if none.
    const price = f < m ? vs[f] : reserve;
    paid = filled.map((x) => x * price);
  } else {
    paid = vcgPayments(vs, qs, filled, f, reserve);
  }
  const winners = [];
  for (let k = 0; k < m; k++) {
    if (filled[k] <= 0) break; // winners are a prefix of the value order
    allocated[order[k]] = filled[k];
    payment[order[k]] = paid[k];
    winners.push(order[k]);
  }
  return { allocated, payment, winners };
}

// VCG (pricing._vcg_list): a winner filled in full pays v_f min(q_i, rest) + U(max(q_i -
// rest, 0)), the marginal winner f pays U(x_f); U(s) = W[j] + u[j] (s - g[j]) over the
// tail after f, then the seller at the reserve, j the number of knots g_1, g_2, ... below s.
function vcgPayments(vs, qs, filled, f, reserve) {
  const m = vs.length;
  let valueF = reserve;
  let xF = 0;
  let rest = 0;
  if (f < m) {
    valueF = vs[f];
    xF = filled[f];
    rest = qs[f] - xF;
  }
  const knots = [0];
  const welfare = [0];
  for (let k = f + 1; k < m; k++) {
    // itertools.accumulate: the first term as it is, then running sums
    knots.push(knots.length === 1 ? qs[k] : knots[knots.length - 1] + qs[k]);
    welfare.push(welfare.length === 1 ? vs[k] * qs[k] : welfare[welfare.length - 1] + vs[k] * qs[k]);
  }
  const values = [...vs.slice(f + 1), reserve];
  const payments = new Array(m).fill(0);
  for (let i = 0; i < m; i++) {
    const won = filled[i];
    if (won <= 0) break;
    let head;
    let units;
    if (i === f) {
      head = 0;
      units = xF;
    } else {
      head = (won < rest ? won : rest) * valueF;
      units = won > rest ? won - rest : 0;
    }
    let j = 0; // bisect_left(knots, units, 1) - 1
    while (j + 1 < knots.length && knots[j + 1] < units) j++;
    let area = units - knots[j]; // pricing._area: (s - g) * u + W, in that order
    area *= values[j];
    area += welfare[j];
    payments[i] = head + area;
  }
  return payments;
}

// What a real winner pays, bps over the baseline (rules.fill_improvement).
function fillImprovement(mechanism, rules, payment, units, own, ownFeeBps, floorScore) {
  const top = own > 0 ? own : 0;
  if (mechanism === "discriminatory") return top;
  let paidScore = payment / units;
  const reserve = reserveScore(rules, 0); // paid without the tolerance a bid may carry
  if (paidScore < floorScore || paidScore < reserve) paidScore = floorScore > reserve ? floorScore : reserve;
  const paid = (paidScore - rules.fee_weight * ownFeeBps) / rules.price_weight;
  return paid > top ? top : paid > 0 ? paid : 0;
}

// The clearing of a competition document from its inputs, in the document's shapes:
// {outcome, ranking, fills, price, improvement_bps}. Needs `rules` (throws without).
export function reclearCompetition(doc) {
  const rules = doc.rules;
  if (!rules) throw new Error("the document has no rules");
  const mechanism = canonicalMechanism(doc.mechanism);
  const baseline = doc.baseline_price;
  const amount = doc.amount;
  // The table: real bids (accepted reveals in commit order: the tie order), then phantoms
  // in slot order (settlement.bid_table).
  const revealed = new Map();
  for (const r of doc.reveals || []) if (r.accepted && !revealed.has(r.bidder_id)) revealed.set(r.bidder_id, r);
  const bids = [];
  for (const c of doc.commitments || []) {
    const r = c.accepted ? revealed.get(c.bidder_id) : undefined;
    if (r === undefined) continue;
    revealed.delete(c.bidder_id); // one bid per bidder
    bids.push({ bidder_id: r.bidder_id, is_phantom: false, price: r.improved_price, volume: r.volume, fee: r.priority_fee });
  }
  const nReal = bids.length;
  const phantoms = [...(doc.phantom_bids || [])].sort((a, b) => a.slot - b.slot);
  for (const p of phantoms) bids.push({ bidder_id: p.bidder_id, is_phantom: true, price: p.improved_price, volume: p.volume, fee: p.priority_fee });
  const n = bids.length;
  const improvements = bids.map((b) => ((b.price - baseline) / baseline) * BPS);
  const feesBps = bids.map((b) => (b.fee / amount) * BPS);
  const pw = rules.price_weight;
  const fw = rules.fee_weight;
  // With the default weights the engine takes the improvements as the scores (1 * i +
  // 0 * f is i for finite f): the same bits, and the same list where a fee's bps overflow.
  const scores =
    pw === 1 && fw === 0 && feesBps.every(Number.isFinite) ? improvements.slice() : improvements.map((imp, i) => pw * imp + fw * feesBps[i]);
  const order = valueOrder(scores);

  let outcome;
  let allocated = new Array(n).fill(0);
  const fillPrices = new Array(n).fill(null);
  const fills = [];
  if (n === 0) outcome = "no_bids";
  else if (n < rules.min_participants) outcome = "insufficient_participants";
  else {
    const volumes = bids.map((b) => b.volume);
    let floor = 0;
    let phantomWon = false;
    let cleared;
    if (doc.phantom_policy === "floor") {
      // Phantoms take no volume: the reals clear alone, the best phantom score a floor.
      if (n > nReal) {
        const best = Math.max(...scores.slice(nReal));
        floor = best > 0 ? best : 0;
      }
      const real = scores.slice(0, nReal);
      cleared = clearScores(mechanism, real, volumes.slice(0, nReal), valueOrder(real), amount, reserveScore(rules));
    } else {
      phantomWon = order[0] >= nReal;
      cleared = clearScores(mechanism, scores, volumes, order, amount, reserveScore(rules));
    }
    allocated = cleared.allocated.concat(new Array(n - cleared.allocated.length).fill(0));
    for (const i of cleared.winners) {
      if (i >= nReal) continue; // a phantom's share goes to the CFMM
      const units = allocated[i];
      const own = improvements[i];
      const paid = fillImprovement(mechanism, rules, cleared.payment[i], units, own, feesBps[i], floor);
      // Its own improvement is its own price, to the bit; never above its own price.
      const atPaid = baseline * (1 + paid / BPS);
      const price = paid === own ? bids[i].price : bids[i].price < atPaid ? bids[i].price : atPaid;
      fillPrices[i] = price;
      fills.push({ bidder_id: bids[i].bidder_id, volume: units, price });
    }
    outcome = fills.length ? "filled" : phantomWon ? "phantom_won" : "no_bids";
  }
  const ranking =
    n === 0
      ? []
      : order.map((i, k) => ({
          rank: k + 1,
          bidder_id: bids[i].bidder_id,
          is_phantom: bids[i].is_phantom,
          improvement_bps: improvements[i],
          fee_bps: feesBps[i],
          score: scores[i],
          allocated: allocated[i],
          filled: fillPrices[i] === null ? 0 : allocated[i],
          fill_price: fillPrices[i],
        }));
  // The CFMM takes what the bids leave, at the baseline (settlement.cfmm_remainder).
  const volumes = fills.map((f) => f.volume);
  const paid = fills.map((f) => f.price);
  const remainder = amount - fsum(volumes);
  if (remainder > 0) {
    fills.push({ bidder_id: null, volume: remainder, price: baseline });
    volumes.push(remainder);
    paid.push(baseline);
  }
  // A weighted mean lies between its extremes: the division's rounding clamped away.
  const mean = fsum(volumes.map((v, k) => v * paid[k])) / amount;
  const low = paid.reduce((a, b) => (b < a ? b : a));
  const high = paid.reduce((a, b) => (b > a ? b : a));
  const above = low > mean ? low : mean;
  const price = high < above ? high : above;
  return { outcome, ranking, fills, price, improvement_bps: ((price - baseline) / baseline) * BPS };
}

// The reserve as a score (rules.reserve_score): the least accepted improvement less the
// tolerance a bid at it may carry, at least 0.
function reserveScore(rules, tolerance = IMPROVEMENT_TOLERANCE_BPS) {
  const r = rules.price_weight * (rules.min_improvement_bps - tolerance);
  return r > 0 ? r : 0;
}

// A number as it reads back exactly (null as "none").
const exact = (x) => (x === null || x === undefined ? "none" : String(x));

// The bid fields where `got` differs from `want`, each "field: <gotName> x, <wantName> y".
function differences(got, want, gotName, wantName) {
  return ["improved_price", "volume", "priority_fee"]
    .filter((k) => got[k] !== want[k])
    .map((k) => `${k}: ${gotName} ${exact(got[k])}, ${wantName} ${exact(want[k])}`);
}

// The re-clearing checks of a competition document: [{group, label, ok, detail, ref}],
// each comparing doubles exactly (===: the same bits, but for the sign of a zero).
export function reclearChecks(doc) {
  const items = [];
  const add = (label, ok, detail, ref) => items.push({ group: "clearing", label, ok, detail, ref });
  if (doc.status === "aborted" || doc.outcome === "aborted") {
    add("auction re-cleared", null, "not re-cleared: the auction was aborted, so nothing was cleared (the user gets the baseline from the CFMM)", "clearing");
    return items;
  }
  if (doc.rules === null || doc.rules === undefined) {
    add("auction re-cleared", null, "not possible: this document predates the published rules", "clearing");
    return items;
  }
  let want;
  try {
    want = reclearCompetition(doc);
  } catch (error) {
    add("auction re-cleared", false, `cannot clear it again: ${error.message}`, "clearing");
    return items;
  }
  const got = doc.ranking || [];
  // The first few differences, or what agreed.
  const show = (wrong, agreed) => (wrong.length ? `${wrong.slice(0, 3).join("; ")}${wrong.length > 3 ? `; ${wrong.length - 3} more` : ""}` : agreed);
  const count = (k, one, many) => `${k} ${k === 1 ? one : many}`;

  // Ranking: the order, and every score with its parts.
  const wrongOrder = [];
  for (let k = 0; k < Math.max(got.length, want.ranking.length); k++) {
    const g = got[k];
    const w = want.ranking[k];
    if (!g || !w) {
      wrongOrder.push(`rank ${k + 1}: published ${g ? g.bidder_id : "nothing"}, re-cleared ${w ? w.bidder_id : "nothing"}`);
      continue;
    }
    if (g.bidder_id !== w.bidder_id || g.is_phantom !== w.is_phantom || g.rank !== w.rank) {
      wrongOrder.push(`rank ${k + 1}: published ${g.bidder_id}, re-cleared ${w.bidder_id}`);
    } else if (g.score !== w.score || g.improvement_bps !== w.improvement_bps || g.fee_bps !== w.fee_bps) {
      wrongOrder.push(`${w.bidder_id}: published score ${exact(g.score)} (${exact(g.improvement_bps)} bps, fee ${exact(g.fee_bps)} bps), re-cleared ${exact(w.score)} (${exact(w.improvement_bps)} bps, fee ${exact(w.fee_bps)} bps)`);
    }
  }
  add("ranking order and scores re-cleared", wrongOrder.length === 0, show(wrongOrder, `${count(want.ranking.length, "bid", "bids")} in the same order with the same scores, bit for bit`), "ranking");

  // Allocation and fill price of each bid, found by bidder (whatever its published rank).
  const byBidder = new Map(got.map((r) => [r.bidder_id, r]));
  const wrongAllocation = [];
  const wrongPrice = [];
  for (const w of want.ranking) {
    const g = byBidder.get(w.bidder_id);
    if (!g) continue; // reported with the order
    if (g.allocated !== w.allocated || g.filled !== w.filled) {
      wrongAllocation.push(`${w.bidder_id}: published ${exact(g.allocated)} allocated / ${exact(g.filled)} filled, re-cleared ${exact(w.allocated)} / ${exact(w.filled)}`);
    }
    if ((g.fill_price ?? null) !== w.fill_price) wrongPrice.push(`${w.bidder_id}: published ${exact(g.fill_price)}, re-cleared ${exact(w.fill_price)}`);
  }
  add("allocations re-cleared", wrongAllocation.length === 0, show(wrongAllocation, `${count(want.ranking.length, "allocation", "allocations")} (token A), bit for bit`), "ranking");

  // The fills: the real winners, best first, then the CFMM's remainder.
  const gotFills = doc.fills || [];
  const realWant = want.fills.filter((f) => f.bidder_id !== null);
  const realGot = gotFills.filter((f) => f.bidder_id !== null);
  for (let k = 0; k < Math.max(realWant.length, realGot.length); k++) {
    const g = realGot[k];
    const w = realWant[k];
    if (!g || !w || g.bidder_id !== w.bidder_id || g.volume !== w.volume || g.price !== w.price) {
      wrongPrice.push(`fill ${k + 1}: published ${g ? `${g.bidder_id} ${exact(g.volume)} @ ${exact(g.price)}` : "nothing"}, re-cleared ${w ? `${w.bidder_id} ${exact(w.volume)} @ ${exact(w.price)}` : "nothing"}`);
    }
  }
  add("fill prices re-cleared", wrongPrice.length === 0, show(wrongPrice, realWant.length ? `${count(realWant.length, "real fill", "real fills")} at the same price (B per A), bit for bit` : "no real fill, as published"), "fills");
  const cfmmWant = want.fills.find((f) => f.bidder_id === null);
  const cfmmGot = gotFills.filter((f) => f.bidder_id === null);
  const cfmmOk =
    gotFills.length === want.fills.length &&
    (cfmmWant === undefined ? cfmmGot.length === 0 : cfmmGot.length === 1 && gotFills[gotFills.length - 1] === cfmmGot[0] && cfmmGot[0].volume === cfmmWant.volume && cfmmGot[0].price === cfmmWant.price);
  const cfmmText = (f) => (f ? `${exact(f.volume)} @ ${exact(f.price)}` : "nothing");
  add(
    "CFMM remainder re-cleared",
    cfmmOk,
    cfmmOk ? (cfmmWant ? `the CFMM fills ${cfmmText(cfmmWant)} (B per A, the baseline), bit for bit` : "none: the bids fill the whole amount, as published") : `published ${cfmmGot.map(cfmmText).join(", ") || "nothing"} (${gotFills.length} fills), re-cleared ${cfmmText(cfmmWant)} (${want.fills.length} fills)`,
    "fills",
  );

  const priceOk = doc.price === want.price && doc.improvement_bps === want.improvement_bps;
  add(
    "user's price and improvement re-cleared",
    priceOk,
    priceOk ? `${exact(want.price)} B per A, ${exact(want.improvement_bps)} bps, bit for bit` : `published ${exact(doc.price)} (${exact(doc.improvement_bps)} bps), re-cleared ${exact(want.price)} (${exact(want.improvement_bps)} bps)`,
    "price",
  );
  const outcomeOk = doc.outcome === want.outcome;
  add("outcome re-cleared", outcomeOk, outcomeOk ? `${want.outcome} under ${doc.mechanism}, policy ${doc.phantom_policy}` : `published ${doc.outcome}, re-cleared ${want.outcome}`, "outcome");
  return items;
}
