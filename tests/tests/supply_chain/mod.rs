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

mod history;
mod hook;
mod repository_files;

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
