//! The Webex bot end to end over real HTTP: a signed webhook from the Webex double → the whereis
//! server → lookups on the simulated office → replies (with floor maps) recorded by the double.

mod common;

use whereis_floormap::MARKER_COLOR;
use whereis_sim::webex::MessagesFault;

use common::chat::{text, Chat, JANE};

fn has_marker(png: &[u8]) -> bool {
    let image = image::load_from_memory(png).expect("a PNG").to_rgb8();
    image.pixels().any(|p| p.0 == MARKER_COLOR)
}

#[tokio::test(flavor = "multi_thread")]
async fn direct_question_gets_an_acknowledgement_and_one_map_per_device() {
    let chat = Chat::start().await;
    let room = chat.webex.direct_room(JANE);
    let (_, status) = chat.say(&room, JANE, "whereis jdoe").await;
    assert_eq!(status, 200);
    let posts = chat.posts(4).await;
    assert_eq!(text(&posts[0]), "Looking for jdoe…");
    assert_eq!(text(&posts[1]), "jdoe has 2 devices:");
    assert!(
        text(&posts[2])
            .starts_with("jdoe is ASSOCIATED to CORP in Building 5 on Level 3 (HQ), seen 12 s ago"),
        "{}",
        text(&posts[2])
    );
    assert!(
        text(&posts[3]).contains("in Building 9 on Ground Floor"),
        "{}",
        text(&posts[3])
    );
    for post in &posts[2..4] {
        let file = post.file.as_ref().expect("a map is attached");
        assert_eq!(file.content_type, "image/png");
        assert!(has_marker(&file.bytes), "the map shows the marker");
        assert_eq!(post.room_id, room);
        assert_eq!(post.parent_id, None, "no threads in a direct room");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn group_mention_is_stripped_and_replies_are_threaded() {
    let chat = Chat::start().await;
    let room = chat.webex.group_room("Floor 3 team");
    // The double writes the mention as Webex does: "whereis cmse" with a <spark-mention> in html.
    let (id, status) = chat.say(&room, JANE, "cmse").await;
    assert_eq!(status, 200);
    let posts = chat.posts(2).await;
    assert_eq!(text(&posts[0]), "Looking for cmse…");
    assert!(
        text(&posts[1]).starts_with("cmse is ASSOCIATED to CORP in Building 9"),
        "{}",
        text(&posts[1])
    );
    for post in &posts {
        assert_eq!(post.parent_id.as_deref(), Some(id.as_str()));
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_wrong_signature_gets_401_and_nothing_happens() {
    let chat = Chat::start().await;
    let room = chat.webex.direct_room(JANE);
    let id = chat.webex.user_says(&room, JANE, "whereis jdoe");
    let body = chat.webex.event_body(&id);
    for secret in [Some("not-the-secret"), None] {
        let status = chat
            .webex
            .deliver(&chat.webhook_url, &body, secret)
            .await
            .unwrap();
        assert_eq!(status, 401);
    }
    let posts = chat.settle(&room, 0).await;
    assert_eq!(posts.len(), 1, "only the marker's answer: {posts:#?}");
    assert!(text(&posts[0]).contains("optout"));
    assert_eq!(
        chat.webex
            .request_count("GET", &format!("/v1/messages/{id}")),
        0
    );
    assert_eq!(chat.office.sim.server("cmx-a").unwrap().request_count(), 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_same_event_delivered_three_times_gets_one_answer() {
    let chat = Chat::start().await;
    let room = chat.webex.direct_room(JANE);
    let id = chat.webex.user_says(&room, JANE, "whereis cmse");
    for _ in 0..3 {
        assert_eq!(chat.deliver(&id).await, 200);
    }
    let posts = chat.settle(&room, 2).await;
    let looking = posts
        .iter()
        .filter(|p| text(p) == "Looking for cmse…")
        .count();
    assert_eq!(looking, 1, "{posts:#?}");
    assert_eq!(posts.len(), 3, "{posts:#?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn rate_limited_post_is_retried_after_the_wait() {
    let chat = Chat::start().await;
    chat.webex.fail_next_posts(
        MessagesFault::TooManyRequests {
            retry_after_seconds: 1,
        },
        1,
    );
    let room = chat.webex.direct_room(JANE);
    chat.say(&room, JANE, "whereis cmse").await;
    let posts = chat.posts(2).await;
    assert_eq!(text(&posts[0]), "Looking for cmse…");
    assert!(posts[1].file.is_some());
    assert_eq!(
        chat.webex.request_count("POST", "/v1/messages"),
        3,
        "one refused, two accepted"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn server_errors_on_posting_are_retried() {
    let chat = Chat::start().await;
    chat.webex
        .fail_next_posts(MessagesFault::ServerError(503), 2);
    let room = chat.webex.direct_room(JANE);
    chat.say(&room, JANE, "help").await;
    let posts = chat.posts(1).await;
    assert!(text(&posts[0]).contains("optout"));
}

#[tokio::test(flavor = "multi_thread")]
async fn the_bots_own_messages_are_ignored() {
    let chat = Chat::start().await;
    let room = chat.webex.group_room("ops");
    let bot = chat.webex.bot();
    let (_, status) = chat.say(&room, &bot.email, "whereis jdoe").await;
    assert_eq!(status, 200);
    let posts = chat.settle(&room, 0).await;
    assert_eq!(posts.len(), 1, "{posts:#?}");
    assert_eq!(chat.office.sim.server("cmx-a").unwrap().request_count(), 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn outsiders_are_refused_politely_and_nothing_is_looked_up() {
    let chat = Chat::start().await;
    let room = chat.webex.direct_room("mallory@elsewhere.org");
    chat.say(&room, "mallory@elsewhere.org", "whereis jdoe")
        .await;
    let posts = chat.posts(1).await;
    assert_eq!(
        text(&posts[0]),
        "Sorry, whereis is only available to people at example.com."
    );
    assert_eq!(chat.office.sim.server("cmx-a").unwrap().request_count(), 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn help_is_markdown_usage() {
    let chat = Chat::start().await;
    let room = chat.webex.direct_room(JANE);
    chat.say(&room, JANE, "help").await;
    let posts = chat.posts(1).await;
    let help = posts[0].markdown.clone().unwrap_or_default();
    for word in ["whereis jdoe", "optout", "optin", "stats", "floor plan"] {
        assert!(help.contains(word), "{word} missing from {help}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_full_name_asks_for_a_username() {
    let chat = Chat::start().await;
    let room = chat.webex.direct_room(JANE);
    chat.say(&room, JANE, "whereis Jane Doe").await;
    let posts = chat.posts(1).await;
    assert!(
        text(&posts[0]).contains("by username"),
        "{}",
        text(&posts[0])
    );
    assert_eq!(chat.office.sim.server("cmx-a").unwrap().request_count(), 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn unknown_person_gets_a_helpful_answer() {
    let chat = Chat::start().await;
    let room = chat.webex.direct_room(JANE);
    chat.say(&room, JANE, "whereis nobody").await;
    let posts = chat.posts(2).await;
    assert_eq!(text(&posts[0]), "Looking for nobody…");
    assert!(
        text(&posts[1]).starts_with("I could not find nobody"),
        "{}",
        text(&posts[1])
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failed_source_is_named_in_a_short_note() {
    let chat = Chat::start().await;
    chat.office
        .sim
        .server("mse-1")
        .unwrap()
        .set_fault(whereis_sim::Fault::Http500);
    let room = chat.webex.direct_room(JANE);
    chat.say(&room, JANE, "whereis jdoe").await;
    let posts = chat.posts(5).await;
    assert_eq!(
        text(&posts[4]),
        "Note: mse-1 did not answer: HTTP 500 Internal Server Error"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn opting_out_and_back_in() {
    let chat = Chat::start().await;
    let jdoe_room = chat.webex.direct_room("jdoe@example.com");
    chat.say(&jdoe_room, "jdoe@example.com", "optout").await;
    let posts = chat.posts(1).await;
    assert!(
        text(&posts[0]).starts_with("Done: jdoe will not be located"),
        "{}",
        text(&posts[0])
    );

    let room = chat.webex.direct_room(JANE);
    chat.say(&room, JANE, "whereis jdoe").await;
    let posts = chat.posts(2).await;
    assert_eq!(text(&posts[1]), "jdoe has opted out of whereis.");
    assert!(
        posts.iter().all(|p| p.file.is_none()),
        "no map for an opted-out person"
    );
    assert_eq!(chat.office.sim.server("cmx-a").unwrap().request_count(), 0);

    chat.say(&jdoe_room, "jdoe@example.com", "optin").await;
    chat.posts(3).await;
    chat.say(&room, JANE, "whereis jdoe").await;
    let posts = chat.posts(7).await;
    assert_eq!(text(&posts[3]), "Looking for jdoe…");
}

#[tokio::test(flavor = "multi_thread")]
async fn stats_are_for_admins() {
    let chat = Chat::start().await;
    let room = chat.webex.direct_room(JANE);
    chat.say(&room, JANE, "stats").await;
    let posts = chat.posts(1).await;
    assert_eq!(
        text(&posts[0]),
        "Sorry, stats are for the whereis administrators."
    );

    let admin_room = chat.webex.direct_room("it@example.com");
    chat.say(&admin_room, "it@example.com", "whereis cmse")
        .await;
    chat.posts(3).await;
    chat.say(&admin_room, "it@example.com", "stats").await;
    let posts = chat.posts(4).await;
    let stats = text(&posts[3]);
    assert!(
        stats.contains("lookups: 1") && stats.contains("found: 1"),
        "{stats}"
    );
    assert!(stats.contains("found by mse-1: 1"), "{stats}");
    assert!(stats.contains("people opted out: 0"), "{stats}");
}

#[tokio::test(flavor = "multi_thread")]
async fn without_a_secret_deliveries_are_not_checked() {
    let chat = Chat::start_with(common::chat::ChatOptions {
        secret: None,
        ..Default::default()
    })
    .await;
    let room = chat.webex.direct_room(JANE);
    let id = chat.webex.user_says(&room, JANE, "help");
    let body = chat.webex.event_body(&id);
    assert_eq!(
        chat.webex
            .deliver(&chat.webhook_url, &body, None)
            .await
            .unwrap(),
        200
    );
    chat.posts(1).await;
}
