//! dbkeep's web admin and API: the router, logins, pages, the JSON API, `/healthz` and
//! `/metrics`, over a running [`dbkeep_service::ServiceHandle`].

pub mod web;

pub use web::router;
