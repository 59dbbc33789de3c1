//! Secrets and supply chain: the pre-commit hook, the history scan, the ignore rules,
//! `.env.example` and the CI wiring, each test named for the attack it repels.
//!
//! Every test works in its own throw-away git repository under the system temp directory. The
//! fake secrets are assembled at run time from pieces, so this file itself never holds text that
//! the secret patterns match (the hook and the history scan run on this repository too).

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicUsize, Ordering};

use anyhow::{Context, Result, bail, ensure};

/// The workspace root (the crate is `tests/`).
fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn read_root_file(name: &str) -> Result<String> {
    fs::read_to_string(root().join(name)).with_context(|| format!("reading {name}"))
}

/// A deterministic run of letters and digits, so fake keys look like real ones.
fn fake_body(len: usize, seed: u64) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let mut state = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
    (0..len)
        .map(|_| {
            state = state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            ALPHABET[((state >> 33) % ALPHABET.len() as u64) as usize] as char
        })
        .collect()
}

fn fake_hex(len: usize, seed: u64) -> String {
    fake_body(len * 2, seed)
        .bytes()
        .take(len)
        .map(|b| char::from(b"0123456789abcdef"[usize::from(b % 16)]))
        .collect()
}

/// A throw-away git repository, removed when dropped.
struct Scratch {
    dir: PathBuf,
}

impl Scratch {
    fn new(label: &str) -> Result<Self> {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "arian-supply-chain-{}-{}-{label}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir)?;
        let repo = Self { dir };
        repo.git(&["init", "-q", "-b", "main"])?;
        repo.git(&["config", "user.name", "Arian Supply Chain Test"])?;
        repo.git(&["config", "user.email", "supply-chain@arian.invalid"])?;
        repo.git(&["config", "commit.gpgsign", "false"])?;
        Ok(repo)
    }

    /// A repository with the project's hook installed by the documented command and one clean
    /// commit, so a refused commit can be told apart from an empty history.
    fn with_hook(label: &str) -> Result<Self> {
        let repo = Self::new(label)?;
        let hooks = repo.dir.join(".githooks");
        fs::create_dir_all(&hooks)?;
        for entry in fs::read_dir(root().join(".githooks"))? {
            let entry = entry?;
            fs::copy(entry.path(), hooks.join(entry.file_name()))?;
        }
        repo.git(&["config", "core.hooksPath", ".githooks"])?;
        repo.write("README.md", "# scratch\n")?;
        repo.git(&["add", "README.md"])?;
        let first = repo.commit("first")?;
        ensure!(
            first.status.success(),
            "a clean first commit was refused: {}",
            String::from_utf8_lossy(&first.stderr)
        );
        Ok(repo)
    }

    fn command(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut command = Command::new(program);
        command
            .current_dir(&self.dir)
            .env_remove("GIT_DIR")
            .env_remove("GIT_WORK_TREE")
            .env_remove("GIT_INDEX_FILE")
            .env("GIT_CONFIG_GLOBAL", "/dev/null")
            .env("GIT_CONFIG_NOSYSTEM", "1");
        command
    }

    fn try_git(&self, args: &[&str]) -> Result<Output> {
        self.command("git")
            .args(args)
            .output()
            .with_context(|| format!("running git {args:?}"))
    }

    fn git(&self, args: &[&str]) -> Result<String> {
        let out = self.try_git(args)?;
        if !out.status.success() {
            bail!(
                "git {args:?} failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
    }

    fn write(&self, path: &str, contents: &str) -> Result<()> {
        let path = self.dir.join(path);
        if let Some(parent) = path.parent() {
            fs::create_dir_all(parent)?;
        }
        fs::write(&path, contents).with_context(|| format!("writing {}", path.display()))
    }

    /// `git commit`, hook included; the caller judges the outcome.
    fn commit(&self, message: &str) -> Result<Output> {
        self.try_git(&["commit", "-q", "-m", message])
    }

    /// A commit that skips the hook, as an attacker or a hurried developer would.
    fn commit_unchecked(&self, message: &str) -> Result<String> {
        self.git(&["add", "-A", "-f"])?;
        self.git(&["commit", "-q", "--no-verify", "-m", message])?;
        self.git(&["rev-parse", "HEAD"])
    }

    fn head(&self) -> Result<String> {
        self.git(&["rev-parse", "HEAD"])
    }

    /// Runs the project's `.ci/secret-scan` on this repository.
    fn secret_scan(&self) -> Result<Output> {
        self.command(root().join(".ci/secret-scan"))
            .arg(&self.dir)
            .output()
            .context("running .ci/secret-scan")
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.dir);
    }
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Stages `path` holding `contents` and asserts the hook refuses the commit, naming the file (and
/// `line` when given), the pattern `rule`, and never printing `secret`.
fn assert_hook_refuses(
    path: &str,
    contents: &str,
    line: Option<usize>,
    rule: &str,
    secret: &str,
) -> Result<()> {
    let repo = Scratch::with_hook("refuse")?;
    let before = repo.head()?;
    repo.write(path, contents)?;
    repo.git(&["add", "-f", path])?;
    let out = repo.commit("try to commit a secret")?;
    let said = text(&out);
    ensure!(!out.status.success(), "the hook let {path} through: {said}");
    ensure!(repo.head()? == before, "a commit was made despite the hook");
    let place = match line {
        Some(n) => format!("{path}:{n}"),
        None => path.to_string(),
    };
    ensure!(
        said.contains(&format!("{place}: {rule}")),
        "the refusal does not name {place} and the pattern {rule:?}: {said}"
    );
    ensure!(
        secret.is_empty() || !said.contains(secret),
        "the refusal printed the secret itself: {said}"
    );
    Ok(())
}

/// A Rust source file with `secret` on its third line.
fn source_with(secret: &str) -> String {
    format!("// settings\nfn key() -> &'static str {{\n    \"{secret}\"\n}}\n")
}

#[test]
fn a_staged_env_file_is_blocked_by_the_pre_commit_hook() -> Result<()> {
    assert_hook_refuses(".env", "JWT_SECRET=local\n", None, "dotenv file", "")?;
    assert_hook_refuses(
        "deploy/.env.production",
        "LLM_API_KEY=x\n",
        None,
        "dotenv file",
        "",
    )
}

#[test]
fn a_staged_key_file_is_blocked_by_the_pre_commit_hook() -> Result<()> {
    assert_hook_refuses("tls/server.pem", "certificate\n", None, "PEM file", "")?;
    assert_hook_refuses("signing.key", "key\n", None, "key file", "")?;
    assert_hook_refuses("ops/id_ed25519", "key\n", None, "SSH private key file", "")
}

#[test]
fn a_staged_openai_key_is_blocked_by_the_pre_commit_hook() -> Result<()> {
    let legacy = ["sk", "-", &fake_body(48, 1)].concat();
    assert_hook_refuses(
        "src/llm.rs",
        &source_with(&legacy),
        Some(3),
        "OpenAI API key",
        &legacy,
    )?;
    let project = [
        "sk",
        "-proj-",
        &fake_body(40, 2),
        "_",
        &fake_body(40, 3),
        "-",
        &fake_body(30, 4),
    ]
    .concat();
    assert_hook_refuses(
        "notes.md",
        &format!("Key: {project}\n"),
        Some(1),
        "OpenAI API key",
        &project,
    )
}

#[test]
fn a_staged_openrouter_key_is_blocked_by_the_pre_commit_hook() -> Result<()> {
    let key = ["sk", "-or-", "v1-", &fake_hex(64, 5)].concat();
    assert_hook_refuses(
        "config/llm.toml",
        &format!("[llm]\nbase_url = \"x\"\napi_key = \"{key}\"\n"),
        Some(3),
        "OpenRouter API key",
        &key,
    )
}

#[test]
fn a_staged_google_api_key_is_blocked_by_the_pre_commit_hook() -> Result<()> {
    let key = ["AI", "za", &fake_body(35, 6)].concat();
    assert_hook_refuses(
        "web/app.js",
        &source_with(&key),
        Some(3),
        "Google API key",
        &key,
    )
}

#[test]
fn a_staged_langfuse_key_is_blocked_by_the_pre_commit_hook() -> Result<()> {
    let uuid = |seed| {
        let h = fake_hex(32, seed);
        format!(
            "{}-{}-{}-{}-{}",
            &h[..8],
            &h[8..12],
            &h[12..16],
            &h[16..20],
            &h[20..]
        )
    };
    let secret = ["sk", "-lf-", &uuid(7)].concat();
    assert_hook_refuses(
        "scripts/telemetry.sh",
        &format!("export LANGFUSE_SECRET_KEY={secret}\n"),
        Some(1),
        "Langfuse API key",
        &secret,
    )?;
    let public = ["pk", "-lf-", &uuid(8)].concat();
    assert_hook_refuses(
        "scripts/langfuse.sh",
        &format!("#!/bin/sh\nexport LANGFUSE_PUBLIC_KEY={public}\n"),
        Some(2),
        "Langfuse API key",
        &public,
    )
}

#[test]
fn a_staged_stack_auth_key_is_blocked_by_the_pre_commit_hook() -> Result<()> {
    let server = ["ss", "k_", &fake_body(48, 9).to_lowercase()].concat();
    assert_hook_refuses(
        "auth.ts",
        &source_with(&server),
        Some(3),
        "Stack Auth key",
        &server,
    )?;
    let client = ["pc", "k_", &fake_body(45, 10).to_lowercase()].concat();
    assert_hook_refuses(
        "client.ts",
        &source_with(&client),
        Some(3),
        "Stack Auth key",
        &client,
    )?;
    let value = fake_body(24, 11);
    assert_hook_refuses(
        "deploy.sh",
        &format!("STACK_SECRET_{}=\"{value}\"\n", "SERVER_KEY"),
        Some(1),
        "Stack Auth server key assignment",
        &value,
    )
}

#[test]
fn a_staged_neon_key_or_database_password_is_blocked_by_the_pre_commit_hook() -> Result<()> {
    let key = ["na", "pi_", &fake_body(64, 12).to_lowercase()].concat();
    assert_hook_refuses(
        "ops/neon.sh",
        &format!("curl -H \"Authorization: Bearer {key}\"\n"),
        Some(1),
        "Neon API key",
        &key,
    )?;
    let password = fake_body(16, 13);
    let url = [
        "postgres",
        "ql://arian_owner:",
        &password,
        "@ep-quiet-sky-a1b2c3.eu-central-1.aws.",
        "neon",
        ".tech/arian?sslmode=require",
    ]
    .concat();
    assert_hook_refuses(
        "docker-compose.override.yml",
        &format!("services:\n  api:\n    environment:\n      DATABASE_URL: {url}\n"),
        Some(4),
        "Neon database URL with password",
        &password,
    )
}

#[test]
fn a_staged_private_key_block_is_blocked_by_the_pre_commit_hook() -> Result<()> {
    for kind in ["RSA ", "EC ", "OPENSSH ", ""] {
        let block = format!(
            "{}{kind}{}\n{}\n{}{kind}{}\n",
            "-----BEGIN ",
            "PRIVATE KEY-----",
            fake_body(64, 14),
            "-----END ",
            "PRIVATE KEY-----"
        );
        assert_hook_refuses(
            "fixtures/signing.txt",
            &block,
            Some(1),
            "private key block",
            "",
        )?;
    }
    Ok(())
}

#[test]
fn a_secret_slipped_into_a_large_clean_change_is_blocked_by_the_pre_commit_hook() -> Result<()> {
    let repo = Scratch::with_hook("buried")?;
    let clean: String = (1..=200).map(|n| format!("let x{n} = {n};\n")).collect();
    repo.write("src/lib.rs", &clean)?;
    repo.git(&["add", "src/lib.rs"])?;
    ensure!(repo.commit("clean")?.status.success());
    let before = repo.head()?;
    let key = ["AI", "za", &fake_body(35, 15)].concat();
    let edited = clean.replace("let x150 = 150;\n", &format!("let k = \"{key}\";\n"));
    repo.write("src/lib.rs", &edited)?;
    repo.write("src/other.rs", "pub fn other() {}\n")?;
    repo.git(&["add", "src"])?;
    let out = repo.commit("edit")?;
    let said = text(&out);
    ensure!(
        !out.status.success(),
        "the hook let the key through: {said}"
    );
    ensure!(repo.head()? == before);
    ensure!(said.contains("src/lib.rs:150"), "wrong place: {said}");
    ensure!(!said.contains(&key), "the secret was printed: {said}");
    ensure!(
        !said.contains("src/other.rs"),
        "a clean file was blamed: {said}"
    );
    Ok(())
}

#[test]
fn a_clean_commit_passes_the_hook() -> Result<()> {
    let repo = Scratch::with_hook("clean")?;
    // Look-alikes that are not keys: short test values, words containing the prefixes, empty
    // assignments, local database URLs without a password, public key blocks.
    repo.write(
        "src/config.rs",
        &[
            "let key = \"sk-test\";\n",
            "let task = \"risk-assessment-of-the-negotiation-outcome\";\n",
            "STACK_SECRET_SERVER_KEY=\n",
            "DATABASE_URL=postgres://postgres@127.0.0.1:5432/arian\n",
            "-----BEGIN PUBLIC KEY-----\n",
            "let napi_version = 8;\n",
        ]
        .concat(),
    )?;
    repo.write(".env.example", &read_root_file(".env.example")?)?;
    repo.write("id_ed25519.pub", "ssh-ed25519 AAAA test\n")?;
    repo.git(&["add", "."])?;
    let before = repo.head()?;
    let out = repo.commit("clean change")?;
    ensure!(
        out.status.success(),
        "a clean commit was refused: {}",
        text(&out)
    );
    ensure!(repo.head()? != before);
    Ok(())
}

#[test]
fn a_fake_key_marked_arian_allow_secret_passes_the_hook_and_the_scan() -> Result<()> {
    let repo = Scratch::with_hook("allow")?;
    let fake = ["sk", "-proj-", &fake_body(48, 16)].concat();
    repo.write(
        "tests/fixture.rs",
        &format!("let fake = \"{fake}\"; // arian-allow-secret\n"),
    )?;
    repo.git(&["add", "tests"])?;
    let out = repo.commit("documented fake key")?;
    ensure!(
        out.status.success(),
        "the marked line was refused: {}",
        text(&out)
    );
    let scan = repo.secret_scan()?;
    ensure!(
        scan.status.success(),
        "the scan flagged the marked line: {}",
        text(&scan)
    );
    Ok(())
}

#[test]
fn no_environment_variable_lets_a_secret_through_the_hook() -> Result<()> {
    let repo = Scratch::with_hook("no-bypass")?;
    let key = ["sk", "-or-", "v1-", &fake_hex(64, 17)].concat();
    repo.write("a.txt", &format!("{key}\n"))?;
    repo.git(&["add", "a.txt"])?;
    let out = repo
        .command("git")
        .args(["commit", "-q", "-m", "bypass attempt"])
        .env("SKIP", "pre-commit")
        .env("ARIAN_ALLOW_SECRET", "1")
        .env("ARIAN_ALLOW_SECRETS", "1")
        .env("ALLOW_SECRETS", "1")
        .env("SECRET_PATTERNS_FILE", "/dev/null")
        .output()?;
    ensure!(
        !out.status.success(),
        "an environment variable switched the hook off: {}",
        text(&out)
    );
    Ok(())
}

#[test]
fn the_history_scan_finds_a_secret_buried_in_an_old_commit() -> Result<()> {
    let repo = Scratch::new("history")?;
    repo.write("README.md", "# project\n")?;
    repo.commit_unchecked("start")?;
    let key = ["AI", "za", &fake_body(35, 18)].concat();
    repo.write("src/maps.rs", &source_with(&key))?;
    let leaked = repo.commit_unchecked("add maps")?;
    repo.write(
        "src/maps.rs",
        "fn key() -> String { std::env::var(\"K\").unwrap() }\n",
    )?;
    repo.commit_unchecked("read the key from the environment instead")?;
    for n in 0..5 {
        repo.write("README.md", &format!("# project\nrevision {n}\n"))?;
        repo.commit_unchecked("later work")?;
    }
    let out = repo.secret_scan()?;
    let said = text(&out);
    ensure!(!out.status.success(), "the scan missed the old key: {said}");
    ensure!(
        said.contains(&leaked[..12]) && said.contains("src/maps.rs:3"),
        "the scan does not name commit and place: {said}"
    );
    ensure!(said.contains("Google API key"), "no pattern named: {said}");
    ensure!(!said.contains(&key), "the scan printed the secret: {said}");
    Ok(())
}

#[test]
fn the_history_scan_finds_a_dotenv_file_deleted_long_ago() -> Result<()> {
    let repo = Scratch::new("history-env")?;
    repo.write("README.md", "# project\n")?;
    repo.commit_unchecked("start")?;
    repo.write(".env", "JWT_SECRET=whatever\n")?;
    let leaked = repo.commit_unchecked("oops")?;
    repo.git(&["rm", "-q", "--cached", ".env"])?;
    fs::remove_file(repo.dir.join(".env"))?;
    repo.commit_unchecked("remove .env")?;
    let out = repo.secret_scan()?;
    let said = text(&out);
    ensure!(!out.status.success(), "the scan missed the .env: {said}");
    ensure!(
        said.contains(&leaked[..12]) && said.contains("dotenv file"),
        "{said}"
    );
    Ok(())
}

#[test]
fn the_history_scan_finds_a_secret_on_an_unmerged_branch() -> Result<()> {
    let repo = Scratch::new("history-branch")?;
    repo.write("README.md", "# project\n")?;
    repo.commit_unchecked("start")?;
    repo.git(&["checkout", "-q", "-b", "experiment"])?;
    let block = format!(
        "{}{}\n{}\n",
        "-----BEGIN OPENSSH ",
        "PRIVATE KEY-----",
        fake_body(70, 19)
    );
    repo.write("deploy/key.txt", &block)?;
    let leaked = repo.commit_unchecked("deploy key")?;
    repo.git(&["checkout", "-q", "main"])?;
    let out = repo.secret_scan()?;
    let said = text(&out);
    ensure!(
        !out.status.success(),
        "the scan missed the side branch: {said}"
    );
    ensure!(
        said.contains(&leaked[..12]) && said.contains("private key block"),
        "{said}"
    );
    Ok(())
}

#[test]
fn the_history_scan_passes_a_clean_history() -> Result<()> {
    let repo = Scratch::new("history-clean")?;
    repo.write(".env.example", &read_root_file(".env.example")?)?;
    repo.write("src/main.rs", "fn main() { let key = \"sk-test\"; }\n")?;
    repo.commit_unchecked("start")?;
    let out = repo.secret_scan()?;
    ensure!(
        out.status.success(),
        "a clean history failed: {}",
        text(&out)
    );
    Ok(())
}

#[test]
fn this_repository_history_holds_no_secret() -> Result<()> {
    let out = Command::new(root().join(".ci/secret-scan"))
        .env_remove("GIT_DIR")
        .env_remove("GIT_INDEX_FILE")
        .output()?;
    ensure!(
        out.status.success(),
        "the history of this repository holds a secret: {}",
        text(&out)
    );
    Ok(())
}

#[test]
fn env_and_key_files_are_ignored_by_git() -> Result<()> {
    let repo = Scratch::new("ignore")?;
    repo.write(".gitignore", &read_root_file(".gitignore")?)?;
    for path in [
        ".env",
        ".env.local",
        ".env.production",
        "api/.env",
        "server.pem",
        "tls/private.key",
        "keystore.p12",
        "id_rsa",
        "ops/id_ed25519",
    ] {
        let out = repo.try_git(&["check-ignore", "-q", "--no-index", path])?;
        ensure!(out.status.success(), "{path} is not ignored by .gitignore");
    }
    let out = repo.try_git(&["check-ignore", "-q", "--no-index", ".env.example"])?;
    ensure!(
        out.status.code() == Some(1),
        ".env.example is ignored, so the template could not be committed"
    );
    Ok(())
}

/// Every environment variable the binaries read: the lookups of the configuration
/// (`core/src/config.rs` and `core/src/config/`: a string literal in capitals as a call's first
/// argument, such as `var("JWT_SECRET")` or `number("MAX_ATTEMPTS", ...)`, outside tests) and
/// `env::var("NAME")` anywhere in the crates' sources.
fn variables_the_config_reads() -> Result<std::collections::BTreeSet<String>> {
    fn is_name(s: &str) -> bool {
        s.len() >= 3
            && s.starts_with(|c: char| c.is_ascii_uppercase())
            && s.chars()
                .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')
    }
    fn first_literal(after: &str) -> Option<&str> {
        let rest = after.trim_start().strip_prefix('"')?;
        rest.find('"').map(|end| &rest[..end])
    }
    fn non_test(source: &str) -> &str {
        source.split("#[cfg(test)]").next().unwrap_or(source)
    }
    let config = root().join("core/src/config");
    let mut names = std::collections::BTreeSet::new();
    let mut pending: Vec<PathBuf> = ["api/src", "core/src", "worker/src", "migration/src"]
        .iter()
        .map(|dir| root().join(dir))
        .collect();
    while let Some(path) = pending.pop() {
        if path.is_dir() {
            for entry in fs::read_dir(&path)? {
                pending.push(entry?.path());
            }
            continue;
        }
        if path.extension().is_none_or(|e| e != "rs") {
            continue;
        }
        let source = fs::read_to_string(&path)?;
        let body = non_test(&source);
        let calls: &[&str] = if path.starts_with(&config) || path == config.with_extension("rs") {
            &["("]
        } else {
            &["env::var(", "env::var_os("]
        };
        for call in calls {
            for (at, _) in body.match_indices(call) {
                if let Some(name) = first_literal(&body[at + call.len()..]).filter(|n| is_name(n)) {
                    names.insert(name.to_string());
                }
            }
        }
    }
    ensure!(
        names.contains("DATABASE_URL") && names.contains("JWT_SECRET"),
        "the config parser found too little ({names:?}); has core/src/config.rs changed shape?"
    );
    Ok(names)
}

/// `NAME=value` lines of `.env.example` (comments excluded).
fn env_example_assignments() -> Result<Vec<(String, String)>> {
    Ok(read_root_file(".env.example")?
        .lines()
        .map(str::trim)
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect())
}

#[test]
fn env_example_lists_every_variable_the_config_reads() -> Result<()> {
    let listed: std::collections::BTreeSet<String> = env_example_assignments()?
        .into_iter()
        .map(|(name, _)| name)
        .collect();
    let missing: Vec<String> = variables_the_config_reads()?
        .into_iter()
        .filter(|name| !listed.contains(name))
        .collect();
    ensure!(
        missing.is_empty(),
        ".env.example does not list {missing:?}; add each with a safe placeholder and a comment"
    );
    Ok(())
}

#[test]
fn env_example_holds_placeholders_not_secrets() -> Result<()> {
    for (name, value) in env_example_assignments()? {
        let secret = ["SECRET", "API_KEY", "PASSWORD", "TOKEN"]
            .iter()
            .any(|s| name.contains(s));
        ensure!(
            !secret || value.is_empty(),
            "{name} in .env.example has a value; secrets must be left empty there"
        );
        let userinfo = value
            .split_once("://")
            .and_then(|(_, rest)| rest.split_once('@'))
            .map(|(userinfo, _)| userinfo);
        ensure!(
            !userinfo.is_some_and(|u| u.contains(':')),
            "{name} in .env.example carries a password in its URL"
        );
    }
    // And the hook accepts it as it is.
    let repo = Scratch::with_hook("env-example")?;
    repo.write(".env.example", &read_root_file(".env.example")?)?;
    repo.git(&["add", ".env.example"])?;
    let out = repo.commit("template")?;
    ensure!(
        out.status.success(),
        "the hook refuses .env.example: {}",
        text(&out)
    );
    Ok(())
}

#[test]
fn the_hook_is_committed_executable_and_its_install_command_documented() -> Result<()> {
    for file in [
        ".githooks/pre-commit",
        ".githooks/secret-check",
        ".ci/secret-scan",
        ".ci/audit",
    ] {
        let mode = fs::metadata(root().join(file))
            .with_context(|| format!("{file} is missing"))?
            .permissions()
            .mode();
        ensure!(mode & 0o111 != 0, "{file} is not executable");
    }
    let hook = read_root_file(".githooks/pre-commit")?;
    ensure!(hook.lines().nth(1).is_some_and(|l| l.starts_with('#')));
    for doc in ["README.md", "SECURITY.md"] {
        ensure!(
            read_root_file(doc)?.contains("git config core.hooksPath .githooks"),
            "{doc} does not give the hook's install command"
        );
    }
    Ok(())
}

#[test]
fn ci_fails_the_build_on_leaked_secrets_and_vulnerable_or_unlicensed_dependencies() -> Result<()> {
    let workflow = read_root_file(".github/workflows/ci.yml")?;
    for needle in [
        "gitleaks/gitleaks-action",
        "fetch-depth: 0",
        ".ci/secret-scan",
        "EmbarkStudios/cargo-deny-action",
        "rustsec/audit-check",
    ] {
        ensure!(workflow.contains(needle), "ci.yml does not use {needle}");
    }
    let audit = read_root_file(".ci/audit")?;
    for needle in ["licenses", "bans", "sources", "advisories"] {
        ensure!(audit.contains(needle), ".ci/audit does not check {needle}");
    }
    let deny = read_root_file("deny.toml")?;
    for section in ["[advisories]", "[licenses]", "[bans]", "[sources]"] {
        ensure!(deny.contains(section), "deny.toml has no {section}");
    }
    ensure!(
        deny.contains("unknown-registry = \"deny\"") && deny.contains("unknown-git = \"deny\""),
        "deny.toml lets dependencies come from unknown registries or git repositories"
    );
    Ok(())
}

#[test]
fn security_md_explains_key_rotation_and_purging_a_leaked_secret() -> Result<()> {
    let doc = read_root_file("SECURITY.md")?;
    for needle in [
        "JWT_SECRET",
        "/api/api-keys",
        "git filter-repo",
        "arian-allow-secret",
        ".ci/secret-scan",
        "cargo deny",
    ] {
        ensure!(
            doc.contains(needle),
            "SECURITY.md does not mention {needle}"
        );
    }
    Ok(())
}
