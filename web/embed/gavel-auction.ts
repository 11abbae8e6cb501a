// <gavel-auction auction="ID" server="https://gavel.example">: a live bid box for any page.
// One script file, served by Gavel at /embed/gavel-auction.js (built from this source with
// `npm run build` into web/dist/embed/, @gavel/client bundled in). docs/integration.md,
// "Embeddable bid box", explains its use.
//
//   <script src="https://gavel.example/embed/gavel-auction.js" defer></script>
//   <gavel-auction auction="lot-42" server="https://gavel.example" token="…"></gavel-auction>
//
// Attributes: `auction` (required), `server` (default: where this script came from),
// `token` (the marketplace's token for the viewer; absent: watch only), `locale` (money
// format, default the browser's). Property: `getToken = async () => "…"` (asked when there is
// no `token` attribute, and again when the server refuses or the token expires). Events
// (bubbling, composed): `gavel-bid` (detail: the bid result), `gavel-signin-required` (a
// viewer without a token pressed Bid), `gavel-error` (detail: { code, message }).

import { GavelClient, GavelError, type AuctionState, type AuctionWatch, type BidResult } from "@gavel/client";
import { bidErrorMessage, bidMessage, boxView } from "./view";

/** Where this script was loaded from: the default `server`. */
const scriptOrigin = (() => {
  try {
    const src = (document.currentScript as HTMLScriptElement | null)?.src;
    return src ? new URL(src).origin : "";
  } catch {
    return "";
  }
})();

export type TokenFunction = () => string | null | undefined | Promise<string | null | undefined>;

const STYLE = `
:host { display: block; max-width: 22rem; font: 400 1rem/1.4 var(--gavel-font, system-ui, -apple-system, "Segoe UI", sans-serif);
  color: var(--gavel-text, #1a1a1a); }
:host([hidden]) { display: none; }
.box { border: 1px solid var(--gavel-border, #c9ccd1); border-radius: var(--gavel-radius, 0.75rem);
  background: var(--gavel-background, #fff); padding: 1rem; display: grid; gap: 0.5rem; }
h2 { font-size: 1.05rem; margin: 0; font-weight: 600; }
.row { display: flex; justify-content: space-between; align-items: baseline; gap: 1rem; flex-wrap: wrap; }
.label { font-size: 0.85rem; color: var(--gavel-muted, #555b63); }
.price { font-size: 1.6rem; font-weight: 700; font-variant-numeric: tabular-nums; margin: 0; }
.clock { font-variant-numeric: tabular-nums; font-weight: 600; }
.leader { margin: 0; font-size: 0.9rem; color: var(--gavel-muted, #555b63); }
button { min-height: 44px; font: inherit; font-weight: 600; border: 0; border-radius: 0.5rem; padding: 0.6rem 1rem;
  background: var(--gavel-accent, #0b5cad); color: var(--gavel-accent-text, #fff); cursor: pointer; }
button:disabled { background: var(--gavel-disabled, #d5d8dc); color: #40454b; cursor: not-allowed; }
button:focus-visible { outline: 3px solid var(--gavel-focus, #f0a500); outline-offset: 2px; }
.hint, .message, .conn { margin: 0; font-size: 0.85rem; }
.message:empty, .conn:empty { display: none; }
.message[data-tone="good"] { color: var(--gavel-good, #1d6b33); }
.message[data-tone="warn"] { color: var(--gavel-warn, #8a3b00); }
.conn { color: var(--gavel-warn, #8a3b00); }
.sr { position: absolute; width: 1px; height: 1px; overflow: hidden; clip: rect(0 0 0 0); white-space: nowrap; }
`;

const TEMPLATE = `
<style>${STYLE}</style>
<section class="box" part="box" aria-labelledby="title">
  <h2 id="title" part="title"></h2>
  <div class="row">
    <div aria-live="polite" aria-atomic="true">
      <div class="label" id="price-label"></div>
      <p class="price" part="price" id="price"></p>
    </div>
    <div>
      <div class="label" id="clock-label"></div>
      <span class="clock" part="countdown" role="timer" id="clock"></span>
    </div>
  </div>
  <p class="leader" part="leader" id="leader"></p>
  <button type="button" part="button" id="bid" aria-describedby="hint"></button>
  <p class="hint label" part="hint" id="hint"></p>
  <p class="message" part="message" id="message" role="status" aria-live="polite"></p>
  <p class="conn" part="connection" id="conn" role="status" aria-live="polite"></p>
</section>`;

export class GavelAuctionElement extends HTMLElement {
  static observedAttributes = ["auction", "server", "token", "locale"];

  private client: GavelClient | null = null;
  private watch: AuctionWatch | null = null;
  private state: AuctionState | null = null;
  private missing = false;
  private bidding = false;
  private tokenFn: TokenFunction | null = null;
  private timer: ReturnType<typeof setInterval> | null = null;
  private startQueued = false;
  private readonly el: Record<"title" | "priceLabel" | "price" | "clockLabel" | "clock" | "leader" | "bid" | "hint" | "message" | "conn", HTMLElement>;

  constructor() {
    super();
    const root = this.attachShadow({ mode: "open" });
    root.innerHTML = TEMPLATE;
    const get = (id: string) => root.getElementById(id) as HTMLElement;
    this.el = {
      title: get("title"),
      priceLabel: get("price-label"),
      price: get("price"),
      clockLabel: get("clock-label"),
      clock: get("clock"),
      leader: get("leader"),
      bid: get("bid"),
      hint: get("hint"),
      message: get("message"),
      conn: get("conn"),
    };
    this.el.bid.addEventListener("click", () => void this.placeBid());
    // No render here: a custom element's constructor must not set attributes on itself.
  }

  /** The marketplace's token for the viewer, asked when there is no `token` attribute. */
  get getToken(): TokenFunction | null {
    return this.tokenFn;
  }

  set getToken(fn: TokenFunction | null) {
    this.tokenFn = typeof fn === "function" ? fn : null;
    // Before the box started, `start` picks it up; afterwards it is asked now (a viewer
    // already signed in on the page is shown as such) and again at a bid.
    if (this.client && this.tokenFn && !this.getAttribute("token") && !this.client.currentSession) void this.adoptToken();
    this.render();
  }

  /** The live client (for pages that want more than the box shows). */
  get gavel(): GavelClient | null {
    return this.client;
  }

  connectedCallback(): void {
    this.render();
    this.queueStart();
  }

  disconnectedCallback(): void {
    this.stop();
  }

  attributeChangedCallback(name: string, old: string | null, value: string | null): void {
    if (old === value || !this.client) return;
    if (name === "token") {
      if (value) this.client.useToken(value);
      else this.client.signOut();
    } else if (name === "locale") this.render();
    else this.queueStart();
  }

  /** Start once the current script is done, so `getToken` set right after creation is seen. */
  private queueStart(): void {
    if (this.startQueued) return;
    this.startQueued = true;
    queueMicrotask(() => {
      this.startQueued = false;
      if (this.isConnected) this.start();
    });
  }

  private start(): void {
    this.stop();
    const auction = this.getAttribute("auction");
    if (!auction) {
      this.showMessage("warn", "No auction given (the auction attribute is missing).");
      return;
    }
    const server = this.getAttribute("server") || scriptOrigin || location.origin;
    const token = this.getAttribute("token");
    const fn = this.tokenFn;
    const client = new GavelClient({
      baseUrl: server,
      token: token ? token : fn ? async () => (await fn()) || null : undefined,
    });
    this.client = client;
    this.missing = false;
    client.on("status", () => this.render());
    client.on("session", () => this.render());
    client.on("hello", () => this.render());
    client.on("clock", () => this.render());
    client.on("error", (e) => {
      if (e.code === "not_found") this.missing = true;
      this.render();
      this.emit("gavel-error", { code: e.code, message: e.message });
    });
    this.watch = client.watch(auction, (s) => {
      const me = client.user?.id;
      const was = this.state?.auction.leader?.id;
      if (me && was === me && s.auction.leader && s.auction.leader.id !== me && s.auction.status !== "closed") {
        this.showMessage("warn", "You have been outbid.");
      }
      this.state = s;
      this.missing = false;
      this.render();
    });
    void client.connect();
    this.timer = setInterval(() => this.render(), 250);
  }

  private stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    this.watch?.close();
    this.watch = null;
    this.client?.close();
    this.client = null;
    this.state = null;
    this.bidding = false;
  }

  private emit(type: string, detail: unknown): void {
    this.dispatchEvent(new CustomEvent(type, { detail, bubbles: true, composed: true }));
  }

  private showMessage(tone: "good" | "warn" | "", text: string): void {
    this.el.message.textContent = text;
    if (tone) this.el.message.dataset.tone = tone;
    else delete this.el.message.dataset.tone;
  }

  /**
   * Asks `getToken` for a token and, given one, hands the client a token function that
   * returns it first and asks `getToken` again when the server refuses it or it expires.
   */
  private async adoptToken(): Promise<boolean> {
    const fn = this.tokenFn;
    const client = this.client;
    if (!fn || !client) return false;
    let token: string | null | undefined;
    try {
      token = await fn();
    } catch {
      token = null;
    }
    if (!token || this.client !== client) return false;
    if (client.currentSession?.token === token) return true;
    let first: string | null = token;
    client.useToken(async () => {
      const t = first;
      first = null;
      return t ?? ((await fn()) || null);
    });
    return true;
  }

  private async placeBid(): Promise<void> {
    const client = this.client;
    const a = this.state?.auction;
    if (!client || !a || this.bidding) return;
    const amount = a.min_bid;
    this.bidding = true;
    this.showMessage("", "");
    this.render();
    try {
      if (!client.user && !client.currentSession && !(await this.adoptToken())) {
        // No token: the page has to sign the viewer in first.
        this.showMessage("warn", "Please sign in on this site to bid.");
        this.emit("gavel-signin-required", { auction: a.id, amount });
        return;
      }
      const result: BidResult = await client.bid(a.id, amount);
      const m = bidMessage(result, a.currency, this.locale);
      this.showMessage(m.tone, m.text);
      this.emit("gavel-bid", result);
    } catch (e) {
      const err = e instanceof GavelError ? e : new GavelError("internal", String(e));
      this.showMessage("warn", bidErrorMessage(err.code, err.message));
      this.emit("gavel-error", { code: err.code, message: err.message });
    } finally {
      this.bidding = false;
      this.render();
    }
  }

  private get locale(): string | undefined {
    return this.getAttribute("locale") || undefined;
  }

  private render(): void {
    const client = this.client;
    const v = boxView({
      auction: this.state?.auction ?? null,
      user: client?.user ?? null,
      serverNow: client ? client.serverNow() : Date.now(),
      bidding: this.bidding,
      canSignIn: Boolean(this.tokenFn || this.getAttribute("token")),
      locale: this.locale,
    });
    const set = (el: HTMLElement, text: string) => {
      if (el.textContent !== text) el.textContent = text;
    };
    set(this.el.title, this.missing && !this.state ? "No such auction" : v.title);
    set(this.el.priceLabel, v.priceLabel);
    set(this.el.price, v.price);
    set(this.el.clockLabel, v.clockLabel);
    set(this.el.clock, v.clock);
    if (this.el.clock.getAttribute("aria-label") !== v.clockSpoken) this.el.clock.setAttribute("aria-label", v.clockSpoken);
    set(this.el.leader, v.leader);
    set(this.el.bid, v.button);
    set(this.el.hint, v.buttonHint);
    (this.el.bid as HTMLButtonElement).disabled = !v.buttonEnabled || !client;
    const live = Boolean(this.state?.live);
    const status = client?.status;
    set(
      this.el.conn,
      !client || (!this.state && status !== "reconnecting" && status !== "offline")
        ? ""
        : live
          ? ""
          : status === "offline"
            ? "Offline: the price shown may be out of date."
            : "Reconnecting: the price shown may be out of date.",
    );
    this.dataset.state = v.phase;
    this.toggleAttribute("data-live", live);
    if (v.nextMinimum !== null) this.dataset.nextMinimum = String(v.nextMinimum);
    else delete this.dataset.nextMinimum;
  }
}

if (!customElements.get("gavel-auction")) customElements.define("gavel-auction", GavelAuctionElement);

declare global {
  interface HTMLElementTagNameMap {
    "gavel-auction": GavelAuctionElement;
  }
}
