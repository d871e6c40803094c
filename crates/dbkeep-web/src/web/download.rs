//! Downloads: a backup file by catalog id (never by path), streamed, with its SHA-256.

use axum::body::Body;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, Request};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use tokio_util::io::ReaderStream;

use super::audited::AuditDetail;
use super::respond::parse_id;
use super::{State, blocking};
use dbkeep_model::catalog::Status;

/// The header carrying the file's SHA-256 (lowercase hex), as `sha256sum` prints it.
pub const SHA256_HEADER: &str = "x-backup-sha256";

fn refuse(json: bool, status: StatusCode, message: &str) -> Response {
    if json {
        super::respond::error(status, message)
    } else {
        (status, format!("{message}\n")).into_response()
    }
}

pub async fn download_get(
    state: State,
    id: Result<Path<String>, PathRejection>,
    request: Request,
) -> Response {
    let json = request.uri().path().contains("/api/");
    let Some(id) = id.ok().and_then(|Path(id)| parse_id(&id)) else {
        return refuse(json, StatusCode::NOT_FOUND, "no such backup");
    };
    let record = match blocking(&state, move |r| r.catalog().get(id)).await {
        Ok(Some(r)) => r,
        Ok(None) => return refuse(json, StatusCode::NOT_FOUND, "no such backup"),
        Err(e) => {
            return refuse(
                json,
                StatusCode::INTERNAL_SERVER_ERROR,
                super::internal_error(&e),
            );
        }
    };
    if record.status != Status::Success {
        return refuse(
            json,
            StatusCode::NOT_FOUND,
            "this backup has no file: it did not succeed",
        );
    }
    if !record.is_stored() {
        return refuse(
            json,
            StatusCode::GONE,
            "this backup was pruned by the retention policy everywhere; no copy is left",
        );
    }
    let (Some(name), Some(sha256)) = (record.file_name.clone(), record.sha256.clone()) else {
        return refuse(json, StatusCode::NOT_FOUND, "no such backup");
    };
    // Found by name in the database's configured folder, never through a link, and opened
    // without following one: a catalog row cannot point the server at any other file.
    let size = record.size_bytes;
    let copy_of = record.clone();
    let opened = blocking(&state, move |runner| {
        // Another instance's backup: its file is on that instance's machine.
        let peer = runner.owns(&record)
            && record
                .instance
                .as_deref()
                .is_some_and(|i| i != runner.instance_name());
        Ok((runner.open_backup(&record), peer))
    })
    .await;
    let file = match opened {
        Ok((Ok(f), _)) => tokio::fs::File::from_std(f),
        // Gone from this disk, or made by another instance (its file on that machine).
        Ok((Err(e), peer)) if e.kind() == std::io::ErrorKind::NotFound || peer => {
            // The local file is gone: a checked copy off-site serves it, if there is one.
            return match blocking(&state, move |r| Ok(r.open_stored(&copy_of))).await {
                Ok(Ok(reader)) => {
                    let mut r = stream_copy(reader, size, &name, &sha256);
                    r.extensions_mut().insert(AuditDetail(format!(
                        "{name}, from an off-site copy (the local file is not here)"
                    )));
                    r
                }
                _ => refuse(
                    json,
                    StatusCode::GONE,
                    "the backup file is not in this instance's backup folder, and no off-site copy has it",
                ),
            };
        }
        Ok((Err(e), _)) => {
            tracing::warn!(id, error = %e, "download refused");
            return refuse(
                json,
                StatusCode::FORBIDDEN,
                &format!("download refused: {e}"),
            );
        }
        Err(e) => {
            return refuse(
                json,
                StatusCode::INTERNAL_SERVER_ERROR,
                super::internal_error(&e),
            );
        }
    };
    let length = match file.metadata().await {
        Ok(m) if m.is_file() => m.len(),
        Ok(_) => {
            return refuse(
                json,
                StatusCode::FORBIDDEN,
                "download refused: not a regular file",
            );
        }
        Err(e) => {
            return refuse(
                json,
                StatusCode::INTERNAL_SERVER_ERROR,
                super::internal_error(&e),
            );
        }
    };
    let response = Body::from_stream(ReaderStream::with_capacity(
        file,
        dbkeep_model::stream::CHUNK,
    ))
    .into_response();
    let mut r = with_headers(response, Some(length), &name, &sha256);
    r.extensions_mut()
        .insert(AuditDetail(format!("{name}, from the local file")));
    r
}

/// Streams a copy read from off-site (a blocking reader) through a bounded channel.
fn stream_copy(
    mut reader: Box<dyn std::io::Read + Send>,
    size: Option<u64>,
    name: &str,
    sha256: &str,
) -> Response {
    let (tx, rx) = tokio::sync::mpsc::channel::<std::io::Result<bytes::Bytes>>(4);
    tokio::task::spawn_blocking(move || {
        let mut buf = vec![0u8; dbkeep_model::stream::CHUNK];
        loop {
            let chunk = match reader.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => Ok(bytes::Bytes::copy_from_slice(&buf[..n])),
                Err(e) => Err(e),
            };
            let failed = chunk.is_err();
            if tx.blocking_send(chunk).is_err() || failed {
                break;
            }
        }
    });
    let stream = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|chunk| (chunk, rx))
    });
    with_headers(
        Body::from_stream(stream).into_response(),
        size,
        name,
        sha256,
    )
}

/// The download's headers: an attachment of `length` bytes, named, with its SHA-256.
fn with_headers(mut response: Response, length: Option<u64>, name: &str, sha256: &str) -> Response {
    let disposition = format!(
        "attachment; filename=\"{}\"",
        name.replace(['"', '\\'], "_")
    );
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/octet-stream"),
    );
    if let Some(length) = length {
        headers.insert(header::CONTENT_LENGTH, HeaderValue::from(length));
    }
    if let Ok(v) = HeaderValue::from_str(&disposition) {
        headers.insert(header::CONTENT_DISPOSITION, v);
    }
    if let Ok(v) = HeaderValue::from_str(sha256) {
        headers.insert(SHA256_HEADER, v);
    }
    response
}
