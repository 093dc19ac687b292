//! The build script of both gateway binaries (`shells/tokio`, `shells/smol`): records the commit
//! they are built from, for `--version` (`wsv2_shell::version!`): `WSV2_BUILD_COMMIT` when the
//! builder sets it (a source tarball, a packager), else `git rev-parse HEAD` of the checkout,
//! else `unknown`. Cargo reruns this when the checked-out commit changes (HEAD, the branch's
//! ref, packed refs), never on every edit.

use std::process::Command;

fn git(args: &[&str]) -> Option<String> {
    let out = Command::new("git").args(args).output().ok()?;
    if !out.status.success() {
        return None;
    }
    let text = String::from_utf8(out.stdout).ok()?;
    let text = text.trim();
    (!text.is_empty()).then(|| text.to_owned())
}

fn main() {
    println!("cargo:rerun-if-env-changed=WSV2_BUILD_COMMIT");
    let commit = std::env::var("WSV2_BUILD_COMMIT")
        .ok()
        .filter(|c| !c.trim().is_empty())
        .or_else(|| {
            for path in ["HEAD", "packed-refs"] {
                if let Some(p) = git(&["rev-parse", "--git-path", path]) {
                    println!("cargo:rerun-if-changed={p}");
                }
            }
            if let Some(branch) = git(&["symbolic-ref", "-q", "HEAD"])
                && let Some(p) = git(&["rev-parse", "--git-path", &branch])
            {
                println!("cargo:rerun-if-changed={p}");
            }
            git(&["rev-parse", "HEAD"])
        })
        .unwrap_or_else(|| "unknown".to_owned());
    println!("cargo:rustc-env=WSV2_BUILD_COMMIT={}", commit.trim());
}
