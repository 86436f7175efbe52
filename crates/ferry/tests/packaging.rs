//! Packaging: man pages and shell completions generated from the command-line definition cover
//! every subcommand; the systemd unit in packaging/ passes `systemd-analyze verify` and keeps its
//! hardening.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::{ferry, tempdir, text, BIN};

/// Fails (never skips) when a tool the test drives is missing.
#[track_caller]
fn require(program: &str, package: &str) {
    let found = Command::new("sh")
        .args(["-c", &format!("command -v {program}")])
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(
        found,
        "`{program}` is not installed (Debian package {package}); run scripts/install-test-deps.sh"
    );
}

/// The subcommands `ferry … --help` lists under "Commands:", `help` left out.
fn listed_subcommands(path: &[String]) -> Vec<String> {
    let out = ferry(Path::new("."))
        .args(path)
        .arg("--help")
        .output()
        .expect("run ferry --help");
    assert!(out.status.success(), "{}", text(&out.stderr));
    let help = text(&out.stdout);
    let Some((_, commands)) = help.split_once("Commands:\n") else {
        return Vec::new();
    };
    commands
        .lines()
        .take_while(|l| l.starts_with("  "))
        .filter(|l| !l.starts_with("   ")) // wrapped description lines
        .filter_map(|l| l.split_whitespace().next())
        .map(|name| name.trim_end_matches(',').to_owned())
        .filter(|name| name != "help")
        .collect()
}

/// Every command path: ["serve"], ["user"], ["user", "add"], …
fn all_commands() -> Vec<Vec<String>> {
    let mut all = Vec::new();
    let mut todo = vec![Vec::new()];
    while let Some(path) = todo.pop() {
        for sub in listed_subcommands(&path) {
            let mut p = path.clone();
            p.push(sub);
            all.push(p.clone());
            todo.push(p);
        }
    }
    all
}

fn generate(what: &str, dir: &Path) -> Vec<PathBuf> {
    let out = ferry(Path::new("."))
        .args(["generate", what])
        .arg(dir)
        .output()
        .expect("run ferry generate");
    assert!(out.status.success(), "{}", text(&out.stderr));
    text(&out.stdout).lines().map(PathBuf::from).collect()
}

#[test]
fn man_pages_and_completions_cover_every_subcommand() {
    let commands = all_commands();
    for expected in [&["serve"][..], &["user", "add"], &["ban", "list"]] {
        assert!(
            commands.iter().any(|c| c == expected),
            "help does not list {expected:?}: {commands:?}"
        );
    }
    let d = tempdir();
    let man = d.path().join("man");
    let pages = generate("man", &man);
    assert!(pages.iter().all(|p| p.exists()), "{pages:?}");
    let top = std::fs::read_to_string(man.join("ferry.1")).expect("ferry.1");
    assert!(top.contains(".TH ferry 1"), "{top}");
    for path in &commands {
        let name = format!("ferry-{}.1", path.join("-"));
        let page = std::fs::read_to_string(man.join(&name))
            .unwrap_or_else(|e| panic!("no man page {name}: {e}; written: {pages:?}"));
        assert!(page.contains(".TH"), "{name} is not a man page");
        assert!(page.contains(".SH NAME"), "{name} has no NAME section");
    }
    for sub in commands.iter().filter(|c| c.len() == 1) {
        assert!(top.contains(&sub[0]), "ferry.1 does not mention {}", sub[0]);
    }
    // The hidden packaging command gets no page.
    assert!(!man.join("ferry-generate.1").exists());
    assert_eq!(pages.len(), commands.len() + 1, "{pages:?}");

    let comp = d.path().join("completions");
    let scripts = generate("completions", &comp);
    let names: Vec<String> = scripts
        .iter()
        .map(|p| p.file_name().expect("name").to_string_lossy().into_owned())
        .collect();
    for expected in ["ferry.bash", "_ferry", "ferry.fish", "ferry.elv", "_ferry.ps1"] {
        assert!(names.iter().any(|n| n == expected), "no {expected} in {names:?}");
    }
    for script in &scripts {
        let body = std::fs::read_to_string(script).expect("completion script");
        for path in &commands {
            let last = path.last().expect("name");
            assert!(
                body.contains(last.as_str()),
                "{} does not complete {path:?}",
                script.display()
            );
        }
    }
    // The bash script is valid bash.
    let bash = Command::new("bash")
        .arg("-n")
        .arg(comp.join("ferry.bash"))
        .output()
        .expect("bash -n");
    assert!(bash.status.success(), "{}", text(&bash.stderr));
}

fn unit_text() -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../packaging/ferry.service");
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// `systemd-analyze verify` on `unit` (with the installed binary path replaced by the built one, and
/// the generated man pages on MANPATH for `Documentation=`): (success, diagnostics).
fn verify(dir: &Path, unit: &str) -> (bool, String) {
    let units = dir.join("units");
    std::fs::create_dir_all(&units).expect("units dir");
    let file = units.join("ferry.service");
    std::fs::write(&file, unit.replace("/usr/local/bin/ferry", BIN)).expect("unit");
    let out = Command::new("systemd-analyze")
        .arg("verify")
        .arg(&file)
        .env("MANPATH", dir.join("share/man"))
        .output()
        .expect("run systemd-analyze");
    let diagnostics = format!("{}{}", text(&out.stdout), text(&out.stderr));
    (out.status.success() && diagnostics.trim().is_empty(), diagnostics)
}

#[test]
fn systemd_unit_passes_systemd_analyze_verify() {
    require("systemd-analyze", "systemd");
    let d = tempdir();
    generate("man", &d.path().join("share/man/man1"));
    let unit = unit_text();
    let (ok, diagnostics) = verify(d.path(), &unit);
    assert!(ok, "systemd-analyze verify: {diagnostics}");

    // The check sees mistakes: a misspelt setting and a bad value are reported.
    let broken = unit
        .replace("NoNewPrivileges=yes", "NoNewPrivileges=maybe")
        .replace("ProtectHome=yes", "ProtectHomes=yes");
    let (ok, diagnostics) = verify(d.path(), &broken);
    assert!(!ok, "a broken unit passed");
    assert!(
        diagnostics.contains("maybe") && diagnostics.contains("ProtectHomes"),
        "{diagnostics}"
    );
}

#[test]
fn systemd_unit_is_hardened() {
    let unit = unit_text();
    let settings: Vec<(&str, &str)> = unit
        .lines()
        .map(str::trim)
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.split_once('='))
        .collect();
    let value = |key: &str| -> Vec<&str> {
        settings
            .iter()
            .filter(|(k, _)| *k == key)
            .map(|(_, v)| *v)
            .collect()
    };
    assert_eq!(value("NoNewPrivileges"), ["yes"]);
    assert_eq!(value("ProtectSystem"), ["strict"]);
    assert_eq!(value("CapabilityBoundingSet"), ["CAP_NET_BIND_SERVICE"]);
    assert_eq!(value("AmbientCapabilities"), ["CAP_NET_BIND_SERVICE"]);
    assert_eq!(value("StateDirectory"), ["ferry"]);
    assert_eq!(value("WorkingDirectory"), ["/var/lib/ferry"]);
    assert_eq!(value("User"), ["ferry"]);
    // The served state is where the unit lets the service write.
    assert!(value("ExecStart")[0].contains("--data-dir /var/lib/ferry"));

    // systemd's own exposure score for the unit (lower is better; 10 is an unsandboxed service).
    require("systemd-analyze", "systemd");
    let d = tempdir();
    let file = d.path().join("ferry.service");
    std::fs::write(&file, unit.replace("/usr/local/bin/ferry", BIN)).expect("unit");
    let out = Command::new("systemd-analyze")
        .args(["security", "--offline=true", "--no-pager"])
        .arg(&file)
        .output()
        .expect("run systemd-analyze security");
    let report = text(&out.stdout);
    let score: f64 = report
        .lines()
        .find_map(|l| l.split_once("Overall exposure level for ferry.service: "))
        .and_then(|(_, rest)| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no exposure level in: {report}{}", text(&out.stderr)));
    assert!(score <= 2.0, "exposure {score}: {report}");
}
