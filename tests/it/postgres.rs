//! PostgreSQL backups: a plain-SQL dump that restores with psql into an
//! identical database.

use crate::common::*;

/// Schema and data exercising common column types, constraints, indexes, a
/// sequence, a view, unicode, NULLs, bytea and a table of 120k rows.
const SOURCE_SQL: &str = r#"
CREATE TABLE customers (
    id serial PRIMARY KEY,
    name text NOT NULL,
    email text UNIQUE,
    country char(2),
    created_at timestamptz NOT NULL DEFAULT '2024-01-01 00:00:00+00'
);
CREATE INDEX customers_lower_name_idx ON customers (lower(name));
INSERT INTO customers (name, email, country) VALUES
    ('Zoë Ångström', 'zoe@example.org', 'SE'),
    ('Łukasz Żółć', NULL, 'PL'),
    ('山田太郎', 'taro@example.jp', 'JP'),
    ('Ἀριστοτέλης', NULL, NULL),
    ('emoji 🐘🎉', 'e@example.com', 'US'),
    (E'quote '' backslash \\ tab \t newline \n end', NULL, 'FR');

CREATE TABLE orders (
    id bigserial PRIMARY KEY,
    customer_id int NOT NULL REFERENCES customers (id),
    amount numeric(12, 2),
    note text,
    placed_at timestamptz
);
CREATE INDEX orders_customer_idx ON orders (customer_id, placed_at);
INSERT INTO orders (customer_id, amount, note, placed_at)
SELECT 1 + i % 6,
       (i * 7.31)::numeric(12, 2),
       CASE WHEN i % 3 = 0 THEN NULL ELSE 'note ' || i END,
       timestamptz '2024-01-01 00:00:00+00' + i * interval '1 hour'
FROM generate_series(1, 500) AS i;

CREATE TABLE attachments (id int PRIMARY KEY, data bytea, label text);
INSERT INTO attachments VALUES
    (1, '\x00ff10deadbeef'::bytea, 'binary'),
    (2, NULL, NULL),
    (3, decode(repeat('ab', 1000), 'hex'), 'repeated'),
    (4, ''::bytea, 'empty');
INSERT INTO attachments SELECT 100 + i, sha256(i::text::bytea), NULL FROM generate_series(1, 50) AS i;

CREATE TABLE events (
    id bigint PRIMARY KEY,
    kind text NOT NULL,
    payload jsonb,
    score double precision,
    tags text[]
);
INSERT INTO events
SELECT i,
       (ARRAY['click', 'view', 'buy'])[1 + i % 3],
       jsonb_build_object('i', i, 'h', md5(i::text)),
       CASE WHEN i % 10 = 0 THEN NULL ELSE i / 7.0 END,
       CASE WHEN i % 4 = 0 THEN NULL ELSE ARRAY['t' || i % 5, 'ü'] END
FROM generate_series(1, 120000) AS i;
CREATE INDEX events_kind_idx ON events (kind);

CREATE TABLE "Mixed Case ""Table""" ("Weird Column" text, n int);
INSERT INTO "Mixed Case ""Table""" VALUES ('a', 1), (NULL, NULL), ('ç', 3);

CREATE TABLE empty_table (id int, v text);

CREATE SEQUENCE invoice_seq START 1000 INCREMENT 5;
SELECT nextval('invoice_seq') FROM generate_series(1, 7);

CREATE VIEW customer_totals AS
SELECT c.id, c.name, count(o.id) AS orders, sum(o.amount) AS total
FROM customers c LEFT JOIN orders o ON o.customer_id = c.id
GROUP BY c.id, c.name;
"#;

const TABLES_SQL: &str = "SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY 1;";

/// Everything compared between the source and the restored database.
fn describe(db: &PgDb) -> Vec<String> {
    let mut out = Vec::new();
    let tables: Vec<String> = db.psql(TABLES_SQL).lines().map(str::to_string).collect();
    out.push(format!("tables: {tables:?}"));
    for table in tables
        .iter()
        .chain(std::iter::once(&"customer_totals".to_string()))
    {
        let ident = pg_ident(table);
        let digest = db.scalar(&format!(
            "SELECT count(*) || ' ' || md5(coalesce(string_agg(t::text, E'\\n' ORDER BY t::text), '')) \
             FROM public.{ident} AS t;"
        ));
        out.push(format!("{table}: {digest}"));
    }
    out.push(format!(
        "indexes:\n{}",
        db.psql("SELECT indexname || ' ' || indexdef FROM pg_indexes WHERE schemaname = 'public' ORDER BY 1;")
    ));
    out.push(format!(
        "sequences:\n{}",
        db.psql(
            "SELECT sequencename || ' ' || coalesce(last_value::text, 'null') || ' ' || increment_by \
             FROM pg_sequences WHERE schemaname = 'public' ORDER BY 1;"
        )
    ));
    out.push(format!(
        "invoice_seq: {}",
        db.scalar("SELECT last_value || ' ' || is_called FROM invoice_seq;")
    ));
    out.push(format!(
        "view: {}",
        db.scalar("SELECT pg_get_viewdef('customer_totals'::regclass, true);")
    ));
    out.push(format!(
        "constraints:\n{}",
        db.psql(
            "SELECT conrelid::regclass || ' ' || conname || ' ' || pg_get_constraintdef(oid) \
             FROM pg_constraint WHERE connamespace = 'public'::regnamespace ORDER BY 1;"
        )
    ));
    out
}

fn roundtrip(compression: Option<&str>) {
    let source = PgDb::create("pg_src");
    source.psql(SOURCE_SQL);

    let sb = Sandbox::new();
    let extra = compression
        .map(|c| format!("compression = \"{c}\"\n"))
        .unwrap_or_default();
    sb.write_config(&format!(
        "[[databases]]\nname = \"shop\"\nurl = \"{}\"\n{extra}",
        source.url()
    ));

    let run = sb.run(&["backup"]);
    run.assert_success();
    assert!(
        run.stdout
            .lines()
            .any(|l| l.starts_with("ok") && l.contains("shop")),
        "{run:?}"
    );

    let rows = sb.rows_for("shop");
    assert_eq!(rows.len(), 1, "{rows:#?}");
    let path = assert_success_row(&rows[0], "shop", "postgres");
    let (expected_compression, suffix, tool) = match compression {
        None | Some("gzip") => ("gzip", ".sql.gz", "gzip"),
        Some("zstd") => ("zstd", ".sql.zst", "zstd"),
        Some(other) => panic!("unsupported compression in test: {other}"),
    };
    assert_eq!(rows[0]["compression"], expected_compression);
    let file_name = rows[0]["file_name"].as_str().unwrap();
    assert!(
        file_name.starts_with("postgres_backup_") && file_name.ends_with(suffix),
        "unexpected file name {file_name}"
    );
    assert_eq!(rows[0]["sha256"].as_str(), Some(sha256sum(&path).as_str()));
    assert_eq!(file_names(&sb.db_dir("shop")), vec![file_name.to_string()]);
    assert_eq!(mode_of(&path), 0o600);

    let target = PgDb::create("pg_dst");
    restore_sql_dump(&path, Some(tool), &target.url());

    let expected = describe(&source);
    let actual = describe(&target);
    assert!(
        expected.iter().any(|l| l.starts_with("events: 120000 ")),
        "{expected:#?}"
    );
    assert_eq!(
        expected, actual,
        "restored database differs from the source"
    );

    // The sequence continues where the source left off.
    assert_eq!(
        source.scalar("SELECT nextval('invoice_seq');"),
        target.scalar("SELECT nextval('invoice_seq');")
    );
    assert_eq!(target.scalar("SELECT nextval('invoice_seq');"), "1040");
}

#[test]
fn postgres_backup_restores_identically_gzip_default() {
    roundtrip(None);
}

#[test]
fn postgres_backup_restores_identically_zstd() {
    roundtrip(Some("zstd"));
}
