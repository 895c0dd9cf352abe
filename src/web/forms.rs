//! Forms: the CSRF-checked form extractor and per-field error messages.

use std::collections::BTreeMap;

use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::StatusCode;
use serde::de::DeserializeOwned;

use super::AppError;
use super::csrf::CsrfToken;

/// A body that is not a valid form: logged (for whoever debugs a client),
/// answered 400.
fn malformed(why: impl std::fmt::Display) -> AppError {
    tracing::debug!(%why, "malformed form");
    AppError::BadRequest
}

/// A urlencoded form whose `csrf_token` field was checked: a missing or wrong
/// token is a 403, a body that is not a valid form a 400 (text that is not
/// UTF-8, raw or percent-encoded, included: it is refused rather than
/// silently turned into U+FFFD), too large a 413.
pub struct CsrfForm<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for CsrfForm<T> {
    type Rejection = AppError;

    async fn from_request(req: Request, state: &S) -> Result<Self, AppError> {
        let expected = req.extensions().get::<CsrfToken>().cloned();
        let body = Bytes::from_request(req, state).await.map_err(|e| {
            if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
                AppError::TooLarge
            } else {
                malformed(e.body_text())
            }
        })?;
        if std::str::from_utf8(&body).is_err() {
            return Err(malformed("body is not UTF-8"));
        }
        let fields: Vec<(String, String)> =
            serde_urlencoded::from_bytes(&body).map_err(|e| malformed(e.to_string()))?;
        // Percent-decoding is lossy: bytes that are not UTF-8 become U+FFFD.
        if fields
            .iter()
            .any(|(k, v)| k.contains('\u{fffd}') || v.contains('\u{fffd}'))
        {
            return Err(malformed("a field is not UTF-8"));
        }
        let mut tokens = fields.iter().filter(|(k, _)| k == "csrf_token");
        let valid = match (expected, tokens.next(), tokens.next()) {
            (Some(expected), Some((_, token)), None) => expected.matches(token),
            _ => false,
        };
        if !valid {
            return Err(AppError::Forbidden);
        }
        serde_urlencoded::from_bytes(&body)
            .map(CsrfForm)
            .map_err(|e| malformed(e.to_string()))
    }
}

/// Messages keyed by field name, shown beside each field.
#[derive(Clone, Debug, Default)]
pub struct FieldErrors(BTreeMap<&'static str, String>);

impl FieldErrors {
    pub fn add(&mut self, field: &'static str, message: impl Into<String>) {
        self.0.entry(field).or_insert_with(|| message.into());
    }

    /// Records `result`'s error under `field` and returns its value, if any.
    pub fn check<T, E: ToString>(
        &mut self,
        field: &'static str,
        result: Result<T, E>,
    ) -> Option<T> {
        match result {
            Ok(v) => Some(v),
            Err(e) => {
                self.add(field, e.to_string());
                None
            }
        }
    }

    pub fn get(&self, field: &str) -> Option<&str> {
        self.0.get(field).map(String::as_str)
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}
