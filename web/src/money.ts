// Money: integer minor units on the wire, Intl.NumberFormat on screen, exact string
// arithmetic for input (never floats: "0.29" must become 29, not 28.999999999999996).

/** Largest amount the protocol accepts (2^53 − 1). */
export const MAX_AMOUNT = 9007199254740991;

const digitsCache = new Map<string, number>();

/** Number of minor-unit digits of an ISO 4217 currency (USD 2, JPY 0, BHD 3). */
export function currencyDigits(currency: string): number {
  const code = currency.toUpperCase();
  const cached = digitsCache.get(code);
  if (cached !== undefined) return cached;
  let digits = 2;
  try {
    digits = new Intl.NumberFormat("en", { style: "currency", currency: code }).resolvedOptions()
      .maximumFractionDigits ?? 2;
  } catch {
    digits = 2;
  }
  digitsCache.set(code, digits);
  return digits;
}

/** Minor units as an exact decimal string in major units: (12345, 2) → "123.45". */
export function minorToDecimalString(minor: number, digits: number): string {
  const negative = minor < 0;
  let s = String(Math.abs(Math.trunc(minor)));
  if (digits > 0) {
    s = s.padStart(digits + 1, "0");
    s = `${s.slice(0, -digits)}.${s.slice(-digits)}`;
  }
  return negative ? `-${s}` : s;
}

const formatters = new Map<string, Intl.NumberFormat>();

function formatter(currency: string, locale: string | undefined): Intl.NumberFormat {
  const key = `${locale ?? ""}|${currency}`;
  let f = formatters.get(key);
  if (!f) {
    try {
      f = new Intl.NumberFormat(locale, { style: "currency", currency });
    } catch {
      f = new Intl.NumberFormat(locale, { minimumFractionDigits: currencyDigits(currency) });
    }
    formatters.set(key, f);
  }
  return f;
}

/** Format minor units in the auction's currency: formatMoney(11000, "USD", "en-US") → "$110.00". */
export function formatMoney(minor: number | null | undefined, currency: string, locale?: string): string {
  if (minor === null || minor === undefined || !Number.isFinite(minor)) return "—";
  const digits = currencyDigits(currency);
  const decimal = minorToDecimalString(minor, digits);
  // Intl.NumberFormat formats a decimal string exactly (no float rounding for big amounts).
  return formatter(currency, locale).format(decimal as Intl.StringNumericLiteral);
}

/** Major units for an <input>: 12345 USD → "123.45" (no grouping, no symbol). */
export function toInputValue(minor: number, currency: string): string {
  return minorToDecimalString(minor, currencyDigits(currency));
}

const NOT_A_NUMBER = "Enter a number, like 123.45.";

const symbolCache = new Map<string, Set<string>>();

/** The symbols a currency is written with in English and in the browser's locale ("$", "US$"). */
export function currencySymbols(currency: string): Set<string> {
  const code = currency.toUpperCase();
  let set = symbolCache.get(code);
  if (set) return set;
  set = new Set<string>();
  for (const locale of ["en-US", "en-GB", undefined]) {
    for (const currencyDisplay of ["symbol", "narrowSymbol"] as const) {
      try {
        const parts = new Intl.NumberFormat(locale, { style: "currency", currency: code, currencyDisplay }).formatToParts(1);
        const sym = parts.find((p) => p.type === "currency")?.value;
        if (sym && !/^[A-Za-z]{3}$/.test(sym)) set.add(sym);
      } catch {
        // unknown currency: only its code is accepted
      }
    }
  }
  symbolCache.set(code, set);
  return set;
}

/** Why a typed currency mark is not the auction's currency, or null when it is. */
export function currencyMismatch(mark: string, currency: string): string | null {
  const code = currency.toUpperCase();
  if (/^[A-Za-z]{3}$/.test(mark)) {
    const typed = mark.toUpperCase();
    if (typed === code) return null;
    return `This auction is in ${code}, not ${typed}. Enter the amount in ${code}.`;
  }
  if (/^[A-Za-z]+$/.test(mark)) return NOT_A_NUMBER;
  if (currencySymbols(code).has(mark)) return null;
  return `This auction is in ${code}; “${mark}” is not its currency. Enter the amount in ${code}.`;
}

export type ParseResult = { ok: true; minor: number } | { ok: false; error: string };

/**
 * Parse an amount typed in major units ("123.45", "1,234.5", "$ 99") into integer minor
 * units of `currency`, exactly. Rejects more decimals than the currency has, zero,
 * negatives, exponents and amounts above 2^53 − 1.
 */
export function parseMoney(input: string, currency: string): ParseResult {
  const digits = currencyDigits(currency);
  let s = input.trim();
  if (s === "") return { ok: false, error: "Enter an amount." };
  // Words, or anything without a digit, are one mistake with one message ("abc", "lots").
  if (!/\d/.test(s)) return { ok: false, error: NOT_A_NUMBER };
  // A currency code or symbol typed by habit ("$12", "USD 12", "12 €") is allowed only
  // when it is the auction's own: "EUR 1000" in a USD auction is refused, never read as USD.
  const leading = /^([^\d\s.,+-]+)\s*(.*)$/.exec(s);
  const trailing = leading ? null : /^(.*?)\s*([^\d\s.,+-]+)$/.exec(s);
  const mark = leading?.[1] ?? trailing?.[2];
  if (mark !== undefined) {
    const problem = currencyMismatch(mark, currency);
    if (problem) return { ok: false, error: problem };
    s = (leading ? leading[2] : trailing![1]).trim();
  }
  if (s === "") return { ok: false, error: "Enter an amount." };
  if (s.startsWith("-")) return { ok: false, error: "The amount must be positive." };
  if (s.startsWith("+")) s = s.slice(1);
  // Grouping commas are accepted only in the usual places: 1,234,567.89
  if (s.includes(",")) {
    if (!/^\d{1,3}(,\d{3})+(\.\d*)?$/.test(s)) {
      return { ok: false, error: "Use a dot for decimals, like 123.45." };
    }
    s = s.replace(/,/g, "");
  }
  const m = /^(\d*)(?:\.(\d*))?$/.exec(s);
  if (!m || (m[1] === "" && (m[2] ?? "") === "")) {
    return { ok: false, error: NOT_A_NUMBER };
  }
  const whole = m[1] || "0";
  let frac = m[2] ?? "";
  // Trailing zeros beyond the currency's precision are harmless ("12.500" USD).
  if (frac.length > digits) {
    const extra = frac.slice(digits);
    if (/[^0]/.test(extra)) {
      return {
        ok: false,
        error:
          digits === 0
            ? `${currency} has no smaller unit: enter a whole number.`
            : `At most ${digits} decimal place${digits === 1 ? "" : "s"} in ${currency}.`,
      };
    }
    frac = frac.slice(0, digits);
  }
  const digitsStr = (whole + frac.padEnd(digits, "0")).replace(/^0+(?=\d)/, "");
  if (digitsStr.length > 16 || Number(digitsStr) > MAX_AMOUNT) {
    return { ok: false, error: "That amount is too large." };
  }
  const minor = Number(digitsStr);
  if (!Number.isSafeInteger(minor)) return { ok: false, error: "That amount is too large." };
  if (minor <= 0) return { ok: false, error: "The amount must be more than zero." };
  return { ok: true, minor };
}

/** Validate a bid typed by the user against the auction's current minimum. */
export function validateBidInput(
  input: string,
  currency: string,
  minBid: number,
  locale?: string,
): ParseResult {
  const parsed = parseMoney(input, currency);
  if (!parsed.ok) return parsed;
  if (parsed.minor < minBid) {
    return {
      ok: false,
      error: `The minimum bid is ${formatMoney(minBid, currency, locale)}.`,
    };
  }
  return parsed;
}

/** A bid this many increments above the minimum, or more … */
export const CONFIRM_INCREMENTS = 10;
/** … or more than this many times the current price, asks for a confirmation first. */
export const CONFIRM_PRICE_FACTOR = 2;

/**
 * Whether an amount is far enough above the minimum that the bidder should confirm it
 * (a mistyped 1,000,000): more than CONFIRM_INCREMENTS increments above the minimum bid, or
 * more than CONFIRM_PRICE_FACTOR times the current price (the starting price before the
 * first bid). docs/rules.md, "Large bids", documents the same rule.
 */
export function needsConfirmation(
  amount: number,
  a: { min_bid: number; increment: number; price: number | null; starting_price: number },
): boolean {
  const reference = a.price ?? a.starting_price;
  return amount > a.min_bid + CONFIRM_INCREMENTS * a.increment || amount > CONFIRM_PRICE_FACTOR * reference;
}
