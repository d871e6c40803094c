//! Shell completions and manual pages, generated from the same definitions as `--help`: bash
//! completes subcommands and options for real; each command has a page that `man` renders.

use crate::common::*;

/// Every command and subcommand `dbkeep --help` (and each `… --help`) lists, as `a b`.
fn commands(sandbox: &Sandbox, under: &[&str]) -> Vec<String> {
    let mut args: Vec<&str> = under.to_vec();
    args.push("--help");
    let help = sandbox.run(&args);
    help.assert_success();
    let mut found = Vec::new();
    let listed = help
        .stdout
        .split("Commands:\n")
        .nth(1)
        .map(|rest| rest.split("\n\n").next().unwrap_or_default().to_string())
        .unwrap_or_default();
    for line in listed.lines() {
        let Some(name) = line.split_whitespace().next() else {
            continue;
        };
        // A command's line; a description's continuation is indented further.
        if name == "help" || !line.starts_with("  ") || line.starts_with("   ") {
            continue;
        }
        let mut path: Vec<&str> = under.to_vec();
        path.push(name);
        found.push(path.join(" "));
        found.extend(commands(sandbox, &path));
    }
    found
}

#[test]
fn bash_completes_commands_and_options_from_the_same_definitions_as_help() {
    let sandbox = Sandbox::new();
    let run = sandbox.run(&["completions", "bash"]);
    run.assert_success();
    let script = sandbox.path().join("dbkeep.bash");
    std::fs::write(&script, &run.stdout).unwrap();
    // Bash itself asks the completion function, as a TAB would.
    let complete = |line: &str| {
        let words: Vec<&str> = line.split(' ').collect();
        let out = bash(&format!(
            "source '{}'\nCOMP_WORDS=({})\nCOMP_CWORD={}\nCOMP_LINE='{line}'\nCOMP_POINT=${{#COMP_LINE}}\n_dbkeep dbkeep '{}' '{}'\nprintf '%s\\n' \"${{COMPREPLY[@]}}\"",
            script.display(),
            words
                .iter()
                .map(|w| format!("'{w}'"))
                .collect::<Vec<_>>()
                .join(" "),
            words.len() - 1,
            words.last().unwrap(),
            words.get(words.len().saturating_sub(2)).unwrap(),
        ));
        String::from_utf8(out).unwrap()
    };
    let subcommands = complete("dbkeep re");
    assert!(subcommands.lines().any(|l| l == "restore"), "{subcommands}");
    let options = complete("dbkeep restore --");
    for want in [
        "--to",
        "--create",
        "--force",
        "--password-env",
        "--identity",
    ] {
        assert!(options.lines().any(|l| l == want), "{want}: {options}");
    }
    let shells = complete("dbkeep completions ");
    let named: Vec<&str> = shells.lines().filter(|l| !l.starts_with('-')).collect();
    assert_eq!(named, ["bash", "zsh", "fish"], "{shells}");
    // zsh and fish name every command too.
    let all = commands(&sandbox, &[]);
    assert!(all.len() > 25, "{all:?}");
    for shell in ["zsh", "fish"] {
        let run = sandbox.run(&["completions", shell]);
        run.assert_success();
        for command in &all {
            let last = command.rsplit(' ').next().unwrap();
            assert!(run.stdout.contains(last), "{shell} lacks {command}");
        }
    }
    // A shell that is not one is a usage error naming the choices.
    let run = sandbox.run(&["completions", "tcsh"]);
    run.assert_code(2);
    assert!(run.stderr.contains("bash, zsh, fish"), "{run:?}");
    // A reader that goes away is no crash.
    let out = bash(&format!(
        "'{}' completions bash | head -c 10 >/dev/null; echo \"${{PIPESTATUS[0]}}\"",
        bin_path()
    ));
    assert_eq!(String::from_utf8(out).unwrap().trim(), "0");
}

#[test]
fn man_writes_a_page_per_command_that_man_renders() {
    let sandbox = Sandbox::new();
    let dir = sandbox.path().join("man1");
    std::fs::create_dir(&dir).unwrap();
    let run = sandbox.run(&["man", "--dir", &dir.display().to_string()]);
    run.assert_success();
    let mut pages = file_names(&dir);
    pages.sort();
    let mut want: Vec<String> = std::iter::once("dbkeep.1".to_string())
        .chain(
            commands(&sandbox, &[])
                .iter()
                .map(|c| format!("dbkeep-{}.1", c.replace(' ', "-"))),
        )
        .collect();
    want.sort();
    assert_eq!(pages, want);
    // `man` renders them: the restore page says what --help says.
    let page = dir.join("dbkeep-restore.1");
    let text = bash(&format!(
        "MANWIDTH=100 man -l '{}' 2>&1 | col -b",
        page.display()
    ));
    let text = String::from_utf8(text)
        .unwrap()
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    assert!(
        text.contains("dbkeep-restore - Restore a backup into a SQLite file, a PostgreSQL or a"),
        "{text}"
    );
    assert!(text.contains("--password-env"), "{text}");
    // Without --dir, the main page goes to standard output.
    let run = sandbox.run(&["man"]);
    run.assert_success();
    assert!(
        run.stdout.starts_with(".ie"),
        "{}",
        &run.stdout[..run.stdout.len().min(200)]
    );
    assert!(run.stdout.contains(".TH dbkeep 1"), "not a man page");
    let run = sandbox.run(&["man", "--dir", "no/such/folder"]);
    run.assert_code(2);
    assert!(
        run.stderr.contains("--dir no/such/folder: not a folder"),
        "{run:?}"
    );
}
