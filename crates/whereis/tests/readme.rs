//! Every TOML block of the README and of the privacy pack (`docs/privacy.md`) is a configuration an
//! operator may copy: each must load as written (with the files and environment variables it names
//! provided), and so must what `whereis-bot init` prints.

mod common;

use std::path::Path;

use common::whereis;
use whereis::config::Config;

const README: &str = include_str!("../../../README.md");
const PRIVACY: &str = include_str!("../../../docs/privacy.md");

/// The ```toml blocks of a document, with the line each starts on.
fn toml_blocks(document: &str) -> Vec<(usize, String)> {
    let mut blocks = Vec::new();
    let mut current: Option<(usize, String)> = None;
    for (number, line) in document.lines().enumerate() {
        match &mut current {
            None if line.trim_start().starts_with("```toml") => {
                current = Some((number + 2, String::new()));
            }
            Some(_) if line.trim_start().starts_with("```") => {
                blocks.extend(current.take());
            }
            Some((_, text)) => {
                text.push_str(line);
                text.push('\n');
            }
            None => {}
        }
    }
    blocks
}

/// Creates every file a configuration names (secrets, CA bundles, the directory CSV).
fn provide_files(value: &toml::Value, dir: &Path) {
    match value {
        toml::Value::Table(table) => {
            for (key, value) in table {
                if let (true, Some(name)) =
                    (key.ends_with("_file") || key == "path", value.as_str())
                {
                    assert!(
                        Path::new(name).is_relative(),
                        "{key} = {name:?}: examples use paths relative to the configuration"
                    );
                    let file = dir.join(name);
                    std::fs::create_dir_all(file.parent().expect("a parent")).expect("dir");
                    let content = if key == "path" {
                        "username,display_name,email\njdoe,Jane Doe,jane.doe@example.com\n"
                    } else {
                        "a-secret\n"
                    };
                    std::fs::write(file, content).expect("write");
                }
                provide_files(value, dir);
            }
        }
        toml::Value::Array(items) => items.iter().for_each(|item| provide_files(item, dir)),
        _ => {}
    }
}

fn environment(name: &str) -> Option<String> {
    Some(if name.contains("STORE") {
        "postgres://whereis:secret@127.0.0.1/whereis".to_owned()
    } else {
        "a-secret".to_owned()
    })
}

#[test]
fn every_toml_block_of_the_readme_loads() {
    let blocks = toml_blocks(README);
    assert!(blocks.len() >= 5, "found {} TOML blocks", blocks.len());
    for (line, text) in blocks {
        load_example("README.md", line, text);
    }
}

#[test]
fn the_strict_configuration_of_the_privacy_pack_loads_as_described() {
    let blocks = toml_blocks(PRIVACY);
    assert_eq!(blocks.len(), 1, "docs/privacy.md has one configuration");
    for (line, text) in blocks {
        let config = load_example("docs/privacy.md", line, text);
        let privacy = &config.privacy;
        assert_eq!(privacy.consent, whereis::privacy::Consent::OptIn);
        assert_eq!(privacy.max_precision, whereis::privacy::Precision::Floor);
        assert_eq!(
            privacy.working_hours.map(|h| h.to_string()).as_deref(),
            Some("08:00-18:30 mon,tue,wed,thu,fri")
        );
        assert_eq!(privacy.timezone_name, "Europe/Zurich");
        assert!(privacy.notify_target);
    }
}

/// Loads one example (completed with a source when it has none), with the files and variables it
/// names provided; panics naming `document:line` when it does not load.
fn load_example(document: &str, line: usize, text: String) -> Config {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut text = text;
    // A block that shows other sections is completed with one source, the only required part.
    if !text.contains("[[sources]]") {
        text.push_str(
                "\n[[sources]]\nname = \"cmx\"\nkind = \"cmx\"\nurl = \"https://cmx.example.com\"\nusername = \"api\"\npassword_env = \"CMX_PASSWORD\"\n",
            );
    }
    let value: toml::Value =
        toml::from_str(&text).unwrap_or_else(|err| panic!("{document}:{line}: not TOML: {err}"));
    provide_files(&value, dir.path());
    let path = dir.path().join("whereis.toml");
    Config::parse(&text, &path, dir.path(), &environment)
        .unwrap_or_else(|err| panic!("{document}:{line}: the example does not load: {err}\n{text}"))
}

#[tokio::test(flavor = "multi_thread")]
async fn init_prints_a_starter_that_check_config_explains() {
    let out = whereis(&["init"]).await;
    assert_eq!(out.status.code(), Some(0));
    let starter = String::from_utf8(out.stdout).expect("UTF-8");
    assert!(starter.contains("[[sources]]"), "{starter}");
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("whereis.toml");
    std::fs::write(&path, &starter).expect("write");
    let out = whereis(&[
        "check-config",
        "--config",
        path.to_str().expect("UTF-8 path"),
    ])
    .await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("password_env: environment variable CMX_NORTH_PASSWORD is not set"),
        "{stderr}"
    );
    assert!(
        stderr.contains("whereis.toml:"),
        "names the file and line: {stderr}"
    );
}
