//! `Directory::suggest` (autocompletion) for `kind = "file"` — a CSV read from disk — and for
//! `kind = "webex"` against the Webex API double of `whereis-sim` on loopback.

use std::time::Duration;

use whereis_directory::{Directory, DirectoryConfig, DirectoryError, Entry, MAX_SUGGESTIONS};
use whereis_sim::WebexDouble;
use whereis_webex::{RetryPolicy, Token, WebexClient};

const PEOPLE: &str = "\
username,display_name,email,aliases
jdoe,Jane Doe,jane.doe@example.com,JD;Janie
jroe,Jane Roe,jane.roe@example.com,
jnowak,Janek Nowak,janek.nowak@example.com,
ajansen,Anna Jansen,anna.jansen@example.com,
jan,Yves Jan,yves.jan@example.com,
jdoerr,John Doerr,john.doerr@example.com,
jgarcia,José García,jose.garcia@example.com,Pepe
hlefevre,Hélène Lefèvre,hlf@example.com,
zangstrom,Zoë Ångström,z.a@example.com,
tstar,Tess Star,star*gazer@example.com,
";

/// The file directory of [`PEOPLE`], read from a CSV like a configured one.
async fn file_directory() -> (tempfile::TempDir, Directory) {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let path = dir.path().join("people.csv");
    std::fs::write(&path, PEOPLE).expect("the CSV is written");
    let directory = Directory::open(&DirectoryConfig::File { path }, None)
        .await
        .expect("the CSV is valid");
    (dir, directory)
}

#[tokio::test]
async fn file_suggestions_follow_a_reload() {
    let (dir, d) = file_directory().await;
    assert_eq!(usernames(&d, "kim", 10).await, Vec::<String>::new());
    let more = format!("{PEOPLE}kpark,Kim Park,kim.park@example.com,\n");
    std::fs::write(dir.path().join("people.csv"), more).expect("the CSV is rewritten");
    assert_eq!(d.reload().await.unwrap(), Some(11));
    assert_eq!(usernames(&d, "kim", 10).await, ["kpark"]);
    assert_eq!(usernames(&d, "park k", 10).await, ["kpark"]);
}

async fn usernames(directory: &Directory, query: &str, limit: usize) -> Vec<String> {
    directory
        .suggest(query, limit)
        .await
        .unwrap_or_else(|err| panic!("{query:?}: {err}"))
        .into_iter()
        .map(|e| e.username)
        .collect()
}

/// Asserts what each query suggests (at most 10), in order.
async fn expect(directory: &Directory, cases: &[(&str, &[&str])]) {
    for (query, want) in cases {
        assert_eq!(usernames(directory, query, 10).await, *want, "{query:?}");
    }
}

#[tokio::test]
async fn file_completes_name_prefixes_in_any_order() {
    let (_dir, d) = file_directory().await;
    expect(
        &d,
        &[
            ("ja", &["jdoe", "jroe", "jnowak", "ajansen", "jan"]),
            ("jane", &["jdoe", "jroe", "jnowak"]),
            ("jane d", &["jdoe"]),
            ("doe j", &["jdoe", "jdoerr"]),
            ("Doe, Jane", &["jdoe"]),
            ("j doe", &["jdoe", "jdoerr"]),
            ("nowak", &["jnowak"]),
            ("jani", &["jdoe"]),
            ("pep", &["jgarcia"]),
            ("jane x", &[]),
            ("nobody", &[]),
        ],
    )
    .await;
}

#[tokio::test]
async fn file_completes_usernames_and_emails() {
    let (_dir, d) = file_directory().await;
    expect(
        &d,
        &[
            ("jdo", &["jdoe", "jdoerr"]),
            ("JDOE", &["jdoe", "jdoerr"]),
            ("jane.d", &["jdoe"]),
            ("jane.doe@", &["jdoe"]),
            ("hlf@ex", &["hlefevre"]),
            ("Jane.Roe@Example.com", &["jroe"]),
            ("z.a", &["zangstrom"]),
        ],
    )
    .await;
}

#[tokio::test]
async fn file_ignores_case_and_accents() {
    let (_dir, d) = file_directory().await;
    expect(
        &d,
        &[
            ("jose", &["jgarcia"]),
            ("JOSÉ GAR", &["jgarcia"]),
            ("garcia", &["jgarcia"]),
            ("helene", &["hlefevre"]),
            ("lefev", &["hlefevre"]),
            ("LEFÈV", &["hlefevre"]),
            ("zoe ang", &["zangstrom"]),
            ("angst", &["zangstrom"]),
        ],
    )
    .await;
}

#[tokio::test]
async fn file_ranks_exact_identifiers_then_leading_names_then_the_rest() {
    let (_dir, d) = file_directory().await;
    // `jan` is Yves Jan's username; Jane, Jane and Janek start their names with it; Anna
    // Jansen only her last name.
    assert_eq!(
        usernames(&d, "jan", 10).await,
        ["jan", "jdoe", "jroe", "jnowak", "ajansen"]
    );
    assert_eq!(
        d.suggest("jan", 2).await.unwrap(),
        [
            Entry {
                username: "jan".into(),
                display_name: "Yves Jan".into(),
                email: Some("yves.jan@example.com".into()),
                ..Default::default()
            },
            Entry {
                username: "jdoe".into(),
                display_name: "Jane Doe".into(),
                email: Some("jane.doe@example.com".into()),
                ..Default::default()
            },
        ]
    );
    // An exact username comes first, the usernames it starts follow.
    assert_eq!(usernames(&d, "jdoe", 10).await, ["jdoe", "jdoerr"]);
    assert_eq!(
        usernames(&d, "john.doerr@example.com", 10).await,
        ["jdoerr"]
    );
}

#[tokio::test]
async fn file_limit_is_clamped() {
    let people = (0..40).map(|i| {
        (
            Entry {
                username: format!("s{i:02}"),
                display_name: format!("Sam Person{:02}", 39 - i),
                email: None,
                ..Default::default()
            },
            Vec::new(),
        )
    });
    let d = Directory::from_entries(people).unwrap();
    let five = usernames(&d, "sam", 5).await;
    assert_eq!(
        five,
        ["s39", "s38", "s37", "s36", "s35"],
        "ties by display name"
    );
    assert_eq!(usernames(&d, "sam", 0).await, ["s39"], "at least one");
    assert_eq!(usernames(&d, "sam", 1000).await.len(), MAX_SUGGESTIONS);
    assert_eq!(usernames(&d, "sam person0", 25).await.len(), 10);
}

#[tokio::test]
async fn file_short_queries_suggest_nothing_and_long_ones_are_refused() {
    let (_dir, d) = file_directory().await;
    for short in ["", " ", "j", "  j  ", "é", "\t*\n"] {
        assert_eq!(
            usernames(&d, short, 25).await,
            Vec::<String>::new(),
            "{short:?}"
        );
    }
    assert_eq!(usernames(&d, "jd", 25).await, ["jdoe", "jdoerr"]);
    let long = "j".repeat(300);
    match d.suggest(&long, 10).await {
        Err(DirectoryError::Invalid(message)) => assert!(message.contains("longer"), "{message}"),
        other => panic!("{other:?}"),
    }
    assert_eq!(
        d.suggest(&long, 10).await.unwrap_err(),
        d.resolve(&long).await.unwrap_err(),
        "the same error as resolve"
    );
    assert!(matches!(
        d.suggest("ja\u{0}", 10).await,
        Err(DirectoryError::Invalid(_))
    ));
}

#[tokio::test]
async fn file_hostile_characters_are_literal() {
    let (_dir, d) = file_directory().await;
    // Never wildcards or patterns: `*`, `(`, `\` only match themselves (in an identifier) or
    // separate words, as punctuation does in names.
    expect(
        &d,
        &[
            ("*", &[]),
            ("**", &[]),
            ("*)(uid=*", &[]),
            ("j*", &[]),
            ("*e", &[]),
            ("jdo*", &[]),
            ("j.*", &[]),
            (r"\2a", &[]),
            (r"j\", &[]),
            ("()", &[]),
            (".*", &[]),
            ("star*g", &["tstar"]),
            ("star*x", &[]),
            ("s*gazer", &[]),
            ("(jane) (d", &["jdoe"]),
        ],
    )
    .await;
}

// ---------------------------------------------------------------------------------------------
// kind = "webex": the API double searches display names by prefix, case-insensitively, without
// folding accents.

const TOKEN: &str = "suggest-test-token";

async fn webex_directory() -> (WebexDouble, Directory) {
    let double = WebexDouble::start(TOKEN, "whereis@webex.bot", "whereis")
        .await
        .expect("the double starts");
    for (email, name) in [
        ("jdoe@example.com", "Jane Doe"),
        ("jroe@example.com", "Jane Roe"),
        ("jnowak@example.com", "Janek Nowak"),
        ("jgarcia@example.com", "José García"),
        ("ajansen@example.com", "Anna Jansen"),
    ] {
        double.add_person(email, name);
    }
    for i in 0..30 {
        double.add_person(&format!("sam{i:02}@example.com"), &format!("Sam P{i:02}"));
    }
    let client = WebexClient::new(
        &double.base_url(),
        Token::new(TOKEN),
        RetryPolicy {
            max_attempts: 1,
            ..RetryPolicy::default()
        },
        Duration::from_secs(5),
    )
    .expect("a client");
    let directory = Directory::open(&DirectoryConfig::Webex, Some(client))
        .await
        .expect("a webex directory");
    (double, directory)
}

#[tokio::test]
async fn webex_completes_display_name_prefixes_with_one_call() {
    let (double, d) = webex_directory().await;
    let calls = || double.request_count("GET", "/v1/people");
    let before = calls();
    assert_eq!(usernames(&d, "jan", 10).await, ["jdoe", "jroe", "jnowak"]);
    assert_eq!(calls(), before + 1, "one People API call per keystroke");
    expect(
        &d,
        &[
            ("JANE D", &["jdoe"]),
            ("josé", &["jgarcia"]),
            ("JOSÉ GAR", &["jgarcia"]),
            ("anna", &["ajansen"]),
            ("nobody", &[]),
        ],
    )
    .await;
    let five = usernames(&d, "sam", 5).await;
    assert_eq!(five, ["sam00", "sam01", "sam02", "sam03", "sam04"]);
    assert_eq!(usernames(&d, "sam", 100).await.len(), MAX_SUGGESTIONS);
}

#[tokio::test]
async fn webex_finds_whole_emails_only_and_asks_nothing_for_fragments() {
    let (double, d) = webex_directory().await;
    let calls = || double.request_count("GET", "/v1/people");
    assert_eq!(
        d.suggest("JDOE@example.com", 10).await.unwrap(),
        [Entry {
            username: "jdoe".into(),
            display_name: "Jane Doe".into(),
            email: Some("jdoe@example.com".into()),
            ..Default::default()
        }]
    );
    let before = calls();
    for partial in ["jdoe@", "jdoe@exam", "j", "*", "*)(", "j*", "\\("] {
        assert_eq!(
            usernames(&d, partial, 10).await,
            Vec::<String>::new(),
            "{partial:?}"
        );
    }
    assert_eq!(calls(), before, "nothing worth asking");
    // Literal text: no wildcard.
    assert_eq!(usernames(&d, "ja*", 10).await, Vec::<String>::new());
    assert_eq!(
        usernames(&d, "jdo", 10).await,
        Vec::<String>::new(),
        "no username search"
    );
}
