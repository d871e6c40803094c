//! Integration tests for the `dbkeep` binary.
//!
//! PostgreSQL tests need the servers described by `DBKEEP_TEST_PG_URL` and
//! `DBKEEP_TEST_PG_AUTH_URL` (started by `scripts/test.sh`); they fail with
//! a hint when those servers are not reachable.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
mod http;

mod admin_restore;
mod browser;
mod catalog_migrate;
mod cli;
mod config;
mod crash;
mod django;
mod django_admin;
mod doctor;
mod encryption;
mod failures;
mod hardening;
mod hardening_files;
mod import_many;
mod leases;
mod many_instances;
mod mysql;
mod notify;
mod offsite;
mod oidc;
mod openapi;
mod operator;
mod pins;
mod pitr;
mod postgres;
mod python_package;
mod restore;
mod retention;
mod retention_calendar;
mod roles;
mod servers;
mod service;
mod shared_catalog;
mod shell;
mod space;
mod sqlite;
mod systemd;
mod tampered;
mod twofactor;
mod unreadable;
mod web;
mod web_retention;
