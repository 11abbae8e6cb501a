import { formatRemaining, spokenRemaining } from "../format";
import { useServerNow } from "../hooks";
import type { AuctionView } from "@gavel/client";

/** Time left by the server clock. The server's ends_at (and its closes) always win. */
export function Countdown({ auction, big = false }: { auction: AuctionView; big?: boolean }) {
  const now = useServerNow();
  const a = auction;
  let label: string;
  let value: string;
  let remaining: number | null = null;
  let urgent = false;
  if (a.status === "closed") {
    label = "Ended";
    value = a.closing?.reason === "cancelled" ? "Cancelled" : "Ended";
  } else if (a.status === "scheduled" && now < a.starts_at) {
    remaining = a.starts_at - now;
    label = "Starts in";
    value = formatRemaining(remaining);
  } else {
    remaining = a.ends_at - now;
    if (remaining <= 0) {
      label = "Ends in";
      value = "Closing…";
    } else {
      label = "Ends in";
      value = formatRemaining(remaining);
      urgent = remaining <= 60_000;
    }
  }
  const cls = `countdown${big ? " countdown-big" : ""}${urgent ? " countdown-urgent" : ""}`;
  return (
    <div
      className={cls}
      role="timer"
      aria-label={remaining !== null ? `${label} ${spokenRemaining(remaining)}` : label}
      data-testid="countdown"
      data-remaining-ms={remaining !== null ? Math.round(remaining) : undefined}
    >
      {a.status !== "closed" && <span className="countdown-label">{label}</span>}
      <span className="countdown-value">{value}</span>
    </div>
  );
}
