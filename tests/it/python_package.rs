//! The Python package (`pyproject.toml`, `python/dbkeep/`): maturin builds a wheel carrying the
//! `dbkeep` executable; installed into a fresh virtualenv, `dbkeep`, `python -m dbkeep` and
//! `dbkeep.__version__` all are this crate, at its version.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::common::*;

const VERSION: &str = env!("CARGO_PKG_VERSION");

/// The platform the wheel is for: glibc 2.17 or newer (RHEL 7 and its clones, Amazon Linux 2,
/// Ubuntu 14.04, Debian 8, and everything since).
const MANYLINUX: &str = "manylinux2014";

/// Python's own environment variables that would change what the virtualenv runs.
const PYTHON_ENV: &[&str] = &["PYTHONPATH", "PYTHONHOME", "PYTHONSTARTUP", "VIRTUAL_ENV"];

/// Whether cargo sets `name` for a crate's build scripts and tests (not for a build).
fn set_by_cargo_for_crate(name: &str) -> bool {
    const PREFIXES: &[&str] = &[
        "CARGO_PKG_",
        "CARGO_MANIFEST_",
        "CARGO_BIN_EXE_",
        "CARGO_CFG_",
        "CARGO_FEATURE_",
    ];
    const NAMES: &[&str] = &[
        "CARGO_CRATE_NAME",
        "CARGO_BIN_NAME",
        "CARGO_PRIMARY_PACKAGE",
        "CARGO_TARGET_TMPDIR",
        "CARGO_RUSTC_CURRENT_DIR",
        "OUT_DIR",
    ];
    PREFIXES.iter().any(|p| name.starts_with(p)) || NAMES.contains(&name)
}

pub(crate) fn command(program: &Path) -> assert_cmd::Command {
    let mut cmd = assert_cmd::Command::new(program);
    for var in SCRUBBED_ENV.iter().chain(PYTHON_ENV) {
        cmd.env_remove(var);
    }
    cmd.env("NO_COLOR", "1");
    cmd.timeout(Duration::from_secs(600));
    cmd
}

/// `PATH` with the folder of `program` (a virtualenv's `bin`) first.
fn venv_path(program: &Path) -> std::ffi::OsString {
    let bin = program.parent().expect("a program in a folder");
    let rest = std::env::var_os("PATH").unwrap_or_default();
    std::env::join_paths(std::iter::once(bin.to_path_buf()).chain(std::env::split_paths(&rest)))
        .expect("a PATH")
}

/// The triple rustc builds for by default (this machine's).
fn host_triple() -> String {
    let run = run_cmd(command(Path::new("rustc")).arg("-vV"));
    run.assert_success();
    run.stdout
        .lines()
        .find_map(|l| l.strip_prefix("host: "))
        .unwrap_or_else(|| panic!("no host in rustc -vV\n{run:?}"))
        .trim()
        .to_string()
}

/// Builds the wheel into `out` and returns its path: the portable one a release ships
/// (manylinux2014, glibc 2.17 or newer), built as a release is, with zig as the C compiler and
/// linker (`--zig`, zig from the `ziglang` package in the test virtualenv), so the Django tests
/// install what users install.
///
/// Dev profile, in the repository's `target`, shared by every run (and by a `maturin build`
/// by hand with these options): after the first, a run builds nothing but what changed.
/// `--target` with the host's triple puts the artifacts in `target/<triple>/debug/`, so the
/// build never replaces `target/debug/dbkeep`, which other tests (in this run or another) are
/// running: the test build's binary has the dev-dependencies' features (rustls with aws-lc-rs,
/// …), a plain build of it does not, so a build into `target/debug` would swap the file.
/// `--strip` keeps the debug build's wheel small (a 60 MB binary instead of 260 MB).
pub(crate) fn build_wheel(out: &Path) -> PathBuf {
    let maturin = venv_bin("maturin", "maturin");
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut cmd = command(&maturin);
    // Not what `cargo test` set for this crate's tests (CARGO_PKG_NAME, CARGO_MANIFEST_DIR, …):
    // build scripts that watch them (ring's does) would run again, and everything above them
    // be rebuilt, whenever this test and a `maturin build` by hand take turns.
    for (name, _) in std::env::vars_os() {
        if name.to_str().is_some_and(set_by_cargo_for_crate) {
            cmd.env_remove(&name);
        }
    }
    cmd.current_dir(root)
        .env("CARGO_TARGET_DIR", root.join("target"))
        // maturin runs zig as `python3 -m ziglang`: the virtualenv's python first.
        .env("PATH", venv_path(&maturin))
        .args(["build", "--profile", "dev", "--strip", "--zig"])
        .args(["--compatibility", MANYLINUX, "--target"])
        .arg(host_triple())
        .arg("--out")
        .arg(out)
        // A first build compiles the dependencies once (about 2 minutes on 2 cores).
        .timeout(Duration::from_secs(1800));
    let run = run_cmd(&mut cmd);
    run.assert_success();
    let wheels: Vec<String> = file_names(out)
        .into_iter()
        .filter(|n| n.ends_with(".whl"))
        .collect();
    assert_eq!(wheels.len(), 1, "one wheel expected: {wheels:?}\n{run:?}");
    let name = &wheels[0];
    assert!(
        name.starts_with(&format!("dbkeep-{VERSION}-py3-none-{MANYLINUX}_")),
        "the wheel is not dbkeep {VERSION} for any Python on {MANYLINUX}: {name}"
    );
    out.join(name)
}

/// A fresh virtualenv at `dir` with `install` (pip's arguments: the wheel, and where else to
/// look) installed, nothing downloaded; returns its python.
pub(crate) fn venv_with(dir: &Path, install: &[&std::ffi::OsStr]) -> PathBuf {
    run_cmd(command(Path::new("python3")).args(["-m", "venv"]).arg(dir)).assert_success();
    let python = dir.join("bin/python");
    run_cmd(
        command(&python)
            .args([
                "-m",
                "pip",
                "install",
                "--quiet",
                "--disable-pip-version-check",
                "--no-index",
            ])
            .args(install),
    )
    .assert_success();
    python
}

#[test]
fn the_wheel_installs_dbkeep_and_python_m_dbkeep_runs_it() {
    let tmp = tempfile::Builder::new()
        .prefix("dbkeep-it-wheel-")
        .tempdir()
        .expect("create temp dir");
    let wheel = build_wheel(&tmp.path().join("wheels"));
    let python = venv_with(
        &tmp.path().join("venv"),
        &["--no-deps".as_ref(), wheel.as_os_str()],
    );
    let exe = tmp.path().join("venv/bin/dbkeep");
    assert!(exe.is_file(), "the wheel put no {}", exe.display());

    // The same binary, at the crate's version, three ways.
    let version_line = format!("dbkeep {VERSION}");
    let run = run_cmd(command(&exe).arg("--version"));
    run.assert_success();
    assert_eq!(run.stdout.trim(), version_line, "{run:?}");
    let run = run_cmd(command(&python).args(["-m", "dbkeep", "--version"]));
    run.assert_success();
    assert_eq!(run.stdout.trim(), version_line, "{run:?}");
    let run = run_cmd(command(&python).args([
        "-c",
        "import dbkeep; print(dbkeep.__version__); print(dbkeep.executable())",
    ]));
    run.assert_success();
    let lines: Vec<&str> = run.stdout.lines().collect();
    assert_eq!(lines.first(), Some(&VERSION), "{run:?}");
    assert_eq!(lines.get(1), Some(&exe.to_str().unwrap()), "{run:?}");

    // An error: the same exit code and message as the binary's (the installed one, and the
    // one the other tests run).
    let args = ["list", "--config", "/nonexistent.toml"];
    let direct = run_cmd(command(&exe).args(args));
    assert_ne!(direct.code, Some(0), "{direct:?}");
    assert!(direct.stderr.contains("/nonexistent.toml"), "{direct:?}");
    let via_python = run_cmd(command(&python).args(["-m", "dbkeep"]).args(args));
    let tested = run_cmd(command(Path::new(bin_path())).args(args));
    for other in [&via_python, &tested] {
        assert_eq!(
            (other.code, &other.stdout, &other.stderr),
            (direct.code, &direct.stdout, &direct.stderr),
            "python -m dbkeep / the binary disagree:\n{other:?}\nthe installed dbkeep:\n{direct:?}"
        );
    }

    // A real use: `python -m dbkeep --config … backup` backs up a SQLite database, and one
    // that cannot be backed up gives the binary's exit code 1.
    let sb = Sandbox::new();
    create_sample_sqlite(&sb.path().join("app.db"));
    sb.write_config("[[databases]]\nname = \"app\"\nurl = \"sqlite:app.db\"\n");
    let backup = |sb: &Sandbox| {
        run_cmd(
            command(&python)
                .current_dir(sb.path())
                .args(["-m", "dbkeep", "--config"])
                .arg(sb.config_path())
                .arg("backup"),
        )
    };
    let run = backup(&sb);
    run.assert_success();
    assert!(
        run.stdout
            .lines()
            .any(|l| l.starts_with("ok") && l.contains("app")),
        "{run:?}"
    );
    let rows = sb.rows_for("app");
    assert_eq!(rows.len(), 1, "{rows:#?}");
    let path = assert_success_row(&rows[0], "app", "sqlite");
    assert!(path.is_file(), "{} is missing", path.display());
    assert_eq!(
        rows[0]["sha256"].as_str(),
        Some(sha256sum(&path).as_str()),
        "{rows:#?}"
    );

    sb.write_config("[[databases]]\nname = \"ghost\"\nurl = \"sqlite:missing.db\"\n");
    let run = backup(&sb);
    run.assert_code(1);
    assert!(
        run.stdout
            .lines()
            .any(|l| l.starts_with("failed") && l.contains("ghost")),
        "{run:?}"
    );

    // Without its executable the package says so and exits 2.
    fs::remove_file(&exe).expect("remove the installed dbkeep");
    let run = run_cmd(command(&python).args(["-m", "dbkeep", "--version"]));
    run.assert_code(2);
    assert!(
        run.stderr.contains("executable") && run.stderr.contains(exe.to_str().unwrap()),
        "{run:?}"
    );
}

/// The libraries a manylinux wheel may take from the system: glibc's own.
const GLIBC_LIBRARIES: &[&str] = &[
    "libc.so.6",
    "libm.so.6",
    "libpthread.so.0",
    "libdl.so.2",
    "librt.so.1",
    "libgcc_s.so.1",
    "ld-linux-x86-64.so.2",
    "ld-linux-aarch64.so.1",
];

/// `auditwheel show`, the manylinux check PyPI's tooling runs, reads the built wheel's binary:
/// its platform tag is manylinux2014 (glibc 2.17) or older, and it links nothing but glibc.
#[test]
fn auditwheel_finds_the_wheel_manylinux2014_linking_only_glibc() {
    let tmp = tempfile::Builder::new()
        .prefix("dbkeep-it-auditwheel-")
        .tempdir()
        .expect("create temp dir");
    let wheel = build_wheel(&tmp.path().join("wheels"));
    let run = run_cmd(
        command(&venv_bin("auditwheel", "auditwheel"))
            .arg("show")
            .arg(&wheel),
    );
    run.assert_success();
    let text = run.stdout.split_whitespace().collect::<Vec<_>>().join(" ");
    let tag = text
        .split_once("is consistent with the following platform tag: \"")
        .and_then(|(_, rest)| rest.split_once('"'))
        .map(|(tag, _)| tag)
        .unwrap_or_else(|| panic!("no platform tag in auditwheel's report\n{run:?}"));
    let glibc_minor: u32 = tag
        .strip_prefix("manylinux_2_")
        .and_then(|rest| rest.strip_suffix(&format!("_{}", std::env::consts::ARCH)))
        .and_then(|minor| minor.parse().ok())
        .unwrap_or_else(|| panic!("{tag:?} is no manylinux tag for this machine\n{run:?}"));
    assert!(
        glibc_minor <= 17,
        "the wheel needs glibc 2.{glibc_minor}, newer than manylinux2014's 2.17\n{run:?}"
    );
    assert!(
        !text.contains("external shared libraries"),
        "the wheel needs libraries outside glibc\n{run:?}"
    );
    let libraries: Vec<&str> = text
        .split([' ', ',', '{', '}'])
        .filter(|word| word.starts_with("lib") && word.contains(".so"))
        .collect();
    assert!(
        libraries.contains(&"libc.so.6"),
        "auditwheel names no glibc library: is this its report?\n{run:?}"
    );
    for library in &libraries {
        assert!(
            GLIBC_LIBRARIES.contains(library),
            "the wheel links {library}, which is not glibc's\n{run:?}"
        );
    }
}
