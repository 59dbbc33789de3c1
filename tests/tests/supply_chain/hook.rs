//! The pre-commit hook: every kind of staged secret is refused, clean commits pass, and
//! nothing but an inline marker lets a secret through.

use super::*;

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
