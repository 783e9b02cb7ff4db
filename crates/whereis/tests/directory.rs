//! The corporate directory (`[directory]`) of every kind, on loopback only: the CSV file of
//! `tests/fixtures/people.csv`, a small Webex People API double, and a real OpenLDAP `slapd` started
//! per test in a temporary directory with `tests/fixtures/directory.ldif` (Debian packages `slapd`
//! and `ldap-utils`, installed by `.ci/slapd.sh`; without them the LDAP server tests are skipped
//! with a note, except under CI where they fail: `common::services`).

mod common;

use std::collections::HashMap;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{json, Value};
use whereis::directory::{
    Directory, DirectoryConfig, DirectoryError, Entry, LdapConfig, RawDirectory, Resolution,
};
use whereis_location::Secret;
use whereis_webex::{RetryPolicy, Token, WebexClient};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

fn entry(username: &str, display_name: &str, email: &str) -> Entry {
    Entry {
        username: username.into(),
        display_name: display_name.into(),
        email: Some(email.into()),
        ..Default::default()
    }
}

fn jdoe() -> Entry {
    entry("jdoe", "Jane Doe", "jane.doe@example.com")
}

fn jroe() -> Entry {
    entry("jroe", "Jane Roe", "jane.roe@example.com")
}

fn jgarcia() -> Entry {
    entry("jgarcia", "José García", "jose.garcia@example.com")
}

fn usernames(resolution: &Resolution) -> Vec<&str> {
    match resolution {
        Resolution::One(e) => vec![e.username.as_str()],
        Resolution::Several(es) => es.iter().map(|e| e.username.as_str()).collect(),
        Resolution::NoMatch => Vec::new(),
    }
}

/// Asserts that each query resolves to exactly these usernames (one → `One`, more → `Several`
/// in this order, none → `NoMatch`).
async fn expect(directory: &Directory, cases: &[(&str, &[&str])]) {
    for (query, want) in cases {
        let got = directory
            .resolve(query)
            .await
            .unwrap_or_else(|err| panic!("{query:?}: {err}"));
        assert_eq!(usernames(&got), *want, "{query:?} → {got:?}");
        match (want.len(), &got) {
            (0, Resolution::NoMatch) | (1, Resolution::One(_)) => {}
            (n, Resolution::Several(es)) if n > 1 && es.len() == n => {}
            _ => panic!("{query:?}: wrong kind of answer {got:?}"),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// kind = "file"

async fn file_directory() -> Directory {
    Directory::open(
        &DirectoryConfig::File {
            path: fixture("people.csv"),
        },
        None,
    )
    .await
    .unwrap()
}

async fn open_csv(
    text: &str,
) -> (
    tempfile::TempDir,
    PathBuf,
    Result<Directory, DirectoryError>,
) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("people.csv");
    std::fs::write(&path, text).unwrap();
    let opened = Directory::open(&DirectoryConfig::File { path: path.clone() }, None).await;
    (dir, path, opened)
}

#[tokio::test]
async fn file_resolves_usernames_emails_aliases_and_names() {
    let d = file_directory().await;
    assert_eq!(d.kind(), "file");
    assert_eq!(d.resolve("jdoe").await.unwrap(), Resolution::One(jdoe()));
    expect(
        &d,
        &[
            ("JDOE", &["jdoe"]),
            ("  jdoe  ", &["jdoe"]),
            ("Jane.Doe@Example.com", &["jdoe"]),
            ("janie", &["jdoe"]),
            ("JD", &["jdoe"]),
            ("pepe", &["jgarcia"]),
            ("Bobby Smith", &["rsmith"]),
            ("Jane Doe", &["jdoe"]),
            ("jane   doe", &["jdoe"]),
            ("Doe Jane", &["jdoe"]),
            ("doe, jane", &["jdoe"]),
            ("robert smith", &["rsmith"]),
            ("Smith, Robert", &["rsmith"]),
            ("ja ro", &["jroe"]),
            ("wong", &["bwong"]),
            ("bob", &["rsmith"]),
            ("bo", &["bwong", "rsmith"]),
        ],
    )
    .await;
}

#[tokio::test]
async fn file_is_accent_and_case_insensitive() {
    let d = file_directory().await;
    assert_eq!(
        d.resolve("jose garcia").await.unwrap(),
        Resolution::One(jgarcia())
    );
    expect(
        &d,
        &[
            ("JOSÉ GARCÍA", &["jgarcia"]),
            ("garcia jose", &["jgarcia"]),
            ("García", &["jgarcia"]),
            ("jose", &["jgarcia"]),
        ],
    )
    .await;
}

#[tokio::test]
async fn file_several_and_none() {
    let d = file_directory().await;
    assert_eq!(
        d.resolve("Jane").await.unwrap(),
        Resolution::Several(vec![jdoe(), jroe()])
    );
    expect(
        &d,
        &[
            ("smith", &["asmith", "rsmith"]),
            ("nobody", &[]),
            ("jane smith", &[]),
            ("jdoe2", &[]),
            ("*", &[]),
            ("nobody@example.com", &[]),
        ],
    )
    .await;
    assert!(matches!(
        d.resolve("   ").await,
        Err(DirectoryError::Invalid(_))
    ));
}

#[tokio::test]
async fn file_by_email() {
    let d = file_directory().await;
    assert_eq!(
        d.by_email("JANE.DOE@example.COM").await.unwrap(),
        Some(jdoe())
    );
    assert_eq!(d.by_email("nobody@example.com").await.unwrap(), None);
    assert!(matches!(
        d.by_email("jdoe").await,
        Err(DirectoryError::Invalid(_))
    ));
}

#[tokio::test]
async fn file_bad_rows_refuse_the_whole_file_naming_the_line() {
    let cases = [
        (
            "username,display_name,email\njdoe,Jane Doe,jane@example.com\njroe,\"Jane Roe,jroe@example.com\nasmith,Anna Smith,anna@example.com\n",
            "line 3",
        ),
        (
            "username,display_name,email,aliases\n# people\n\njdoe,Jane Doe,jane@example.com,JD\njroe,Jane Roe\n",
            "line 5",
        ),
        (
            "username,display_name,email\njdoe,Jane Doe,jane@example.com\njdoe,Jane Doe Again,jane2@example.com\n",
            "line 3",
        ),
        ("username,name,mail\njdoe,Jane Doe,jane@example.com\n", "line 1"),
    ];
    for (text, line) in cases {
        let (_dir, path, opened) = open_csv(text).await;
        match opened {
            Err(DirectoryError::Invalid(message)) => {
                assert!(message.contains(line), "{message:?} should name {line}");
                assert!(
                    message.contains(&path.display().to_string()),
                    "{message:?} should name the file"
                );
            }
            other => panic!("{text:?} was accepted: {other:?}"),
        }
    }
    let missing = Directory::open(
        &DirectoryConfig::File {
            path: "/nonexistent/people.csv".into(),
        },
        None,
    )
    .await;
    assert!(
        matches!(&missing, Err(DirectoryError::Invalid(m)) if m.contains("/nonexistent/people.csv")),
        "{missing:?}"
    );
}

#[tokio::test]
async fn file_tolerates_a_bom_and_windows_line_ends() {
    let (_dir, _path, opened) = open_csv(
        "\u{feff}username,display_name,email\r\njgarcia,José García,jose.garcia@example.com\r\n",
    )
    .await;
    let d = opened.unwrap();
    assert_eq!(
        d.resolve("jose garcia").await.unwrap(),
        Resolution::One(jgarcia())
    );
}

#[tokio::test]
async fn file_reload_is_all_or_nothing() {
    let (_dir, path, opened) =
        open_csv("username,display_name,email\njdoe,Jane Doe,jane.doe@example.com\n").await;
    let d = opened.unwrap();
    std::fs::write(
        &path,
        "username,display_name,email\njdoe,Jane Doe,jane.doe@example.com\njroe,Jane Roe,jane.roe@example.com\n",
    )
    .unwrap();
    assert_eq!(d.reload().await.unwrap(), Some(2));
    assert_eq!(
        usernames(&d.resolve("jane").await.unwrap()),
        ["jdoe", "jroe"]
    );
    std::fs::write(&path, "username,display_name,email\nbroken\n").unwrap();
    assert!(matches!(d.reload().await, Err(DirectoryError::Invalid(_))));
    assert_eq!(
        usernames(&d.resolve("jane").await.unwrap()),
        ["jdoe", "jroe"]
    );
}

#[test]
fn raw_directory_from_toml() {
    #[derive(serde::Deserialize)]
    struct Wrapper {
        directory: RawDirectory,
    }
    let raw: Wrapper = toml::from_str(
        "[directory]\nkind = \"ldap\"\nurl = \"ldap://ldap.example.com\"\nstarttls = true\n\
         base_dn = \"ou=people,dc=example,dc=com\"\nbind_dn = \"cn=whereis,dc=example,dc=com\"\n\
         bind_password_env = \"LDAP_PASSWORD\"\nusername_attribute = \"sAMAccountName\"\ntimeout_ms = 1500\n",
    )
    .unwrap();
    let env = |name: &str| (name == "LDAP_PASSWORD").then(|| "pw-value".to_string());
    match raw
        .directory
        .resolve(Path::new("/etc/whereis"), &env)
        .unwrap()
    {
        DirectoryConfig::Ldap(c) => {
            assert!(c.starttls);
            assert_eq!(c.username_attribute, "sAMAccountName");
            assert_eq!(c.timeout, Duration::from_millis(1500));
            assert_eq!(c.bind_password.unwrap().expose(), "pw-value");
        }
        other => panic!("{other:?}"),
    }
    let unknown = toml::from_str::<Wrapper>("[directory]\nkind = \"file\"\nfile = \"x.csv\"\n");
    assert!(unknown.is_err());
}

// ---------------------------------------------------------------------------------------------
// kind = "webex": a People API double that, like Webex, searches display names by prefix (of the
// name or of one of its words), case-insensitively but without folding accents.

#[derive(Clone, Default)]
struct PeopleApi {
    people: Arc<Vec<Value>>,
    asked: Arc<Mutex<Vec<String>>>,
}

async fn people_route(
    State(api): State<PeopleApi>,
    headers: HeaderMap,
    Query(params): Query<HashMap<String, String>>,
) -> Response {
    if headers.get("authorization").and_then(|v| v.to_str().ok()) != Some("Bearer test-token") {
        return (StatusCode::UNAUTHORIZED, Json(json!({"message": "no"}))).into_response();
    }
    let items: Vec<Value> = if let Some(email) = params.get("email") {
        api.asked.lock().unwrap().push(format!("email={email}"));
        api.people
            .iter()
            .filter(|p| {
                p["emails"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|e| e.as_str().unwrap().eq_ignore_ascii_case(email))
            })
            .cloned()
            .collect()
    } else if let Some(name) = params.get("displayName") {
        api.asked.lock().unwrap().push(name.clone());
        if name == "boom" {
            return (
                StatusCode::INTERNAL_SERVER_ERROR,
                Json(json!({"message": "the people service is down"})),
            )
                .into_response();
        }
        let name = name.to_lowercase();
        let max: usize = params
            .get("max")
            .and_then(|m| m.parse().ok())
            .unwrap_or(100);
        api.people
            .iter()
            .filter(|p| {
                let display = match p["displayName"].as_str() {
                    Some(name) => name.to_lowercase(),
                    None => format!("{} {}", p["firstName"], p["lastName"])
                        .replace('"', "")
                        .to_lowercase(),
                };
                display.starts_with(&name) || display.split(' ').any(|word| word.starts_with(&name))
            })
            .take(max)
            .cloned()
            .collect()
    } else {
        return (StatusCode::BAD_REQUEST, Json(json!({"message": "?"}))).into_response();
    };
    Json(json!({ "items": items })).into_response()
}

async fn webex_directory() -> (Directory, PeopleApi) {
    let person = |id: &str, email: &str, name: &str| json!({"id": id, "emails": [email], "displayName": name, "orgId": "org"});
    let api = PeopleApi {
        people: Arc::new(vec![
            person("p1", "jdoe@example.com", "Jane Doe"),
            person("p2", "jroe@example.com", "Jane Roe"),
            person("p3", "jgarcia@example.com", "José García"),
            json!({"id": "p4", "emails": ["asmith@example.com"], "firstName": "Anna", "lastName": "Smith"}),
            json!({"id": "p5", "emails": [], "displayName": "Jane Nomail"}),
        ]),
        asked: Arc::default(),
    };
    let app = Router::new()
        .route("/v1/people", get(people_route))
        .with_state(api.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    let client = WebexClient::new(
        &format!("http://{addr}/v1"),
        Token::new("test-token"),
        RetryPolicy {
            max_attempts: 1,
            ..RetryPolicy::default()
        },
        Duration::from_secs(5),
    )
    .unwrap();
    let directory = Directory::open(&DirectoryConfig::Webex, Some(client))
        .await
        .unwrap();
    (directory, api)
}

#[tokio::test]
async fn webex_people_api() {
    let (d, api) = webex_directory().await;
    assert_eq!(d.kind(), "webex");
    assert_eq!(
        d.resolve("Jane Doe").await.unwrap(),
        Resolution::One(entry("jdoe", "Jane Doe", "jdoe@example.com"))
    );
    assert_eq!(
        d.resolve("jane").await.unwrap(),
        Resolution::Several(vec![
            entry("jdoe", "Jane Doe", "jdoe@example.com"),
            entry("jroe", "Jane Roe", "jroe@example.com"),
        ])
    );
    assert_eq!(
        d.resolve("jose garcia").await.unwrap(),
        Resolution::One(entry("jgarcia", "José García", "jgarcia@example.com"))
    );
    expect(
        &d,
        &[
            ("JROE@example.com", &["jroe"]),
            ("anna smith", &["asmith"]),
            ("García", &["jgarcia"]),
            ("nobody", &[]),
        ],
    )
    .await;
    assert_eq!(
        d.by_email("JDOE@EXAMPLE.COM").await.unwrap(),
        Some(entry("jdoe", "Jane Doe", "jdoe@example.com"))
    );
    assert_eq!(d.by_email("nobody@example.com").await.unwrap(), None);
    let asked = api.asked.lock().unwrap().clone();
    assert!(asked.len() < 30, "too many People API calls: {asked:?}");
}

#[tokio::test]
async fn webex_failure_is_unavailable() {
    let (d, _) = webex_directory().await;
    match d.resolve("boom").await {
        Err(DirectoryError::Unavailable(message)) => {
            assert!(message.contains("people service is down"), "{message}");
            assert!(!message.contains("test-token"), "{message}");
        }
        other => panic!("{other:?}"),
    }
    let without_client = Directory::open(&DirectoryConfig::Webex, None).await;
    assert!(matches!(without_client, Err(DirectoryError::Invalid(_))));
}

// ---------------------------------------------------------------------------------------------
// kind = "ldap": failures that need no server.

fn ldap_config(url: &str) -> LdapConfig {
    LdapConfig {
        url: url.into(),
        starttls: false,
        ca_file: None,
        bind_dn: Some(BIND_DN.into()),
        bind_password: Some(Secret::new(BIND_PASSWORD)),
        base_dn: "ou=people,dc=example,dc=com".into(),
        username_attribute: "uid".into(),
        team_attribute: None,
        timezone_attribute: None,
        timeout: Duration::from_secs(2),
    }
}

async fn ldap_directory(config: LdapConfig) -> Directory {
    Directory::open(&DirectoryConfig::Ldap(config), None)
        .await
        .unwrap()
}

#[tokio::test]
async fn ldap_unreachable_is_unavailable_quickly() {
    // Nothing listens: refused at once.
    let port = free_port();
    let d = ldap_directory(ldap_config(&format!("ldap://127.0.0.1:{port}"))).await;
    let started = Instant::now();
    match d.resolve("jdoe").await {
        Err(DirectoryError::Unavailable(message)) => {
            assert!(message.contains(&format!("127.0.0.1:{port}")), "{message}");
            assert!(!message.contains(BIND_PASSWORD), "{message}");
        }
        other => panic!("{other:?}"),
    }
    assert!(started.elapsed() < Duration::from_secs(2));

    // Accepts connections and never answers: the timeout.
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = silent.local_addr().unwrap();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = silent.accept().await {
            held.push(socket);
        }
    });
    let d = ldap_directory(LdapConfig {
        timeout: Duration::from_millis(300),
        ..ldap_config(&format!("ldap://{addr}"))
    })
    .await;
    let started = Instant::now();
    for result in [
        d.resolve("jdoe").await,
        d.check().await.map(|()| Resolution::NoMatch),
    ] {
        match result {
            Err(DirectoryError::Unavailable(message)) => {
                assert!(message.contains("within"), "{message}")
            }
            other => panic!("{other:?}"),
        }
    }
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
}

// ---------------------------------------------------------------------------------------------
// kind = "ldap" against a real OpenLDAP slapd.

const SUFFIX: &str = "dc=example,dc=com";
const BIND_DN: &str = "cn=whereis,ou=services,dc=example,dc=com";
/// The bind account's password (its `userPassword` in `directory.ldif`).
const BIND_PASSWORD: &str = "bind-secret";

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Certificates for a TLS-enabled slapd: a test CA and a server certificate for 127.0.0.1.
struct Pki {
    ca_pem: String,
    cert_pem: String,
    key_pem: String,
}

fn pki() -> Pki {
    use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair};
    let ca_key = KeyPair::generate().unwrap();
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.distinguished_name
        .push(DnType::CommonName, "whereis LDAP test CA");
    let ca_cert = ca.self_signed(&ca_key).unwrap();
    let key = KeyPair::generate().unwrap();
    let mut leaf =
        CertificateParams::new(vec!["127.0.0.1".to_owned(), "localhost".to_owned()]).unwrap();
    leaf.distinguished_name
        .push(DnType::CommonName, "127.0.0.1");
    let cert = leaf.signed_by(&key, &ca_cert, &ca_key).unwrap();
    Pki {
        ca_pem: ca_cert.pem(),
        cert_pem: cert.pem(),
        key_pem: key.serialize_pem(),
    }
}

/// A slapd on loopback with the fixture directory, in its own temporary directory. Dropping it
/// stops the server; so does the end of the test process, however it ends (the wrapper shell
/// kills slapd when its stdin — a pipe from this process — closes).
struct Slapd {
    /// `ldap://127.0.0.1:PORT`.
    url: String,
    /// `ldaps://127.0.0.1:PORT` when started with TLS.
    ldaps_url: Option<String>,
    /// The test CA (PEM file) when started with TLS.
    ca_file: Option<PathBuf>,
    dir: tempfile::TempDir,
    stdin: Option<ChildStdin>,
    child: Child,
}

impl Slapd {
    /// Starts slapd (with TLS when `tls`), or `None` when it is not installed outside CI.
    async fn start(tls: bool) -> Option<Slapd> {
        let common::services::SlapdPrograms { slapd, slapadd } = common::services::slapd()?;
        let started = Instant::now();
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("db");
        std::fs::create_dir(&db).unwrap();
        let schema = ["/etc/ldap/schema", "/etc/openldap/schema"]
            .map(Path::new)
            .into_iter()
            .find(|d| d.join("inetorgperson.schema").is_file())
            .expect("OpenLDAP schema files (core, cosine, inetorgperson) not found");
        let mut conf = String::new();
        for name in ["core", "cosine", "inetorgperson"] {
            conf.push_str(&format!("include {}/{name}.schema\n", schema.display()));
        }
        for modules in ["/usr/lib/ldap", "/usr/lib64/openldap", "/usr/lib/openldap"] {
            if Path::new(modules).join("back_mdb.so").exists() {
                conf.push_str(&format!("modulepath {modules}\nmoduleload back_mdb\n"));
                break;
            }
        }
        conf.push_str(&format!(
            "pidfile {dir}/slapd.pid\nargsfile {dir}/slapd.args\n",
            dir = dir.path().display()
        ));
        let mut ca_file = None;
        if tls {
            let pki = pki();
            for (name, pem) in [
                ("ca.pem", &pki.ca_pem),
                ("cert.pem", &pki.cert_pem),
                ("key.pem", &pki.key_pem),
            ] {
                std::fs::write(dir.path().join(name), pem).unwrap();
            }
            conf.push_str(&format!(
                "TLSCACertificateFile {d}/ca.pem\nTLSCertificateFile {d}/cert.pem\n\
                 TLSCertificateKeyFile {d}/key.pem\n",
                d = dir.path().display()
            ));
            ca_file = Some(dir.path().join("ca.pem"));
        }
        conf.push_str(&format!(
            "database mdb\nmaxsize 16777216\nsuffix \"{SUFFIX}\"\nrootdn \"cn=admin,{SUFFIX}\"\n\
             rootpw admin-secret\ndirectory {}\n",
            db.display()
        ));
        let conf_path = dir.path().join("slapd.conf");
        std::fs::write(&conf_path, conf).unwrap();

        let added = Command::new(&slapadd)
            .arg("-q")
            .arg("-f")
            .arg(&conf_path)
            .arg("-l")
            .arg(fixture("directory.ldif"))
            .output()
            .unwrap();
        assert!(
            added.status.success(),
            "slapadd failed: {}",
            String::from_utf8_lossy(&added.stderr)
        );

        let port = free_port();
        let url = format!("ldap://127.0.0.1:{port}");
        let mut urls = format!("{url}/");
        let ldaps_url = tls.then(|| format!("ldaps://127.0.0.1:{}", free_port()));
        if let Some(ldaps) = &ldaps_url {
            urls.push_str(&format!(" {ldaps}/"));
        }
        let log = File::create(dir.path().join("slapd.log")).unwrap();
        let mut child = Command::new("sh")
            .arg("-c")
            .arg(
                // slapd in the foreground (-d 0); a watcher kills it once fd 3 (this process's
                // pipe) reaches end of file, i.e. when the guard drops or this process dies.
                r#"exec 3<&0
"$SLAPD" -h "$URLS" -f "$CONF" -d 0 &
pid=$!
( cat <&3 >/dev/null; kill "$pid" 2>/dev/null ) &
wait "$pid""#,
            )
            .env("SLAPD", &slapd)
            .env("URLS", &urls)
            .env("CONF", &conf_path)
            .stdin(Stdio::piped())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap();
        let stdin = child.stdin.take();
        let mut server = Slapd {
            url,
            ldaps_url,
            ca_file,
            dir,
            stdin,
            child,
        };
        server.wait_until_ready().await;
        eprintln!("slapd ready in {:?}", started.elapsed());
        Some(server)
    }

    /// Retries a bind until slapd accepts it (bounded), failing with slapd's log if it exits.
    async fn wait_until_ready(&mut self) {
        let probe = ldap_directory(LdapConfig {
            timeout: Duration::from_millis(500),
            ..ldap_config(&self.url)
        })
        .await;
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let outcome = probe.check().await;
            if outcome.is_ok() {
                return;
            }
            if let Some(status) = self.child.try_wait().unwrap() {
                panic!("slapd exited ({status}) before answering:\n{}", self.log());
            }
            if Instant::now() > deadline {
                panic!(
                    "slapd did not accept a bind in 20 s ({outcome:?}):\n{}",
                    self.log()
                );
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("slapd.log")).unwrap_or_default()
    }

    fn config(&self) -> LdapConfig {
        ldap_config(&self.url)
    }
}

impl Drop for Slapd {
    fn drop(&mut self) {
        // Closing the pipe makes the wrapper kill slapd; wait for it (bounded), then insist.
        drop(self.stdin.take());
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test]
async fn ldap_resolves_names_with_accents_and_two_matches() {
    let Some(server) = Slapd::start(false).await else {
        return;
    };
    let d = ldap_directory(server.config()).await;
    assert_eq!(d.kind(), "ldap");
    d.check().await.unwrap();
    assert_eq!(
        d.resolve("jose garcia").await.unwrap(),
        Resolution::One(jgarcia())
    );
    assert_eq!(
        d.resolve("Jane").await.unwrap(),
        Resolution::Several(vec![jdoe(), jroe()])
    );
    expect(
        &d,
        &[
            ("jdoe", &["jdoe"]),
            ("JROE", &["jroe"]),
            ("jane.roe@EXAMPLE.com", &["jroe"]),
            ("Jane Doe", &["jdoe"]),
            ("doe jane", &["jdoe"]),
            ("janie", &["jdoe"]),
            ("JOSÉ GARCÍA", &["jgarcia"]),
            ("garcia", &["jgarcia"]),
            ("helene lefevre", &["hlefevre"]),
            ("Hélène", &["hlefevre"]),
            ("lefev", &["hlefevre"]),
            ("angst", &["zangstrom"]),
            ("zoe angstrom", &["zangstrom"]),
            ("anna smith", &["asmith"]),
            ("nobody", &[]),
            ("jane smith", &[]),
        ],
    )
    .await;
    assert_eq!(
        d.by_email("JANE.DOE@example.com").await.unwrap(),
        Some(jdoe())
    );
    assert_eq!(d.by_email("nobody@example.com").await.unwrap(), None);

    // Anonymous binds work too (the default OpenLDAP access rules let anyone read).
    let anonymous = ldap_directory(LdapConfig {
        bind_dn: None,
        bind_password: None,
        ..server.config()
    })
    .await;
    assert_eq!(
        anonymous.resolve("Jane Roe").await.unwrap(),
        Resolution::One(jroe())
    );
}

#[tokio::test]
async fn ldap_filter_injection_finds_nothing() {
    let Some(server) = Slapd::start(false).await else {
        return;
    };
    let d = ldap_directory(server.config()).await;
    for query in [
        "*)(uid=*",
        "*",
        "*)(objectClass=*",
        "jdoe)(|(uid=*",
        "jdoe*",
        "*)(|(mail=*",
        r"\2a",
        "(",
        ")(",
    ] {
        let got = d
            .resolve(query)
            .await
            .unwrap_or_else(|err| panic!("{query:?}: {err}"));
        assert_eq!(got, Resolution::NoMatch, "{query:?}");
    }
    assert_eq!(d.by_email("*@*").await.unwrap(), None);
    assert_eq!(d.by_email("*)(uid=*@x").await.unwrap(), None);
}

async fn suggested(directory: &Directory, query: &str, limit: usize) -> Vec<String> {
    directory
        .suggest(query, limit)
        .await
        .unwrap_or_else(|err| panic!("{query:?}: {err}"))
        .into_iter()
        .map(|e| e.username)
        .collect()
}

#[tokio::test]
async fn ldap_suggests_name_username_and_email_prefixes() {
    let Some(server) = Slapd::start(false).await else {
        return;
    };
    let d = ldap_directory(server.config()).await;
    assert_eq!(
        d.suggest("ja", 10).await.unwrap(),
        [jdoe(), jroe()],
        "Jane Doe (also cn Janie), Jane Roe"
    );
    for (query, want) in [
        ("jane d", &["jdoe"][..]),
        ("doe j", &["jdoe"]),
        ("DOE, JA", &["jdoe"]),
        ("jani", &["jdoe"]),
        ("jdo", &["jdoe"]),
        ("JROE", &["jroe"]),
        ("jane.r", &["jroe"]),
        ("jane.roe@EXAMPLE.com", &["jroe"]),
        ("hlf@", &["hlefevre"]),
        ("josé", &["jgarcia"]),
        ("GARCÍA", &["jgarcia"]),
        ("lefè", &["hlefevre"]),
        ("ÅNG", &["zangstrom"]),
        ("zoë å", &["zangstrom"]),
        ("anna smi", &["asmith"]),
        ("bo", &["bwong"]),
        ("j", &[]),
        ("jane x", &[]),
        ("nobody", &[]),
    ] {
        assert_eq!(suggested(&d, query, 10).await, want, "{query:?}");
    }
    // The size limit is the number wanted; a server stopping there is a normal, partial answer.
    let one = suggested(&d, "ja", 1).await;
    assert!(one == ["jdoe"] || one == ["jroe"], "{one:?}");
    assert_eq!(suggested(&d, "ja", 0).await.len(), 1);
    match d.suggest(&"j".repeat(300), 10).await {
        Err(DirectoryError::Invalid(message)) => assert!(message.contains("longer"), "{message}"),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn ldap_suggest_treats_filter_characters_literally() {
    let Some(server) = Slapd::start(false).await else {
        return;
    };
    let d = ldap_directory(server.config()).await;
    for query in [
        "**",
        "*)(uid=*",
        "*)(objectClass=*",
        "jdoe)(|(uid=*",
        "j*",
        "jdoe*",
        "*e",
        "*)(|(mail=*",
        "*@*",
        r"\2a",
        r"j\",
        "()",
        ")(",
    ] {
        assert_eq!(
            suggested(&d, query, 25).await,
            Vec::<String>::new(),
            "{query:?}"
        );
    }
}

#[tokio::test]
async fn ldap_wrong_password_or_base_is_unavailable_without_the_password() {
    let Some(server) = Slapd::start(false).await else {
        return;
    };
    let wrong = "wrong-password-1234";
    let d = ldap_directory(LdapConfig {
        bind_password: Some(Secret::new(wrong)),
        ..server.config()
    })
    .await;
    for result in [
        d.check().await.map(|()| Resolution::NoMatch),
        d.resolve("jdoe").await,
    ] {
        match result {
            Err(DirectoryError::Unavailable(message)) => {
                assert!(message.contains("invalid credentials"), "{message}");
                assert!(message.contains(BIND_DN), "{message}");
                assert!(!message.contains(wrong), "{message}");
                assert!(!format!("{d:?}").contains(wrong));
            }
            other => panic!("{other:?}"),
        }
    }
    let d = ldap_directory(LdapConfig {
        base_dn: "ou=nobody,dc=example,dc=com".into(),
        ..server.config()
    })
    .await;
    match d.resolve("jdoe").await {
        Err(DirectoryError::Unavailable(message)) => {
            assert!(message.contains("does not exist"), "{message}")
        }
        other => panic!("{other:?}"),
    }
}

/// `check-config` binds and searches; a refused bind is named without the password, and lookups by
/// username still work while the directory refuses whereis.
#[tokio::test(flavor = "multi_thread")]
async fn check_config_binds_and_searches_and_a_refused_bind_degrades() {
    let Some(server) = Slapd::start(false).await else {
        return;
    };
    let office = common::Office::start().await;
    let config_with = |file: &str, password: &str| {
        std::fs::write(office.dir.path().join(format!("{file}.pw")), password).unwrap();
        let lookup = format!(
            "{}\n\n[directory]\nkind = \"ldap\"\nurl = {:?}\nbase_dn = \"ou=people,dc=example,dc=com\"\nbind_dn = {BIND_DN:?}\nbind_password_file = \"{file}.pw\"\n",
            common::VARIANTS_AND_TIMEOUTS,
            server.url
        );
        office.config(file, &lookup, &office.all_sources())
    };
    let good = config_with("good.toml", BIND_PASSWORD);
    let out = common::whereis(&["check-config", "--config", common::path_str(&good)]).await;
    let report = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{report}");
    assert!(
        report.contains("directory") && report.contains("ldap (bound and searched)"),
        "{report}"
    );

    let wrong = "refused-pw-8812";
    let bad = config_with("bad.toml", wrong);
    let out = common::whereis(&["check-config", "--config", common::path_str(&bad)]).await;
    let report = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{report}");
    let line = report
        .lines()
        .find(|l| l.contains("directory"))
        .unwrap_or_default();
    assert!(
        line.contains("FAIL") && line.contains("invalid credentials"),
        "{report}"
    );
    assert!(line.contains(BIND_DN), "{report}");
    assert!(!report.contains(wrong), "{report}");

    let (code, doc) = common::find_json("asmith", &bad).await;
    assert_eq!(code, 0, "{doc:#}");
    assert!(
        doc["directory_error"]
            .as_str()
            .is_some_and(|e| e.contains("invalid credentials") && !e.contains(wrong)),
        "{doc:#}"
    );
}

#[tokio::test]
async fn ldap_over_tls_and_starttls_with_a_ca_file() {
    let Some(server) = Slapd::start(true).await else {
        return;
    };
    let ldaps = server.ldaps_url.clone().unwrap();
    let secure = ldap_directory(LdapConfig {
        ca_file: server.ca_file.clone(),
        ..ldap_config(&ldaps)
    })
    .await;
    assert_eq!(
        secure.resolve("Jane Doe").await.unwrap(),
        Resolution::One(jdoe())
    );
    let starttls = ldap_directory(LdapConfig {
        starttls: true,
        ca_file: server.ca_file.clone(),
        ..server.config()
    })
    .await;
    assert_eq!(
        starttls.resolve("jose garcia").await.unwrap(),
        Resolution::One(jgarcia())
    );
    // Without the CA the server's certificate is not trusted.
    let untrusted = ldap_directory(ldap_config(&ldaps)).await;
    match untrusted.resolve("jdoe").await {
        Err(DirectoryError::Unavailable(message)) => {
            assert!(message.contains("TLS"), "{message}")
        }
        other => panic!("{other:?}"),
    }
}
