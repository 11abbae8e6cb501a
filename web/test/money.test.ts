import { describe, expect, it } from "vitest";
import {
  MAX_AMOUNT,
  currencyDigits,
  formatMoney,
  minorToDecimalString,
  needsConfirmation,
  parseMoney,
  toInputValue,
  validateBidInput,
} from "../src/money";

describe("currencyDigits", () => {
  it("knows the minor units of common currencies", () => {
    expect(currencyDigits("USD")).toBe(2);
    expect(currencyDigits("eur")).toBe(2);
    expect(currencyDigits("JPY")).toBe(0);
    expect(currencyDigits("BHD")).toBe(3);
  });
});

describe("formatMoney", () => {
  it("formats minor units in the auction currency", () => {
    expect(formatMoney(11000, "USD", "en-US")).toBe("$110.00");
    expect(formatMoney(5, "USD", "en-US")).toBe("$0.05");
    expect(formatMoney(123456789, "USD", "en-US")).toBe("$1,234,567.89");
    expect(formatMoney(1500, "JPY", "en-US")).toBe("¥1,500");
    expect(formatMoney(1234, "BHD", "en-US")).toBe("BHD\u00a01.234");
    expect(formatMoney(12345, "EUR", "de-DE")).toBe("123,45\u00a0€");
  });
  it("is exact for the largest amount", () => {
    expect(formatMoney(MAX_AMOUNT, "USD", "en-US")).toBe("$90,071,992,547,409.91");
  });
  it("shows a dash for no price", () => {
    expect(formatMoney(null, "USD", "en-US")).toBe("—");
  });
});

describe("minorToDecimalString / toInputValue", () => {
  it("converts exactly", () => {
    expect(minorToDecimalString(12345, 2)).toBe("123.45");
    expect(minorToDecimalString(5, 2)).toBe("0.05");
    expect(minorToDecimalString(1500, 0)).toBe("1500");
    expect(toInputValue(29, "USD")).toBe("0.29");
  });
});

describe("parseMoney", () => {
  it("parses major units into integer minor units without float errors", () => {
    expect(parseMoney("123.45", "USD")).toEqual({ ok: true, minor: 12345 });
    expect(parseMoney("0.29", "USD")).toEqual({ ok: true, minor: 29 }); // 0.29*100 = 28.999…
    expect(parseMoney("1.005", "BHD")).toEqual({ ok: true, minor: 1005 });
    expect(parseMoney("19.99", "USD")).toEqual({ ok: true, minor: 1999 });
    expect(parseMoney("110", "USD")).toEqual({ ok: true, minor: 11000 });
    expect(parseMoney("110.5", "USD")).toEqual({ ok: true, minor: 11050 });
    expect(parseMoney(".5", "USD")).toEqual({ ok: true, minor: 50 });
    expect(parseMoney("12.", "USD")).toEqual({ ok: true, minor: 1200 });
    expect(parseMoney(" 1,234.56 ", "USD")).toEqual({ ok: true, minor: 123456 });
    expect(parseMoney("$99", "USD")).toEqual({ ok: true, minor: 9900 });
    expect(parseMoney("USD 5", "USD")).toEqual({ ok: true, minor: 500 });
    expect(parseMoney("12.500", "USD")).toEqual({ ok: true, minor: 1250 });
    expect(parseMoney("1500", "JPY")).toEqual({ ok: true, minor: 1500 });
    expect(parseMoney("90071992547409.91", "USD")).toEqual({ ok: true, minor: MAX_AMOUNT });
  });
  it("refuses what is not an amount", () => {
    for (const bad of ["", "  ", "abc", "1e3", "12.3.4", "1,23", "12,5", "--1", "0x10", "Infinity", "NaN"]) {
      expect(parseMoney(bad, "USD").ok, bad).toBe(false);
    }
  });
  it("refuses zero, negatives, too many decimals and too large amounts", () => {
    expect(parseMoney("0", "USD")).toEqual({ ok: false, error: "The amount must be more than zero." });
    expect(parseMoney("0.00", "USD").ok).toBe(false);
    expect(parseMoney("-5", "USD")).toEqual({ ok: false, error: "The amount must be positive." });
    expect(parseMoney("1.234", "USD")).toEqual({ ok: false, error: "At most 2 decimal places in USD." });
    expect(parseMoney("1.5", "JPY")).toEqual({ ok: false, error: "JPY has no smaller unit: enter a whole number." });
    expect(parseMoney("90071992547409.92", "USD")).toEqual({ ok: false, error: "That amount is too large." });
    expect(parseMoney("99999999999999999999", "USD").ok).toBe(false);
  });
});

describe("validateBidInput", () => {
  it("checks the minimum bid before sending", () => {
    expect(validateBidInput("120", "USD", 12000, "en-US")).toEqual({ ok: true, minor: 12000 });
    expect(validateBidInput("119.99", "USD", 12000, "en-US")).toEqual({
      ok: false,
      error: "The minimum bid is $120.00.",
    });
    expect(validateBidInput("x", "USD", 12000, "en-US").ok).toBe(false);
  });
});

describe("currencies typed with the amount", () => {
  it("accepts the auction's own code or symbol, before or after the number", () => {
    expect(parseMoney("USD 1000200", "USD")).toEqual({ ok: true, minor: 100020000 });
    expect(parseMoney("1000 usd", "USD")).toEqual({ ok: true, minor: 100000 });
    expect(parseMoney("US$ 12", "USD")).toEqual({ ok: true, minor: 1200 });
    expect(parseMoney("€12,50".replace(",", "."), "EUR")).toEqual({ ok: true, minor: 1250 });
    expect(parseMoney("12 €", "EUR")).toEqual({ ok: true, minor: 1200 });
    expect(parseMoney("£21.50", "GBP")).toEqual({ ok: true, minor: 2150 });
    expect(parseMoney("¥1500", "JPY")).toEqual({ ok: true, minor: 1500 });
  });
  it("refuses another currency instead of reading it as the auction's", () => {
    expect(parseMoney("EUR 1000200", "USD")).toEqual({
      ok: false,
      error: "This auction is in USD, not EUR. Enter the amount in USD.",
    });
    expect(parseMoney("1000 gbp", "USD")).toEqual({
      ok: false,
      error: "This auction is in USD, not GBP. Enter the amount in USD.",
    });
    expect(parseMoney("€1000", "USD")).toEqual({
      ok: false,
      error: "This auction is in USD; “€” is not its currency. Enter the amount in USD.",
    });
    expect(parseMoney("$5", "EUR").ok).toBe(false);
  });
  it("gives words one message whatever their length", () => {
    const msg = { ok: false, error: "Enter a number, like 123.45." };
    for (const word of ["abc", "lots", "x", "a lot", "twelve", "Infinity"]) expect(parseMoney(word, "USD"), word).toEqual(msg);
  });
});

describe("needsConfirmation", () => {
  // Price $500, increment $10, minimum $510.
  const a = { min_bid: 51000, increment: 1000, price: 50000, starting_price: 10000 };
  it("asks above ten increments over the minimum", () => {
    expect(needsConfirmation(51000 + 10 * 1000, a)).toBe(false);
    expect(needsConfirmation(51000 + 10 * 1000 + 1, a)).toBe(true);
  });
  it("asks above twice the price, whichever comes first", () => {
    // Increment $100: ten increments would be $1,510, but twice the price is $1,000.
    const big = { ...a, increment: 10000, min_bid: 60000 };
    expect(needsConfirmation(100000, big)).toBe(false);
    expect(needsConfirmation(100001, big)).toBe(true);
  });
  it("uses the starting price before the first bid", () => {
    const fresh = { min_bid: 10000, increment: 1000, price: null, starting_price: 10000 };
    expect(needsConfirmation(20000, fresh)).toBe(false);
    expect(needsConfirmation(20001, fresh)).toBe(true);
    expect(needsConfirmation(100000000, fresh)).toBe(true);
  });
});
