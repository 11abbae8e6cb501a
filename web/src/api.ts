// HTTP calls (docs/protocol.md, "HTTP"). Every error body is {"error": {"code", "message"}}.

import type { AuctionView, BidView, LatencyStats, Session, UserView } from "./types";

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

async function request<T>(method: string, path: string, token: string | null, body?: unknown): Promise<T> {
  const headers: Record<string, string> = { Accept: "application/json" };
  if (token) headers.Authorization = `Bearer ${token}`;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  let res: Response;
  try {
    res = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  } catch {
    throw new ApiError(0, "network", "Cannot reach the server. Check your connection and try again.");
  }
  const text = await res.text();
  let data: unknown = null;
  try {
    data = text ? JSON.parse(text) : null;
  } catch {
    data = null;
  }
  if (!res.ok) {
    const err = (data as { error?: { code?: string; message?: string } } | null)?.error;
    throw new ApiError(res.status, err?.code ?? `http_${res.status}`, err?.message ?? `The server answered ${res.status}.`);
  }
  return data as T;
}

export function createSession(name: string, adminToken?: string): Promise<Session> {
  const body: { name: string; admin_token?: string } = { name };
  if (adminToken) body.admin_token = adminToken;
  return request<Session>("POST", "/api/session", null, body);
}

/** A fresh token for a valid one (POST /api/session/refresh): same body as POST /api/session. */
export function refreshSession(token: string): Promise<Session> {
  return request<Session>("POST", "/api/session/refresh", token);
}

export function getMe(token: string): Promise<UserView> {
  return request<UserView>("GET", "/api/me", token);
}

export function getTime(): Promise<{ server_time: number }> {
  return request("GET", "/api/time", null);
}

export function listAuctions(status?: string): Promise<{ auctions: AuctionView[]; server_time: number }> {
  return request("GET", `/api/auctions${status ? `?status=${encodeURIComponent(status)}` : ""}`, null);
}

export function getAuction(id: string): Promise<AuctionView> {
  return request("GET", `/api/auctions/${encodeURIComponent(id)}`, null);
}

export function getBids(
  id: string,
  beforeSeq?: number,
  limit = 50,
): Promise<{ bids: BidView[]; next_before_seq: number | null }> {
  const q = new URLSearchParams({ limit: String(limit) });
  if (beforeSeq !== undefined) q.set("before_seq", String(beforeSeq));
  return request("GET", `/api/auctions/${encodeURIComponent(id)}/bids?${q}`, null);
}

export interface CreateAuctionBody {
  id?: string;
  title: string;
  description: string;
  currency: string;
  starting_price: number;
  increment: number;
  starts_at?: number;
  ends_at?: number;
  duration_ms?: number;
  reserve?: number;
  buy_now?: number;
  soft_close?: { window_ms: number; extend_ms: number; max_extension_ms?: number };
}

export function createAuction(token: string, body: CreateAuctionBody): Promise<AuctionView> {
  return request("POST", "/api/auctions", token, body);
}

export function adminAction(token: string, id: string, action: "cancel" | "end", reason?: string): Promise<AuctionView> {
  return request("POST", `/api/auctions/${encodeURIComponent(id)}/${action}`, token, reason ? { reason } : {});
}

/** Delivery latency on the node that answers, for the `limit` most watched auctions (admin). */
export function getLatency(token: string, limit = 100): Promise<LatencyStats> {
  return request("GET", `/api/admin/latency?limit=${limit}`, token);
}
