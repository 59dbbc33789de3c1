//! The repository's own guards: ignore rules, `.env.example`, the committed hook, the CI wiring
//! and `SECURITY.md`.

use super::*;

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
/// `NAME=value` lines, and `# NAME=value` lines (listed but left unset by default).
fn env_example_assignments() -> Result<Vec<(String, String)>> {
    let is_name = |name: &str| {
        !name.is_empty()
            && name
                .chars()
                .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')
    };
    Ok(read_root_file(".env.example")?
        .lines()
        .map(str::trim)
        .map(|l| l.strip_prefix("# ").unwrap_or(l))
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.split_once('='))
        .filter(|(k, _)| is_name(k.trim()))
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
