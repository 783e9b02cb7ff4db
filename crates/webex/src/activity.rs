//! What the websocket delivers: envelopes around conversation activities, and the way from an
//! activity to the REST message id that `GET /messages/{id}` takes.
//!
//! Frames are parsed from loose JSON: unknown fields and event types are tolerated, fields of the
//! wrong type read as missing, and a frame that is not a JSON object is an error for that frame
//! alone — never a panic.

use std::time::Duration;

use base64::Engine;
use chrono::{DateTime, Utc};
use reqwest::Url;
use serde::Deserialize;
use serde_json::Value;

use crate::client::{decode, WebexClient};
use crate::error::WebexError;
use crate::origin::is_trusted;
use crate::retry::RetryPolicy;
use crate::types::parse_time;

/// The event type of message activities.
pub const CONVERSATION_ACTIVITY: &str = "conversation.activity";
/// The verb of a posted message.
pub const VERB_POST: &str = "post";
/// The target tag of a direct (one-to-one) space.
pub const TAG_ONE_ON_ONE: &str = "ONE_ON_ONE";

/// One frame from the websocket.
#[derive(Debug, Clone, PartialEq)]
pub struct Envelope {
    /// The envelope's id (what an `ack` names).
    pub id: Option<String>,
    /// `data.eventType`, e.g. `conversation.activity`.
    pub event_type: Option<String>,
    /// `data.activity`, when it has at least an id and a verb.
    pub activity: Option<Activity>,
}

/// A conversation activity (`data.activity`): a post, a share, an acknowledgement, …
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Activity {
    /// The activity's id; for a post, the message's UUID.
    pub id: String,
    /// `post`, `share`, `update`, `acknowledge`, `delete`, `cardAction`, …
    pub verb: String,
    /// Who did it.
    pub actor: Actor,
    /// Where (the conversation).
    pub target: Target,
    /// Ids of the people the object @mentions (UUIDs).
    pub mentions: Vec<String>,
    /// When it happened; `None` when missing or not a valid timestamp.
    pub published: Option<DateTime<Utc>>,
}

/// `activity.actor`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Actor {
    /// The person's UUID.
    pub id: Option<String>,
    /// `emailAddress`.
    pub email: Option<String>,
    /// `displayName`.
    pub display_name: Option<String>,
    /// `type`: `PERSON`, `BOT`, …
    pub kind: Option<String>,
}

/// `activity.target`: the conversation.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Target {
    /// The conversation's UUID.
    pub id: Option<String>,
    /// The conversation's URL on the conversation service.
    pub url: Option<String>,
    /// `ONE_ON_ONE` for a direct space, among others.
    pub tags: Vec<String>,
}

impl Activity {
    /// A message was posted.
    pub fn is_post(&self) -> bool {
        self.verb == VERB_POST
    }

    /// It happened in a direct (one-to-one) space.
    pub fn is_one_on_one(&self) -> bool {
        self.target.tags.iter().any(|tag| tag == TAG_ONE_ON_ONE)
    }
}

impl Envelope {
    /// The activity when this is a message posted (`conversation.activity` with verb `post`).
    pub fn post(&self) -> Option<&Activity> {
        if self.event_type.as_deref() != Some(CONVERSATION_ACTIVITY) {
            return None;
        }
        self.activity.as_ref().filter(|activity| activity.is_post())
    }
}

/// Parses one frame's payload (UTF-8 JSON, from a text or a binary frame).
pub fn parse_envelope(frame: &[u8]) -> Result<Envelope, WebexError> {
    let value: Value = serde_json::from_slice(frame)
        .map_err(|err| WebexError::Decode(format!("websocket frame: {err}")))?;
    let Value::Object(root) = value else {
        return Err(WebexError::Decode(
            "websocket frame: not a JSON object".into(),
        ));
    };
    let data = root.get("data");
    Ok(Envelope {
        id: text(root.get("id")),
        event_type: text(data.and_then(|d| d.get("eventType"))),
        activity: data.and_then(|d| d.get("activity")).and_then(activity),
    })
}

fn activity(value: &Value) -> Option<Activity> {
    let id = text(value.get("id"))?;
    let verb = text(value.get("verb"))?;
    let actor = value.get("actor");
    let target = value.get("target");
    let mentions = value
        .get("object")
        .and_then(|object| object.get("mentions"))
        .and_then(|mentions| mentions.get("items"))
        .and_then(Value::as_array)
        .map(|items| {
            items
                .iter()
                .filter_map(|item| text(item.get("id")))
                .collect()
        })
        .unwrap_or_default();
    Some(Activity {
        id,
        verb,
        actor: Actor {
            id: text(actor.and_then(|a| a.get("id"))),
            email: text(actor.and_then(|a| a.get("emailAddress"))),
            display_name: text(actor.and_then(|a| a.get("displayName"))),
            kind: text(actor.and_then(|a| a.get("type"))),
        },
        target: Target {
            id: text(target.and_then(|t| t.get("id"))),
            url: text(target.and_then(|t| t.get("url"))),
            tags: target
                .and_then(|t| t.get("tags"))
                .and_then(Value::as_array)
                .map(|tags| tags.iter().filter_map(|tag| text(Some(tag))).collect())
                .unwrap_or_default(),
        },
        mentions,
        published: value
            .get("published")
            .and_then(Value::as_str)
            .and_then(parse_time),
    })
}

/// A non-empty string value.
fn text(value: Option<&Value>) -> Option<String> {
    value
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
}

/// The REST id of the message with this UUID in the US cluster: base64 (standard alphabet, padded)
/// of `ciscospark://us/MESSAGE/{uuid}`.
pub fn fallback_message_id(activity_id: &str) -> String {
    base64::engine::general_purpose::STANDARD
        .encode(format!("ciscospark://us/MESSAGE/{activity_id}"))
}

/// The REST id from a person id or any REST id: the UUID after the last `/` of its base64 text
/// (`ciscospark://us/PEOPLE/{uuid}`), or `None` when it is not such an id.
pub(crate) fn uuid_of_rest_id(rest_id: &str) -> Option<String> {
    let trimmed = rest_id.trim().trim_end_matches('=');
    let bytes = base64::engine::general_purpose::STANDARD_NO_PAD
        .decode(trimmed)
        .or_else(|_| base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(trimmed))
        .ok()?;
    let text = String::from_utf8(bytes).ok()?;
    let rest = text.strip_prefix("ciscospark://")?;
    rest.rsplit('/')
        .next()
        .filter(|uuid| !uuid.is_empty())
        .map(str::to_owned)
}

/// The conversation service's message URL for a post: `target.url` with its trailing
/// `conversations/{target.id}` replaced by `messages/{activity.id}`.
fn conversation_message_url(activity: &Activity) -> Option<Url> {
    let target_url = activity.target.url.as_deref()?;
    let target_id = activity.target.id.as_deref()?;
    // The id goes into a path: only UUID-like text.
    let safe =
        |id: &str| !id.is_empty() && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-');
    if !safe(&activity.id) || !safe(target_id) {
        return None;
    }
    let url = Url::parse(target_url).ok()?;
    if url.query().is_some() || url.fragment().is_some() {
        return None;
    }
    let suffix = format!("conversations/{target_id}");
    let path = url.path().trim_end_matches('/');
    let prefix = path.strip_suffix(&suffix)?;
    if !prefix.ends_with('/') {
        return None;
    }
    let mut resolved = url.clone();
    resolved.set_path(&format!("{prefix}messages/{}", activity.id));
    Some(resolved)
}

#[derive(Deserialize)]
struct ConversationMessage {
    #[serde(default)]
    id: Option<String>,
}

/// How long one conversation look-up may take before the fallback id is used.
const LOOKUP_TIMEOUT: Duration = Duration::from_secs(10);

/// The REST message id of a post: asked from the conversation service named by `target.url` (which
/// knows the message's cluster), else [`fallback_message_id`].
///
/// The token goes with that request only when `target.url` is on a trusted origin: the API base's,
/// one of `also_trusted` (the device service, the websocket), or a Webex domain over https.
pub async fn resolve_message_id(
    client: &WebexClient,
    activity: &Activity,
    also_trusted: &[Url],
) -> String {
    match lookup_message_id(client, activity, also_trusted).await {
        Ok(id) => id,
        Err(why) => {
            tracing::debug!(
                activity = activity.id.as_str(),
                why = why.as_str(),
                "using the fallback message id"
            );
            fallback_message_id(&activity.id)
        }
    }
}

async fn lookup_message_id(
    client: &WebexClient,
    activity: &Activity,
    also_trusted: &[Url],
) -> Result<String, String> {
    const OP: &str = "GET conversation messages/{id}";
    let url = conversation_message_url(activity).ok_or("target.url is not a conversation URL")?;
    let mut trusted: Vec<&Url> = also_trusted.iter().collect();
    trusted.push(client.base_url());
    if !is_trusted(&url, &trusted) {
        tracing::warn!(
            origin = url.origin().ascii_serialization(),
            "a websocket frame names a conversation on an untrusted host; not sending the token there"
        );
        return Err("untrusted conversation host".into());
    }
    // One attempt: the fallback is good enough when the conversation service is slow or down.
    let policy = RetryPolicy {
        max_attempts: 1,
        ..client.retry_policy().clone()
    };
    let answer = tokio::time::timeout(LOOKUP_TIMEOUT, client.get_at(OP, &url, &policy))
        .await
        .map_err(|_| "timed out".to_owned())?
        .map_err(|err| err.to_string())?;
    let message: ConversationMessage = decode(OP, &answer.body).map_err(|err| err.to_string())?;
    message
        .id
        .map(|id| id.trim().to_owned())
        .filter(|id| !id.is_empty())
        .ok_or_else(|| "answer without an id".into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const FRAME: &str = r#"{"id":"env-1",
     "data":{"eventType":"conversation.activity",
             "activity":{"id":"92db3be0-43bd-11e6-8ae9-dd5b3dfc565d","objectType":"activity","verb":"post",
                         "actor":{"id":"p-1","objectType":"person","displayName":"Jane Doe",
                                  "emailAddress":"jane.doe@example.com","type":"PERSON"},
                         "object":{"objectType":"comment","displayName":"x","mentions":{"items":[{"id":"bot-1","objectType":"person"}]}},
                         "target":{"id":"c-1","objectType":"conversation",
                                   "url":"https://conv-a.wbx2.com/conversation/api/v1/conversations/c-1",
                                   "tags":["ONE_ON_ONE", 7]},
                         "published":"2026-12-01T10:00:00.000Z"}},
     "timestamp":1764583200000,"trackingId":"t","alertType":"full","sequenceNumber":7,"filterMessage":false}"#;

    #[test]
    fn parses_a_post() {
        let envelope = parse_envelope(FRAME.as_bytes()).unwrap();
        assert_eq!(envelope.id.as_deref(), Some("env-1"));
        let post = envelope.post().expect("a post");
        assert_eq!(post.id, "92db3be0-43bd-11e6-8ae9-dd5b3dfc565d");
        assert_eq!(post.actor.email.as_deref(), Some("jane.doe@example.com"));
        assert_eq!(post.actor.kind.as_deref(), Some("PERSON"));
        assert_eq!(post.actor.display_name.as_deref(), Some("Jane Doe"));
        assert_eq!(post.target.id.as_deref(), Some("c-1"));
        assert_eq!(post.target.tags, vec!["ONE_ON_ONE"]);
        assert!(post.is_one_on_one());
        assert_eq!(post.mentions, vec!["bot-1"]);
        assert!(post.published.is_some());
    }

    #[test]
    fn other_events_and_verbs_are_not_posts() {
        let other = FRAME.replace("conversation.activity", "status.start_typing");
        assert!(parse_envelope(other.as_bytes()).unwrap().post().is_none());
        let ack = FRAME.replace(r#""verb":"post""#, r#""verb":"acknowledge""#);
        let envelope = parse_envelope(ack.as_bytes()).unwrap();
        assert!(envelope.post().is_none());
        assert_eq!(envelope.activity.unwrap().verb, "acknowledge");
        let bare = parse_envelope(
            br#"{"data":{"eventType":"conversation.activity","activity":{"verb":"post"}}}"#,
        )
        .unwrap();
        assert_eq!(bare.activity, None);
    }

    #[test]
    fn malformed_frames_are_errors() {
        for bad in [&b""[..], b"[]", b"null", b"\"x\"", b"{", b"\xff\xfe"] {
            assert!(
                matches!(parse_envelope(bad), Err(WebexError::Decode(_))),
                "{bad:?}"
            );
        }
        let odd = parse_envelope(br#"{"id":5,"data":{"eventType":[],"activity":"x"}}"#).unwrap();
        assert_eq!(
            odd,
            Envelope {
                id: None,
                event_type: None,
                activity: None
            }
        );
    }

    #[test]
    fn fallback_id_is_padded_standard_base64() {
        assert_eq!(
            fallback_message_id("92db3be0-43bd-11e6-8ae9-dd5b3dfc565d"),
            "Y2lzY29zcGFyazovL3VzL01FU1NBR0UvOTJkYjNiZTAtNDNiZC0xMWU2LThhZTktZGQ1YjNkZmM1NjVk"
        );
        assert!(fallback_message_id("a").ends_with('='));
    }

    #[test]
    fn uuid_of_person_ids() {
        let id = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .encode("ciscospark://us/PEOPLE/bot-uuid");
        assert_eq!(uuid_of_rest_id(&id).as_deref(), Some("bot-uuid"));
        let id = base64::engine::general_purpose::STANDARD.encode("ciscospark://us/PEOPLE/x1");
        assert_eq!(uuid_of_rest_id(&id).as_deref(), Some("x1"));
        assert_eq!(uuid_of_rest_id("not base64!"), None);
        assert_eq!(uuid_of_rest_id(""), None);
    }

    #[test]
    fn conversation_url_rewrite() {
        let activity = parse_envelope(FRAME.as_bytes()).unwrap().activity.unwrap();
        assert_eq!(
            conversation_message_url(&activity).unwrap().as_str(),
            "https://conv-a.wbx2.com/conversation/api/v1/messages/92db3be0-43bd-11e6-8ae9-dd5b3dfc565d"
        );
        let with = |url: &str, target: &str, id: &str| {
            let mut a = activity.clone();
            a.target.url = Some(url.into());
            a.target.id = Some(target.into());
            a.id = id.into();
            conversation_message_url(&a)
        };
        assert!(with("https://h/conversations/c-1", "c-1", "m").is_some());
        assert!(with("https://h/conversations/c-2", "c-1", "m").is_none());
        assert!(with("https://h/xconversations/c-1", "c-1", "m").is_none());
        assert!(with("https://h/conversations/c-1?x=1", "c-1", "m").is_none());
        assert!(with("https://h/conversations/c-1", "c-1", "../../x").is_none());
        assert!(with("not a url", "c-1", "m").is_none());
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            let _ = parse_envelope(&bytes);
        }

        #[test]
        fn arbitrary_json_never_panics(value in json_value()) {
            let bytes = serde_json::to_vec(&value).unwrap();
            if let Ok(envelope) = parse_envelope(&bytes) {
                if let Some(activity) = envelope.activity {
                    let _ = conversation_message_url(&activity);
                    let _ = fallback_message_id(&activity.id);
                }
            }
        }

        #[test]
        fn mutated_frames_never_panic(cut in 0usize..2000, byte in any::<u8>()) {
            let mut bytes = FRAME.as_bytes().to_vec();
            let at = cut % bytes.len();
            bytes[at] = byte;
            let _ = parse_envelope(&bytes);
            let _ = parse_envelope(&bytes[..at]);
        }
    }

    /// JSON values shaped like frames: the keys the parser looks for, nested, with any values.
    fn json_value() -> impl Strategy<Value = Value> {
        let key = prop_oneof![
            Just("id".to_owned()),
            Just("data".to_owned()),
            Just("eventType".to_owned()),
            Just("activity".to_owned()),
            Just("verb".to_owned()),
            Just("actor".to_owned()),
            Just("target".to_owned()),
            Just("url".to_owned()),
            Just("tags".to_owned()),
            Just("object".to_owned()),
            Just("mentions".to_owned()),
            Just("items".to_owned()),
            Just("published".to_owned()),
            "[a-z]{1,6}",
        ];
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(Value::from),
            any::<f64>().prop_map(Value::from),
            ".{0,20}".prop_map(Value::String),
            Just(Value::String("conversation.activity".into())),
            Just(Value::String("post".into())),
        ];
        leaf.prop_recursive(5, 64, 8, move |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
                proptest::collection::btree_map(key.clone(), inner, 0..6)
                    .prop_map(|map| Value::Object(map.into_iter().collect())),
            ]
        })
    }
}
