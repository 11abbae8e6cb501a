//! The admin CLI's HTTP client: one request at a time to a running server, with the admin
//! token, every failure turned into an [`AdminError`] that knows its exit code.

use reqwest::{Method, StatusCode};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// Exit codes of the admin CLI (also documented in docs/integration.md).
pub mod exit {
    /// The server refused or failed the request (not found, already closed, invalid for
    /// the server's rules, server error).
    pub const REFUSED: i32 = 1;
    /// Bad input caught before anything was sent (clap's usage errors are 2 as well).
    pub const BAD_INPUT: i32 = 2;
    /// No admin token, or the server does not accept it as an admin's.
    pub const AUTH: i32 = 3;
    /// The server could not be reached (or is not a Gavel server).
    pub const UNREACHABLE: i32 = 4;
}

#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    #[error("{0}")]
    BadInput(String),
    #[error("{0}")]
    Auth(String),
    #[error("cannot reach the Gavel server at {server}: {reason} (set --server or GAVEL_SERVER)")]
    Unreachable { server: String, reason: String },
    #[error("the server refused: {code}: {message}")]
    Refused { code: String, message: String },
    #[error("{0}")]
    Output(String),
}

impl AdminError {
    pub fn exit_code(&self) -> i32 {
        match self {
            AdminError::BadInput(_) => exit::BAD_INPUT,
            AdminError::Auth(_) => exit::AUTH,
            AdminError::Unreachable { .. } => exit::UNREACHABLE,
            AdminError::Refused { .. } | AdminError::Output(_) => exit::REFUSED,
        }
    }
}

/// An error body, read with the code as a string (a newer server may have new codes).
#[derive(Deserialize)]
struct ErrorBody {
    error: ErrorDetail,
}

#[derive(Deserialize)]
struct ErrorDetail {
    code: String,
    message: String,
}

/// A server and the admin token to present to it.
pub struct Client {
    http: reqwest::Client,
    server: String,
    token: Option<String>,
}

impl Client {
    pub fn new(server: &str, token: Option<String>) -> Result<Client, AdminError> {
        let server = server.trim_end_matches('/').to_string();
        if !(server.starts_with("http://") || server.starts_with("https://")) {
            return Err(AdminError::BadInput(format!(
                "--server {server:?} must be an http:// or https:// URL, e.g. http://127.0.0.1:3000"
            )));
        }
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(5))
            .timeout(Duration::from_secs(30))
            .build()
            .map_err(|e| AdminError::BadInput(e.to_string()))?;
        Ok(Client {
            http,
            server,
            token: token.filter(|t| !t.is_empty()),
        })
    }

    /// Fails unless a token was given (for the commands that change things).
    pub fn require_token(&self) -> Result<(), AdminError> {
        if self.token.is_none() {
            return Err(AdminError::Auth(
                "no admin token: set GAVEL_ADMIN_TOKEN (or pass --admin-token)".into(),
            ));
        }
        Ok(())
    }

    pub async fn get<T: DeserializeOwned>(&self, path: &str) -> Result<T, AdminError> {
        self.send::<(), T>(Method::GET, path, None).await
    }

    pub async fn post<B: Serialize, T: DeserializeOwned>(
        &self,
        path: &str,
        body: &B,
    ) -> Result<T, AdminError> {
        self.send(Method::POST, path, Some(body)).await
    }

    async fn send<B: Serialize, T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: Option<&B>,
    ) -> Result<T, AdminError> {
        let url = format!("{}{path}", self.server);
        let mut req = self.http.request(method, &url);
        if let Some(t) = &self.token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req.json(b);
        }
        let unreachable = |reason: String| AdminError::Unreachable {
            server: self.server.clone(),
            reason,
        };
        let resp = req.send().await.map_err(|e| {
            unreachable(if e.is_timeout() {
                "no answer within 30 s".to_string()
            } else if e.is_connect() {
                "connection refused or no route".to_string()
            } else {
                e.to_string()
            })
        })?;
        let status = resp.status();
        let bytes = resp
            .bytes()
            .await
            .map_err(|e| unreachable(format!("reading the answer: {e}")))?;
        if status.is_success() {
            return serde_json::from_slice(&bytes).map_err(|e| {
                unreachable(format!("not a Gavel answer from {url} ({status}): {e}"))
            });
        }
        let detail = serde_json::from_slice::<ErrorBody>(&bytes).map(|b| b.error);
        let Ok(detail) = detail else {
            return Err(unreachable(format!(
                "not a Gavel answer from {url}: HTTP {status}"
            )));
        };
        let code = detail.code;
        Err(match status {
            StatusCode::UNAUTHORIZED => AdminError::Auth(format!(
                "the server does not accept this admin token ({code}: {}); check GAVEL_ADMIN_TOKEN",
                detail.message
            )),
            StatusCode::FORBIDDEN => AdminError::Auth(format!(
                "this token is not an admin's ({code}: {})",
                detail.message
            )),
            _ => AdminError::Refused {
                code,
                message: detail.message,
            },
        })
    }
}
