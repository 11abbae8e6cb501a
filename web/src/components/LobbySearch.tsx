// Finding auctions in the lobby: a search box and filters answered by the server's
// archive indexes (`GET /api/search`, `GET /api/categories`), never by scanning the
// auctions this page happens to hold. While a search is active its results replace the
// lobby's live lists; "Clear" returns to them.
import { useEffect, useState, type FormEvent, type ReactNode } from "react";
import type { AuctionView, CategoryCount, SearchParams } from "@gavel/client";
import { useClient } from "../hooks";
import { parseMoney } from "../money";

interface SearchForm {
  q: string;
  category: string;
  status: NonNullable<SearchParams["status"]>;
  minPrice: string;
  maxPrice: string;
  endingWithin: string;
  sort: NonNullable<SearchParams["sort"]>;
}

const EMPTY_SEARCH: SearchForm = {
  q: "",
  category: "",
  status: "any",
  minPrice: "",
  maxPrice: "",
  endingWithin: "",
  sort: "ending",
};

const PAGE = 24;

const ENDING_WITHIN: { value: string; label: string }[] = [
  { value: "", label: "Any time" },
  { value: String(60 * 60_000), label: "Within 1 hour" },
  { value: String(24 * 60 * 60_000), label: "Within 24 hours" },
  { value: String(7 * 24 * 60 * 60_000), label: "Within 7 days" },
];

/** What a search shows: its results so far, and where the next page starts. */
interface SearchState {
  active: boolean;
  loading: boolean;
  error: string | null;
  results: AuctionView[];
  nextOffset: number | null;
}

const IDLE_SEARCH: SearchState = { active: false, loading: false, error: null, results: [], nextOffset: null };

function isEmpty(f: SearchForm): boolean {
  return (
    f.q.trim() === "" &&
    f.category === "" &&
    f.status === "any" &&
    f.minPrice === "" &&
    f.maxPrice === "" &&
    f.endingWithin === "" &&
    f.sort === "ending"
  );
}

/** The form's prices are typed in dollars (USD, the lobby's usual currency) as decimals. */
function toParams(f: SearchForm): SearchParams | string {
  const price = (label: string, v: string) => {
    if (v.trim() === "") return undefined;
    const r = parseMoney(v, "USD");
    return r.ok ? r.minor : `${label}: ${r.error}`;
  };
  const min = price("Minimum price", f.minPrice);
  const max = price("Maximum price", f.maxPrice);
  if (typeof min === "string") return min;
  if (typeof max === "string") return max;
  return {
    q: f.q,
    category: f.category || undefined,
    status: f.status,
    minPrice: min,
    maxPrice: max,
    endingWithinMs: f.endingWithin ? Number(f.endingWithin) : undefined,
    sort: f.sort,
    limit: PAGE,
  };
}

export function LobbySearch({
  onActive,
  renderList,
}: {
  /** Told whether a search is shown (the lobby then hides its own lists). */
  onActive: (active: boolean) => void;
  renderList: (list: AuctionView[]) => ReactNode;
}) {
  const client = useClient();
  const [form, setForm] = useState<SearchForm>(EMPTY_SEARCH);
  const [categories, setCategories] = useState<CategoryCount[]>([]);
  const [state, setState] = useState<SearchState>(IDLE_SEARCH);
  const [params, setParams] = useState<SearchParams | null>(null);

  useEffect(() => {
    client.http.categories().then(
      (c) => setCategories(c.categories),
      () => setCategories([]),
    );
  }, [client]);
  useEffect(() => onActive(state.active), [state.active, onActive]);

  const run = async (p: SearchParams, offset: number, before: AuctionView[]) => {
    setState({ active: true, loading: true, error: null, results: before, nextOffset: null });
    try {
      const page = await client.http.search({ ...p, offset });
      setState({
        active: true,
        loading: false,
        error: null,
        results: [...before, ...page.auctions],
        nextOffset: page.next_offset ?? null,
      });
    } catch (e) {
      setState({ active: true, loading: false, error: (e as Error).message, results: before, nextOffset: null });
    }
  };

  const submit = (e?: FormEvent) => {
    e?.preventDefault();
    if (isEmpty(form)) {
      setParams(null);
      setState(IDLE_SEARCH);
      return;
    }
    const p = toParams(form);
    if (typeof p === "string") {
      setState({ ...IDLE_SEARCH, active: true, error: p });
      return;
    }
    setParams(p);
    void run(p, 0, []);
  };

  const clear = () => {
    setForm(EMPTY_SEARCH);
    setParams(null);
    setState(IDLE_SEARCH);
  };

  const set = <K extends keyof SearchForm>(k: K) => (v: SearchForm[K]) => setForm((f) => ({ ...f, [k]: v }));

  return (
    <div className="lobby-search">
      <form role="search" aria-label="Search auctions" className="search-form" onSubmit={submit}>
        <label className="search-q">
          <span>Search</span>
          <input
            type="search"
            value={form.q}
            maxLength={200}
            placeholder="Title or description"
            onChange={(e) => set("q")(e.target.value)}
          />
        </label>
        <label>
          <span>Category</span>
          <select value={form.category} onChange={(e) => set("category")(e.target.value)}>
            <option value="">All categories</option>
            {categories.map((c) => (
              <option key={c.category} value={c.category}>
                {c.category} ({c.live})
              </option>
            ))}
          </select>
        </label>
        <label>
          <span>Status</span>
          <select value={form.status} onChange={(e) => set("status")(e.target.value as SearchForm["status"])}>
            <option value="any">Any</option>
            <option value="live">Open or upcoming</option>
            <option value="open">Open</option>
            <option value="scheduled">Upcoming</option>
            <option value="closed">Ended</option>
          </select>
        </label>
        <label>
          <span>Min price (USD)</span>
          <input inputMode="decimal" value={form.minPrice} onChange={(e) => set("minPrice")(e.target.value)} />
        </label>
        <label>
          <span>Max price (USD)</span>
          <input inputMode="decimal" value={form.maxPrice} onChange={(e) => set("maxPrice")(e.target.value)} />
        </label>
        <label>
          <span>Ending</span>
          <select value={form.endingWithin} onChange={(e) => set("endingWithin")(e.target.value)}>
            {ENDING_WITHIN.map((o) => (
              <option key={o.value} value={o.value}>
                {o.label}
              </option>
            ))}
          </select>
        </label>
        <label>
          <span>Sort</span>
          <select value={form.sort} onChange={(e) => set("sort")(e.target.value as SearchForm["sort"])}>
            <option value="ending">Ending soonest</option>
            <option value="newest">Newest</option>
            <option value="price_asc">Price: low to high</option>
            <option value="price_desc">Price: high to low</option>
          </select>
        </label>
        <div className="search-actions">
          <button type="submit" className="btn btn-primary">
            Search
          </button>
          {state.active && (
            <button type="button" className="btn" onClick={clear}>
              Clear
            </button>
          )}
        </div>
      </form>
      {state.active && (
        <section className="lobby-section" aria-labelledby="search-title" data-testid="search-results">
          <h2 id="search-title" className="section-title">
            Search results
          </h2>
          {state.error ? (
            <p className="notice notice-error" role="alert" data-testid="search-error">
              {state.error}
            </p>
          ) : state.results.length === 0 ? (
            <p className="empty" role="status" data-testid="search-empty">
              {state.loading ? "Searching…" : "No auctions match this search."}
            </p>
          ) : (
            <>
              <p className="search-count" role="status" data-testid="search-count">
                {state.results.length} auction{state.results.length === 1 ? "" : "s"}
                {state.nextOffset !== null ? " shown, more below" : ""}
              </p>
              {renderList(state.results)}
            </>
          )}
          {params && state.nextOffset !== null && (
            <button
              type="button"
              className="btn"
              disabled={state.loading}
              onClick={() => state.nextOffset !== null && void run(params, state.nextOffset, state.results)}
            >
              {state.loading ? "Loading…" : "Show more results"}
            </button>
          )}
        </section>
      )}
    </div>
  );
}
