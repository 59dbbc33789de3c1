//! The whole-history secret scan: old commits, deleted files, unmerged branches, and this
//! repository itself.

use super::*;

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
