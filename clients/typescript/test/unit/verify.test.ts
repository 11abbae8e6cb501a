// Receipts checked against the verifiable log (src/verify.ts). The fixture is a real
// server's closed auction (scripts/make-verify-fixture.mjs): its log, key, final hash and
// receipts. That it verifies shows the TypeScript byte layouts are the Rust ones; every
// tampering below must then be caught, naming the entry or the receipt.

import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import type { KeysResponse, LogEntryView, LogPage, Receipt } from "../../src/generated/protocol.js";
import { canVerify, encodeEntry, genesisHash, hex, keyId, receiptMessage, receiptsIn, unhex, verifyReceipts, type VerifyInput } from "../../src/verify.js";

interface Fixture {
  auction_id: string;
  final_hash: string;
  keys: KeysResponse;
  log: LogPage;
  receipts: Receipt[];
}

const fixture = (): Fixture => JSON.parse(readFileSync(new URL("./fixtures/verified-auction.json", import.meta.url), "utf8")) as Fixture;

function input(f: Fixture, over: Partial<VerifyInput> = {}): VerifyInput {
  return { auctionId: f.auction_id, log: f.log, keys: f.keys, receipts: f.receipts, finalHash: f.final_hash, ...over };
}

/** Re-links entries from `from` on (a forger recomputing the hashes after an edit). */
async function relink(entries: LogEntryView[], auctionId: string, from: number): Promise<void> {
  let prev = from === 0 ? await genesisHash(auctionId) : unhex(entries[from - 1]!.hash)!;
  for (let i = from; i < entries.length; i++) {
    const bytes = encodeEntry(entries[i]!);
    const joined = new Uint8Array(prev.length + bytes.length);
    joined.set(prev);
    joined.set(bytes, prev.length);
    prev = new Uint8Array(await crypto.subtle.digest("SHA-256", joined));
    entries[i]!.hash = hex(prev);
  }
}

/** A key of our own, listed beside the server's, and a receipt signed with it. */
async function foreignSigner() {
  const pair = (await crypto.subtle.generateKey({ name: "Ed25519" }, true, ["sign", "verify"])) as CryptoKeyPair;
  const pub = new Uint8Array(await crypto.subtle.exportKey("raw", pair.publicKey));
  const kid = await keyId(pub);
  const sign = async (r: Omit<Receipt, "key_id" | "signature">): Promise<Receipt> => {
    const msg = receiptMessage({ ...r, key_id: kid, signature: "" }, unhex(r.hash)!);
    const sig = new Uint8Array(await crypto.subtle.sign({ name: "Ed25519" }, pair.privateKey, msg));
    return { ...r, key_id: kid, signature: hex(sig) };
  };
  return { view: { key_id: kid, algorithm: "ed25519", public_key: hex(pub) }, sign };
}

describe("receipts from a real server", () => {
  it("verify against its log, its signed head, its key and the final hash published at the close", async () => {
    const f = fixture();
    expect(f.log.entries.map((e) => e.kind)).toEqual(["created", "opened", "bid", "auto", "auto", "max_raised", "bid", "closed"]);
    const r = await verifyReceipts(input(f));
    expect(r.problem).toBeUndefined();
    expect(r.ok).toBe(true);
    expect(r.entries).toBe(8);
    expect(r.lastHash).toBe(f.final_hash);
    expect(r.receipts.map((x) => [x.receipt.seq, x.ok])).toEqual([[3, true], [4, true], [6, true], [7, true]]);
    expect(r.lines[0]).toBe(`log of ${f.auction_id}: 8 entries, every hash links (seq 1 to 8)`);
    expect(r.lines.filter((l) => l.startsWith("receipt: "))).toHaveLength(4);
    expect(await canVerify()).toBe(true);
  });

  it("the server's key id is the first 16 hex digits of SHA-256 of its key", async () => {
    const f = fixture();
    const k = f.keys.keys[0]!;
    expect(await keyId(unhex(k.public_key)!)).toBe(k.key_id);
  });
});

describe("a tampered receipt fails", () => {
  it("any field changed: the signature no longer matches, and the receipt's seq is named", async () => {
    const changes: [string, (r: Receipt) => Receipt][] = [
      ["amount", (r) => ({ ...r, amount: r.amount + 100 })],
      ["seq", (r) => ({ ...r, seq: 5 })],
      ["bidder", (r) => ({ ...r, bidder_id: "u-someone-else" })],
      ["time", (r) => ({ ...r, at: r.at + 1 })],
      ["currency", (r) => ({ ...r, currency: "USD" })],
      ["hash", (r) => ({ ...r, hash: r.hash.replace(/^./, (c) => (c === "0" ? "1" : "0")) })],
      ["signature", (r) => ({ ...r, signature: r.signature.replace(/.$/, (c) => (c === "0" ? "1" : "0")) })],
    ];
    for (const [what, change] of changes) {
      const f = fixture();
      const tampered = change(f.receipts[1]!);
      const r = await verifyReceipts(input(f, { receipts: [f.receipts[0]!, tampered] }));
      expect(r.ok, what).toBe(false);
      expect(r.failure, what).toBe("broken");
      expect(r.problem, what).toBe(`receipt for seq ${tampered.seq}: the signature does not match the server's key: the receipt was altered or not issued by this server`);
      expect(r.receipts.map((x) => x.ok), what).toEqual([true, false]);
    }
  });

  it("a receipt signed by a key the server does not list is refused", async () => {
    const f = fixture();
    const other = await foreignSigner();
    const { key_id: _k, signature: _s, ...body } = f.receipts[0]!;
    const forged = await other.sign(body);
    const r = await verifyReceipts(input(f, { receipts: [forged] }));
    expect(r.problem).toBe(`receipt for seq 3: signed by key ${other.view.key_id}, which is not among the server's keys`);
  });

  it("a validly signed receipt for a bid that is not in the log, or not as it was accepted, is reported", async () => {
    const f = fixture();
    const other = await foreignSigner();
    const keys = { keys: [...f.keys.keys, other.view] };
    const base = f.receipts[0]!;
    const beyond = await other.sign({ auction_id: base.auction_id, seq: 9, amount: 5000, currency: "EUR", bidder_id: base.bidder_id, at: base.at, hash: base.hash });
    let r = await verifyReceipts(input(f, { keys, receipts: [beyond] }));
    expect(r.problem).toBe("receipt for seq 9: no entry seq 9 in the log: the accepted bid is not in the log");
    // Seq 5 is Bob's automatic bid: a receipt saying Alice led there at 1600 does not match.
    const e5 = f.log.entries[4]!;
    const wrong = await other.sign({ auction_id: base.auction_id, seq: 5, amount: 1600, currency: "EUR", bidder_id: base.bidder_id, at: e5.at, hash: e5.hash });
    r = await verifyReceipts(input(f, { keys, receipts: [wrong] }));
    expect(r.problem).toBe(
      `receipt for seq 5: the log's entry seq 5 differs from the signed receipt: leader ${e5.leader} (receipt bidder ${base.bidder_id}), price 1700 (receipt 1600): the bid is not in the log as it was accepted`,
    );
    const other_auction = await other.sign({ ...base, auction_id: "another-lot" });
    r = await verifyReceipts(input(f, { keys, receipts: [other_auction] }));
    expect(r.problem).toBe("receipt for seq 3: it is for auction another-lot");
  });
});

describe("a tampered log fails at the entry", () => {
  it("an edited entry (the amount of Bob's automatic bid) breaks its hash", async () => {
    const f = fixture();
    f.log.entries[3]!.amount = 1400;
    const r = await verifyReceipts(input(f));
    expect(r.failure).toBe("broken");
    expect(r.problem).toMatch(/^entry seq 4: its hash 9a80\w+ is not SHA-256\(previous hash ‖ its content\) = \w{64}: the entry or one before it was changed$/);
    expect(r.entries).toBe(3);
  });

  it("an edit with every later hash recomputed no longer ends at the signed head", async () => {
    const f = fixture();
    f.log.entries[3]!.amount = 1400;
    await relink(f.log.entries, f.auction_id, 3);
    const r = await verifyReceipts(input(f));
    expect(r.problem).toMatch(/^entry seq 8: the log ends at hash \w{64}, the signed head says 8897\w+: the log was rewritten$/);
  });

  it("a deleted entry, two swapped entries, and an entry added after the head are named", async () => {
    let f = fixture();
    f.log.entries.splice(4, 1);
    expect((await verifyReceipts(input(f))).problem).toBe("entry seq 5: missing: the next entry has seq 6");
    f = fixture();
    const [a, b] = [f.log.entries[4]!, f.log.entries[5]!];
    f.log.entries[4] = b;
    f.log.entries[5] = a;
    expect((await verifyReceipts(input(f))).problem).toBe("entry seq 5: missing: the next entry has seq 6");
    f = fixture();
    f.log.entries.push({ ...f.log.entries[7]!, seq: 9 });
    await relink(f.log.entries, f.auction_id, 8);
    expect((await verifyReceipts(input(f))).problem).toBe("entry seq 9: beyond the signed head (seq 8): an entry was added");
  });

  it("a rewritten head, or a log that does not end at the published final hash, is refused", async () => {
    let f = fixture();
    f.log.head = { ...f.log.head!, seq: 7, hash: f.log.entries[6]!.hash };
    expect((await verifyReceipts(input(f))).problem).toBe("signed head (seq 7): the signature does not match the server's key");
    f = fixture();
    const r = await verifyReceipts(input(f, { finalHash: f.log.entries[6]!.hash }));
    expect(r.problem).toBe(`the log ends at hash ${f.final_hash}, but the close published ${f.log.entries[6]!.hash}: the log was rewritten after the close`);
  });

  it("a log served before its last entries are archived is incomplete, not broken", async () => {
    const f = fixture();
    f.log.entries.splice(6);
    const r = await verifyReceipts(input(f));
    expect(r.failure).toBe("incomplete");
    expect(r.problem).toBe("entry seq 7: not served yet: the signed head is at seq 8 (in distributed mode, entries appear once archived)");
  });
});

describe("the rest", () => {
  it("without WebCrypto Ed25519 the check says so instead of failing a receipt", async () => {
    const noEd25519 = {
      digest: (alg: string, data: BufferSource) => crypto.subtle.digest(alg, data),
      importKey: () => Promise.reject(new Error("Ed25519 not supported")),
    } as unknown as SubtleCrypto;
    const f = fixture();
    expect(await canVerify(noEd25519)).toBe(false);
    const r = await verifyReceipts(input(f, { subtle: noEd25519 }));
    expect(r.failure).toBe("unsupported");
    expect(r.ok).toBe(false);
  });

  it("reads receipts as gavel verify --receipt does: a receipt, a bid result, or an array of either", () => {
    const f = fixture();
    const [a, b] = [f.receipts[0]!, f.receipts[1]!];
    expect(receiptsIn(a)).toEqual([a]);
    expect(receiptsIn({ request_id: "x", outcome: "accepted", receipt: a })).toEqual([a]);
    expect(receiptsIn([a, { receipt: b }])).toEqual([a, b]);
    expect(() => receiptsIn({ outcome: "outbid" })).toThrow(/not a receipt/);
  });
});
