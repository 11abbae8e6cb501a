// Checks signed receipts against an auction's verifiable log, in a browser or in Node, the
// way `gavel verify` does (docs/verification.md): every entry's hash is recomputed from its
// content and its predecessor (SHA-256), seqs run 1, 2, 3, … to the signed head, the head's
// signature and each receipt's (Ed25519) verify against the server's published key, and each
// receipt's seq is in the log with the same hash, leader, price and time. After the close,
// the log must end at the final `log_hash` the server published (`closed`, the auction view).
//
// Crypto is WebCrypto's (`crypto.subtle`: SHA-256 and Ed25519): Chromium, Firefox, Safari
// and Node 20 have both. Browsers only offer `crypto.subtle` on secure pages (https, or
// localhost / 127.0.0.1): elsewhere the check reports `unsupported` and the receipts can
// still be downloaded and checked with `gavel verify`.
//
// The byte layouts are gavel_core::chain's (crates/gavel-core/src/chain.rs), version 1;
// the unit tests check them against a log, key and receipts made by the real server.

import { GavelError } from "./errors.js";
import type { HttpApi } from "./http.js";
import type { KeysResponse, LogEntryView, LogPage, PublicKeyView, Receipt } from "./generated/protocol.js";

/** What a check found. `ok` only when everything verified; else the first thing wrong. */
export interface VerifyReport {
  ok: boolean;
  /**
   * Why it is not ok: `broken` (the log, the head or a receipt does not check out: `problem`
   * says which entry or receipt), `incomplete` (the served log ends before the signed head:
   * in distributed mode the newest entries appear once archived; ask again shortly), or
   * `unsupported` (no WebCrypto Ed25519 / SHA-256 here).
   */
  failure?: "broken" | "incomplete" | "unsupported";
  /** The first thing wrong, in words, naming the entry's or the receipt's seq. */
  problem?: string;
  /** What checked out, one line each (as `gavel verify` prints them). */
  lines: string[];
  /** Entries checked, and the hash the log ends at (hex). */
  entries: number;
  lastHash: string | null;
  /** Per receipt, in the order given: verified or not (receipts after a failure are not checked). */
  receipts: { receipt: Receipt; ok: boolean; problem?: string }[];
}

export interface VerifyInput {
  auctionId: string;
  /** The whole log: one page holding every entry, with the signed head (see `fetchLog`). */
  log: LogPage;
  /** The server's public keys (`GET /api/keys`). */
  keys: KeysResponse | PublicKeyView[];
  receipts: Receipt[];
  /** The final hash the server published at the close (`log_hash`): the log must end there. */
  finalHash?: string | null;
  /** WebCrypto (default: `globalThis.crypto.subtle`). */
  subtle?: SubtleCrypto;
}

/** Bytes on a plain ArrayBuffer (what WebCrypto takes). */
type Buf = Uint8Array<ArrayBuffer>;

const ENC = new TextEncoder();
const GENESIS_TAG = ENC.encode("gavel-log-v1");
const RECEIPT_TAG = ENC.encode("gavel-receipt-v1");
const HEAD_TAG = ENC.encode("gavel-head-v1");
const LAYOUT_VERSION = 1;

/** Entry kinds and close reasons in the order of their codes (1, 2, …). */
const KINDS = ["created", "opened", "bid", "auto", "buy_now", "max_raised", "closed"] as const;
const REASONS = ["ended", "buy_now", "ended_early", "cancelled"] as const;
/** The kinds a receipt may name: an accepted bid. */
const BID_KINDS = new Set(["bid", "auto", "buy_now", "max_raised"]);

/** Bytes from lowercase or uppercase hex; null if it is not hex. */
export function unhex(s: string): Buf | null {
  if (s.length % 2 !== 0 || !/^[0-9a-fA-F]*$/.test(s)) return null;
  const out = new Uint8Array(s.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(s.slice(2 * i, 2 * i + 2), 16);
  return out;
}

export function hex(bytes: Buf): string {
  let s = "";
  for (const b of bytes) s += b.toString(16).padStart(2, "0");
  return s;
}

/** A growing byte buffer with the chain's conventions: big-endian integers, `str` = u16 length + UTF-8, `opt` = 0 | 1 + value. */
class Bytes {
  private parts: Buf[] = [];

  raw(b: Buf): this {
    this.parts.push(b);
    return this;
  }
  u8(v: number): this {
    return this.raw(Uint8Array.of(v));
  }
  u64(v: number): this {
    const b = new Uint8Array(8);
    new DataView(b.buffer).setBigUint64(0, BigInt(v));
    return this.raw(b);
  }
  i64(v: number): this {
    const b = new Uint8Array(8);
    new DataView(b.buffer).setBigInt64(0, BigInt(v));
    return this.raw(b);
  }
  str(s: string): this {
    const b = ENC.encode(s);
    if (b.length > 0xffff) throw new Error("a string longer than 65535 bytes");
    const len = new Uint8Array(2);
    new DataView(len.buffer).setUint16(0, b.length);
    return this.raw(len).raw(b);
  }
  optStr(s: string | null | undefined): this {
    return s == null ? this.u8(0) : this.u8(1).str(s);
  }
  optI64(v: number | null | undefined): this {
    return v == null ? this.u8(0) : this.u8(1).i64(v);
  }
  done(): Buf {
    const out = new Uint8Array(this.parts.reduce((n, p) => n + p.length, 0));
    let at = 0;
    for (const p of this.parts) {
      out.set(p, at);
      at += p.length;
    }
    return out;
  }
}

function isInt(v: unknown): v is number {
  return typeof v === "number" && Number.isSafeInteger(v);
}

/** The canonical bytes of an entry (layout version 1); throws on a field that cannot be encoded. */
export function encodeEntry(e: LogEntryView): Buf {
  const kind = KINDS.indexOf(e.kind as (typeof KINDS)[number]);
  if (kind < 0) throw new Error(`unknown kind ${JSON.stringify(e.kind)}`);
  for (const [name, v] of Object.entries({ seq: e.seq, at: e.at, bid_count: e.bid_count, ends_at: e.ends_at })) {
    if (!isInt(v)) throw new Error(`${name} is not an integer`);
  }
  const b = new Bytes().u8(LAYOUT_VERSION).u64(e.seq).i64(e.at).u8(kind + 1);
  b.optStr(e.bidder).optI64(e.amount).optI64(e.price).optStr(e.leader);
  b.u64(e.bid_count).i64(e.ends_at).u8(e.extended ? 1 : 0);
  if (e.close_reason == null) b.u8(0);
  else {
    const r = REASONS.indexOf(e.close_reason as (typeof REASONS)[number]);
    if (r < 0) throw new Error(`unknown close reason ${JSON.stringify(e.close_reason)}`);
    b.u8(1).u8(r + 1);
  }
  b.optStr(e.winner).optI64(e.final_price).optStr(e.currency).optI64(e.starting_price).optI64(e.starts_at).optI64(e.buy_now);
  return b.done();
}

/** The bytes a receipt's signature covers. */
export function receiptMessage(r: Receipt, hash: Buf): Buf {
  return new Bytes().raw(RECEIPT_TAG).str(r.auction_id).u64(r.seq).i64(r.amount).str(r.currency).str(r.bidder_id).i64(r.at).raw(hash).done();
}

/** The bytes a signed head's signature covers. */
export function headMessage(auctionId: string, seq: number, hash: Buf): Buf {
  return new Bytes().raw(HEAD_TAG).str(auctionId).u64(seq).raw(hash).done();
}

function subtleOf(given?: SubtleCrypto): SubtleCrypto | null {
  return given ?? (globalThis as { crypto?: { subtle?: SubtleCrypto } }).crypto?.subtle ?? null;
}

async function sha256(subtle: SubtleCrypto, ...parts: Buf[]): Promise<Buf> {
  const b = new Bytes();
  for (const p of parts) b.raw(p);
  return new Uint8Array(await subtle.digest("SHA-256", b.done()));
}

/** `hash_0` of an auction's chain. */
export async function genesisHash(auctionId: string, subtle?: SubtleCrypto): Promise<Buf> {
  const s = subtleOf(subtle);
  if (!s) throw new GavelError("unsupported", "no WebCrypto here");
  return sha256(s, GENESIS_TAG, new Bytes().str(auctionId).done());
}

/** The key id the server names a key by: the first 16 hex digits of SHA-256(key bytes). */
export async function keyId(publicKey: Buf, subtle?: SubtleCrypto): Promise<string> {
  const s = subtleOf(subtle);
  if (!s) throw new GavelError("unsupported", "no WebCrypto here");
  return hex((await sha256(s, publicKey)).slice(0, 8));
}

/** Whether WebCrypto here does SHA-256 and Ed25519 (a secure page in a current browser, Node 20). */
export async function canVerify(subtle?: SubtleCrypto): Promise<boolean> {
  const s = subtleOf(subtle);
  if (!s) return false;
  try {
    await s.importKey("raw", new Uint8Array(32).fill(1), { name: "Ed25519" }, false, ["verify"]);
    await s.digest("SHA-256", new Uint8Array(1));
    return true;
  } catch {
    return false;
  }
}

async function ed25519Verify(subtle: SubtleCrypto, publicKey: Buf, message: Buf, signatureHex: string): Promise<string | null> {
  const sig = unhex(signatureHex);
  if (!sig || sig.length !== 64) return "the signature is not 128 hex digits";
  let key: CryptoKey;
  try {
    key = await subtle.importKey("raw", publicKey, { name: "Ed25519" }, false, ["verify"]);
  } catch {
    return "the server's public key is not an Ed25519 key";
  }
  const ok = await subtle.verify({ name: "Ed25519" }, key, sig, message);
  return ok ? null : "the signature does not match the server's key";
}

const same = (a: unknown, b: unknown) => (a ?? null) === (b ?? null);

/**
 * Checks receipts against an auction's whole log (see the module comment). Never throws
 * for bad data: everything wrong is in the report.
 */
export async function verifyReceipts(input: VerifyInput): Promise<VerifyReport> {
  const { auctionId, log, receipts } = input;
  const lines: string[] = [];
  const results: VerifyReport["receipts"] = [];
  const report = (failure: VerifyReport["failure"], problem: string, entries = 0, lastHash: string | null = null): VerifyReport => ({
    ok: false,
    failure,
    problem,
    lines,
    entries,
    lastHash,
    receipts: results,
  });
  const subtle = subtleOf(input.subtle);
  if (!subtle || !(await canVerify(subtle))) {
    return report("unsupported", "this browser cannot check Ed25519 signatures here (WebCrypto needs a secure page: https or localhost); download the receipts and run `gavel verify`");
  }
  if (log.auction_id !== auctionId) return report("broken", `the log is of auction ${log.auction_id}, not ${auctionId}`);

  // 1. The chain: seqs 1, 2, 3, … each hash recomputed from its content and the one before.
  const hashes = new Map<number, string>();
  let prev = await genesisHash(auctionId, subtle);
  let count = 0;
  for (const [i, e] of log.entries.entries()) {
    const expected = i + 1;
    if (e.seq !== expected) {
      return report(
        "broken",
        e.seq > expected ? `entry seq ${expected}: missing: the next entry has seq ${e.seq}` : `entry seq ${e.seq}: out of order: seq ${e.seq} where ${expected} was expected`,
        count,
        count ? hex(prev) : null,
      );
    }
    let bytes: Buf;
    try {
      bytes = encodeEntry(e);
    } catch (err) {
      return report("broken", `entry seq ${e.seq}: unreadable: ${(err as Error).message}`, count, count ? hex(prev) : null);
    }
    const computed = await sha256(subtle, prev, bytes);
    if (hex(computed) !== String(e.hash).toLowerCase()) {
      return report(
        "broken",
        `entry seq ${e.seq}: its hash ${e.hash} is not SHA-256(previous hash ‖ its content) = ${hex(computed)}: the entry or one before it was changed`,
        count,
        count ? hex(prev) : null,
      );
    }
    prev = computed;
    count++;
    hashes.set(e.seq, hex(computed));
  }
  const last = count ? hex(prev) : null;
  lines.push(`log of ${auctionId}: ${count} entries, every hash links (seq 1 to ${count})`);

  // 2. The signed head: the server's key, and the log ends exactly there.
  const keys = Array.isArray(input.keys) ? input.keys : input.keys.keys;
  const keyBytes = new Map<string, Buf>();
  for (const k of keys) {
    const bytes = unhex(k.public_key);
    if (bytes && bytes.length === 32 && k.algorithm === "ed25519") keyBytes.set(await keyId(bytes, subtle), bytes);
  }
  const head = log.head;
  if (!head) return report("broken", "the log carries no signed head", count, last);
  const headKey = keyBytes.get(head.key_id);
  if (!headKey) return report("broken", `the head is signed by key ${head.key_id}, which is not among the server's keys`, count, last);
  const headHash = unhex(head.hash);
  if (!headHash || headHash.length !== 32) return report("broken", "the signed head's hash is not 64 hex digits", count, last);
  const headProblem = await ed25519Verify(subtle, headKey, headMessage(head.auction_id, head.seq, headHash), head.signature);
  if (headProblem) return report("broken", `signed head (seq ${head.seq}): ${headProblem}`, count, last);
  if (head.auction_id !== auctionId) return report("broken", `the signed head names auction ${head.auction_id}`, count, last);
  if (count > head.seq) return report("broken", `entry seq ${head.seq + 1}: beyond the signed head (seq ${head.seq}): an entry was added`, count, last);
  if (count < head.seq) {
    return report("incomplete", `entry seq ${count + 1}: not served yet: the signed head is at seq ${head.seq} (in distributed mode, entries appear once archived)`, count, last);
  }
  if (last !== hex(headHash)) {
    return report("broken", `entry seq ${head.seq}: the log ends at hash ${last ?? "none"}, the signed head says ${hex(headHash)}: the log was rewritten`, count, last);
  }
  lines.push(`signed head: seq ${head.seq} hash ${hex(headHash)}, key ${head.key_id}: ok`);

  // 3. The published final hash (after the close).
  if (input.finalHash != null) {
    if (input.finalHash.toLowerCase() !== last) {
      return report("broken", `the log ends at hash ${last ?? "none"}, but the close published ${input.finalHash}: the log was rewritten after the close`, count, last);
    }
    lines.push(`final hash published at the close: ${input.finalHash}: the log ends there`);
  }

  // 4. Each receipt: its signature, and its entry in the log as it was accepted.
  const bySeq = new Map(log.entries.map((e) => [e.seq, e]));
  for (const r of receipts) {
    const problem = await checkReceipt(subtle, auctionId, r, keyBytes, bySeq, hashes);
    results.push(problem ? { receipt: r, ok: false, problem } : { receipt: r, ok: true });
    if (problem) return report("broken", `receipt for seq ${r.seq}: ${problem}`, count, last);
    lines.push(`receipt: ${r.bidder_id} bid ${r.amount} ${r.currency} at seq ${r.seq}: ok`);
  }
  return { ok: true, lines, entries: count, lastHash: last, receipts: results };
}

async function checkReceipt(
  subtle: SubtleCrypto,
  auctionId: string,
  r: Receipt,
  keys: Map<string, Buf>,
  entries: Map<number, LogEntryView>,
  hashes: Map<number, string>,
): Promise<string | null> {
  if (r.auction_id !== auctionId) return `it is for auction ${r.auction_id}`;
  const key = keys.get(r.key_id);
  if (!key) return `signed by key ${r.key_id}, which is not among the server's keys`;
  const hash = unhex(String(r.hash));
  if (!hash || hash.length !== 32) return "its hash is not 64 hex digits";
  if (![r.seq, r.amount, r.at].every(isInt)) return "its seq, amount or time is not an integer";
  const sigProblem = await ed25519Verify(subtle, key, receiptMessage(r, hash), r.signature);
  if (sigProblem) return `${sigProblem}: the receipt was altered or not issued by this server`;
  const entry = entries.get(r.seq);
  if (!entry) return `no entry seq ${r.seq} in the log: the accepted bid is not in the log`;
  const wrong: string[] = [];
  const logged = hashes.get(r.seq)!;
  if (logged !== hex(hash)) wrong.push(`hash ${logged} (receipt ${hex(hash)})`);
  if (!same(entry.leader, r.bidder_id)) wrong.push(`leader ${entry.leader ?? "none"} (receipt bidder ${r.bidder_id})`);
  if (!same(entry.price, r.amount)) wrong.push(`price ${entry.price ?? "none"} (receipt ${r.amount})`);
  if (entry.at !== r.at) wrong.push(`time ${entry.at} (receipt ${r.at})`);
  if (!BID_KINDS.has(entry.kind)) wrong.push(`kind ${entry.kind} is not a bid`);
  if (wrong.length) return `the log's entry seq ${r.seq} differs from the signed receipt: ${wrong.join(", ")}: the bid is not in the log as it was accepted`;
  return null;
}

/** Every entry of an auction's log in one page (asked for `pageSize` at a time, 1–1000),
 *  with the newest signed head. */
export async function fetchLog(http: HttpApi, auctionId: string, pageSize = 1000): Promise<LogPage> {
  let after = 0;
  let all: LogPage | null = null;
  for (let pages = 0; pages < 100_000; pages++) {
    const page = await http.log(auctionId, { afterSeq: after, limit: pageSize });
    if (!all) all = { ...page, entries: [...page.entries] };
    else {
      all.entries.push(...page.entries);
      all.head = page.head;
    }
    const next = page.next_after_seq;
    if (next == null || next <= after) break;
    after = next;
  }
  return { ...all!, next_after_seq: null };
}

/**
 * Fetches the log and the keys from the server and checks `receipts` (and, after the close,
 * `finalHash`) against them.
 */
export async function verifyWithServer(http: HttpApi, auctionId: string, receipts: Receipt[], finalHash?: string | null): Promise<VerifyReport> {
  const [log, keys] = await Promise.all([fetchLog(http, auctionId), http.keys()]);
  return verifyReceipts({ auctionId, log, keys, receipts, finalHash });
}

/**
 * The receipts in a JSON document as `gavel verify --receipt` reads it: a receipt, a bid
 * result carrying one, or an array of either.
 */
export function receiptsIn(doc: unknown): Receipt[] {
  const items = Array.isArray(doc) ? doc : [doc];
  return items.map((item) => {
    const r = item && typeof item === "object" && "receipt" in item ? (item as { receipt: unknown }).receipt : item;
    if (!r || typeof r !== "object" || typeof (r as Receipt).signature !== "string") throw new GavelError("invalid_receipt", "not a receipt");
    return r as Receipt;
  });
}
