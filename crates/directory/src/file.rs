//! `kind = "file"`: a CSV read at start and kept in memory.
//!
//! Header `username,display_name,email[,aliases]` (any order, case-insensitive); aliases separated by
//! `;`; UTF-8 (a leading BOM is fine); quoted fields; blank lines and lines starting with `#` are
//! skipped. A bad row refuses the whole file with its line number: better loud than half a directory.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use super::names::{choose, suggestions, Person, Prefix, Query, SuggestIndex};
use super::{DirectoryError, Entry, Resolution};

/// Largest directory file read, in bytes.
const MAX_FILE_BYTES: u64 = 64 * 1024 * 1024;

/// The people of one CSV, with indexes by username and email and their suggestion keys.
#[derive(Debug, Default)]
struct Index {
    people: Vec<Person>,
    by_email: HashMap<String, usize>,
    suggest: SuggestIndex,
}

/// A file directory; [`reload`](FileDirectory::reload) swaps its content atomically.
#[derive(Debug)]
pub struct FileDirectory {
    path: Option<PathBuf>,
    index: RwLock<Arc<Index>>,
}

impl FileDirectory {
    /// Reads and checks `path` (off the async threads).
    pub async fn open(path: PathBuf) -> Result<FileDirectory, DirectoryError> {
        let index = load(path.clone()).await?;
        Ok(FileDirectory {
            path: Some(path),
            index: RwLock::new(Arc::new(index)),
        })
    }

    /// A directory of these people (with their aliases), checked like a file's rows.
    pub fn from_entries(
        people: impl IntoIterator<Item = (Entry, Vec<String>)>,
    ) -> Result<FileDirectory, DirectoryError> {
        let mut builder = Builder::default();
        for (i, (entry, aliases)) in people.into_iter().enumerate() {
            builder
                .add(entry, aliases, i + 1)
                .map_err(|msg| DirectoryError::Invalid(format!("entry {}: {msg}", i + 1)))?;
        }
        Ok(FileDirectory {
            path: None,
            index: RwLock::new(Arc::new(builder.finish())),
        })
    }

    /// The CSV's path (none for a directory built from entries).
    pub fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }

    /// Re-reads the file; on error the current content stays. Returns the number of people.
    pub async fn reload(&self) -> Result<usize, DirectoryError> {
        let Some(path) = &self.path else {
            return Ok(self.current().people.len());
        };
        let index = load(path.clone()).await?;
        let count = index.people.len();
        *self.index.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(index);
        Ok(count)
    }

    /// See [`Directory::resolve`](super::Directory::resolve).
    pub fn resolve(&self, query: &str) -> Resolution {
        let index = self.current();
        choose(&Query::new(query), index.people.iter())
    }

    /// See [`Directory::suggest`](super::Directory::suggest): one pass over the folded names and
    /// identifiers laid out together when the file was read, keeping only the best `limit`.
    pub fn suggest(&self, query: &str, limit: usize) -> Vec<Entry> {
        let index = self.current();
        suggestions(&Prefix::new(query), &index.people, &index.suggest, limit)
    }

    /// See [`Directory::by_email`](super::Directory::by_email).
    pub fn by_email(&self, email: &str) -> Option<Entry> {
        let index = self.current();
        index
            .by_email
            .get(&email.trim().to_lowercase())
            .map(|&i| index.people[i].entry.clone())
    }

    fn current(&self) -> Arc<Index> {
        self.index.read().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

async fn load(path: PathBuf) -> Result<Index, DirectoryError> {
    tokio::task::spawn_blocking(move || load_blocking(&path))
        .await
        .map_err(|err| DirectoryError::Invalid(format!("reading the directory file: {err}")))?
}

fn load_blocking(path: &Path) -> Result<Index, DirectoryError> {
    let shown = path.display();
    let metadata = std::fs::metadata(path)
        .map_err(|err| DirectoryError::Invalid(format!("cannot read {shown}: {err}")))?;
    if !metadata.is_file() {
        return Err(DirectoryError::Invalid(format!("{shown} is not a file")));
    }
    if metadata.len() > MAX_FILE_BYTES {
        return Err(DirectoryError::Invalid(format!(
            "{shown} is larger than {} MiB",
            MAX_FILE_BYTES / 1024 / 1024
        )));
    }
    let bytes = std::fs::read(path)
        .map_err(|err| DirectoryError::Invalid(format!("cannot read {shown}: {err}")))?;
    parse(&bytes).map_err(|msg| DirectoryError::Invalid(format!("{shown}: {msg}")))
}

/// The columns a file may have, as error messages name them.
const HEADER: &str = "username,display_name,email[,aliases,team,manager,timezone]";

/// Which column holds what.
struct Columns {
    username: usize,
    display_name: usize,
    email: usize,
    aliases: Option<usize>,
    team: Option<usize>,
    manager: Option<usize>,
    timezone: Option<usize>,
    count: usize,
}

impl Columns {
    /// Fields a line must have: up to the last required column (optional ones after it may be
    /// left out).
    fn needed(&self) -> usize {
        1 + self.username.max(self.display_name).max(self.email)
    }
}

/// Parses a whole CSV; errors are `line N: …`.
fn parse(bytes: &[u8]) -> Result<Index, String> {
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .comment(Some(b'#'))
        .trim(csv::Trim::All)
        .from_reader(bytes);
    // The reader's own line numbers skip comments and blank lines; count from byte offsets instead.
    // A record's offset is where the previous one ended, before any comments and blank lines.
    let newlines: Vec<u64> = newline_offsets(bytes);
    let line_at = |pos: Option<&csv::Position>| {
        pos.map_or(0, |p| {
            let mut line = newlines.partition_point(|&n| n < p.byte());
            loop {
                let start = if line == 0 {
                    0
                } else {
                    newlines[line - 1] as usize + 1
                };
                let end = newlines.get(line).map_or(bytes.len(), |&n| n as usize);
                let text = bytes.get(start..end).unwrap_or_default();
                if end >= bytes.len()
                    || !(text.trim_ascii().is_empty() || text.first() == Some(&b'#'))
                {
                    break;
                }
                line += 1;
            }
            line as u64 + 1
        })
    };
    let mut records = reader.records();
    let mut columns: Option<Columns> = None;
    let mut builder = Builder::default();
    for record in &mut records {
        let record = record.map_err(|err| describe_csv_error(&err, &line_at))?;
        let line = line_at(record.position());
        if record.iter().all(str::is_empty) {
            continue;
        }
        let Some(columns) = &columns else {
            columns = Some(header(&record).map_err(|msg| format!("line {line}: {msg}"))?);
            continue;
        };
        let at = |msg: String| format!("line {line}: {msg}");
        if record.iter().any(|f| f.contains(['\n', '\r'])) {
            return Err(at(
                "a field runs over several lines (a quote left open?)".into()
            ));
        }
        // Optional columns after the last required one may be left out.
        if record.len() < columns.needed() {
            return Err(at(format!(
                "{} field(s), expected {} ({HEADER}) — a missing column?",
                record.len(),
                columns.count
            )));
        }
        if record.len() > columns.count {
            return Err(at(format!(
                "{} fields, the header has {} — an unquoted comma?",
                record.len(),
                columns.count
            )));
        }
        let get = |i: usize| record.get(i).unwrap_or("").to_string();
        let email = get(columns.email);
        let optional = |column: Option<usize>| column.map(get).filter(|value| !value.is_empty());
        let entry = Entry {
            username: get(columns.username),
            display_name: get(columns.display_name),
            email: (!email.is_empty()).then_some(email),
            team: optional(columns.team),
            manager: optional(columns.manager),
            timezone: optional(columns.timezone),
        };
        let aliases = columns
            .aliases
            .map(|i| {
                get(i)
                    .split(';')
                    .map(|a| a.trim().to_string())
                    .filter(|a| !a.is_empty())
                    .collect()
            })
            .unwrap_or_default();
        builder.add(entry, aliases, line as usize).map_err(at)?;
    }
    if columns.is_none() {
        return Err(format!("no header line ({HEADER})"));
    }
    Ok(builder.finish())
}

fn header(record: &csv::StringRecord) -> Result<Columns, String> {
    let mut username = None;
    let mut display_name = None;
    let mut email = None;
    let mut aliases = None;
    let mut team = None;
    let mut manager = None;
    let mut timezone = None;
    for (i, name) in record.iter().enumerate() {
        let slot = match name.to_ascii_lowercase().as_str() {
            "username" => &mut username,
            "display_name" => &mut display_name,
            "email" => &mut email,
            "aliases" => &mut aliases,
            "team" => &mut team,
            "manager" => &mut manager,
            "timezone" => &mut timezone,
            other => {
                return Err(format!(
                    "unknown column {other:?} in the header (expected {HEADER})"
                ))
            }
        };
        if slot.replace(i).is_some() {
            return Err(format!("column {name:?} appears twice in the header"));
        }
    }
    match (username, display_name, email) {
        (Some(username), Some(display_name), Some(email)) => Ok(Columns {
            username,
            display_name,
            email,
            aliases,
            team,
            manager,
            timezone,
            count: record.len(),
        }),
        _ => Err(format!(
            "the header must name {HEADER}; found {:?}",
            record.iter().collect::<Vec<_>>().join(",")
        )),
    }
}

/// Byte offsets of the newlines in `bytes`.
fn newline_offsets(bytes: &[u8]) -> Vec<u64> {
    bytes
        .iter()
        .enumerate()
        .filter(|(_, b)| **b == b'\n')
        .map(|(i, _)| i as u64)
        .collect()
}

fn describe_csv_error(err: &csv::Error, line_at: &dyn Fn(Option<&csv::Position>) -> u64) -> String {
    match err.kind() {
        csv::ErrorKind::Utf8 { pos, .. } => format!("line {}: not UTF-8", line_at(pos.as_ref())),
        _ => match err.position() {
            Some(pos) => format!("line {}: {err}", line_at(Some(pos))),
            None => err.to_string(),
        },
    }
}

/// Checks rows one by one and indexes them.
#[derive(Default)]
struct Builder {
    people: Vec<Person>,
    usernames: HashMap<String, usize>,
    by_email: HashMap<String, usize>,
}

impl Builder {
    /// Adds one person found at `line` (used in duplicate messages).
    fn add(&mut self, entry: Entry, aliases: Vec<String>, line: usize) -> Result<(), String> {
        let username = entry.username.trim();
        if username.is_empty() {
            return Err("empty username".into());
        }
        if username
            .chars()
            .any(|c| c.is_whitespace() || c.is_control())
        {
            return Err(format!("username {username:?} contains spaces"));
        }
        if entry.display_name.trim().is_empty() {
            return Err(format!("empty display_name for {username}"));
        }
        if let Some(email) = &entry.email {
            let valid = email
                .split_once('@')
                .is_some_and(|(local, domain)| !local.is_empty() && !domain.is_empty())
                && !email.contains(char::is_whitespace);
            if !valid {
                return Err(format!("{email:?} is not an email address"));
            }
        }
        let index = self.people.len();
        if let Some(first) = self.usernames.insert(username.to_lowercase(), line) {
            return Err(format!(
                "username {username} already appears on line {first}"
            ));
        }
        if let Some(email) = &entry.email {
            if self
                .by_email
                .insert(email.trim().to_lowercase(), index)
                .is_some()
            {
                return Err(format!("email {email} belongs to two people"));
            }
        }
        self.people.push(Person::new(entry, &aliases));
        Ok(())
    }

    fn finish(self) -> Index {
        Index {
            suggest: SuggestIndex::new(&self.people),
            people: self.people,
            by_email: self.by_email,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A directory of `count` generated people: every combination of a few first and last names
    /// (some accented), numbered so that each is unique.
    fn generated(count: usize) -> FileDirectory {
        const FIRST: [&str; 10] = [
            "Jane", "Janek", "José", "Hélène", "Anna", "Bo", "Zoë", "Sam", "Lee", "Carla",
        ];
        const LAST: [&str; 10] = [
            "Doe",
            "Nowak",
            "García",
            "Lefèvre",
            "Jansen",
            "Wong",
            "Ångström",
            "Smith",
            "Case",
            "Roe",
        ];
        let people = (0..count).map(|i| {
            let first = FIRST[i % FIRST.len()];
            let last = LAST[(i / FIRST.len()) % LAST.len()];
            let username = format!("u{i:05}");
            let entry = Entry {
                display_name: format!("{first} {last} {i:05}"),
                email: Some(format!("{username}@example.com")),
                username,
                ..Default::default()
            };
            (entry, Vec::new())
        });
        FileDirectory::from_entries(people).expect("generated people are valid")
    }

    #[test]
    fn suggests_among_fifty_thousand_people() {
        let directory = generated(50_000);
        let names = |text: &str, limit: usize| -> Vec<String> {
            directory
                .suggest(text, limit)
                .into_iter()
                .map(|e| e.display_name)
                .collect()
        };
        // 5,000 Janes and 5,000 Janeks: the first ten by folded display name.
        assert_eq!(
            names("jan", 10),
            (0..10)
                .map(|k| format!("Jane Ångström {:05}", k * 100 + 60))
                .collect::<Vec<_>>()
        );
        assert_eq!(
            names("garcia jose", 3),
            [
                "José García 00022",
                "José García 00122",
                "José García 00222",
            ]
        );
        assert_eq!(names("u12345", 5), ["Bo Jansen 12345"]);
        assert_eq!(names("u1234", 25).len(), 10);
        assert_eq!(names("ångström 49966", 25), ["Zoë Ångström 49966"]);
        assert_eq!(names("nobody", 25), Vec::<String>::new());
        assert_eq!(names("example", 25).len(), 0);
        assert_eq!(directory.suggest("sam", 25).len(), 25);
    }

    #[test]
    fn parses_quotes_comments_bom_and_optional_aliases() {
        let csv = "\u{feff}username,display_name,email,aliases\n\
                   # a comment\n\
                   \n\
                   jdoe,Jane Doe,jane.doe@example.com,JD;Janie\n\
                   bsmith,\"Smith, Bob\",,\n\
                   nalias,No Alias,na@example.com\n";
        let index = parse(csv.as_bytes()).unwrap();
        assert_eq!(index.people.len(), 3);
        assert_eq!(index.people[1].entry.display_name, "Smith, Bob");
        assert_eq!(index.people[1].entry.email, None);
        assert!(index.by_email.contains_key("jane.doe@example.com"));
    }

    #[test]
    fn columns_in_any_order() {
        let index = parse(b"Email,Username,Display_Name\nj@x.org,jx,J X\n").unwrap();
        assert_eq!(index.people[0].entry.username, "jx");
        assert_eq!(index.people[0].entry.email.as_deref(), Some("j@x.org"));
    }

    #[test]
    fn errors_name_the_line() {
        let cases = [
            ("username,display_name,email\njdoe,Jane Doe\n", "line 2:"),
            (
                "username,display_name,email\n\n#c\nx,X,x@x,extra\n",
                "line 4:",
            ),
            (
                "username,display_name,email\na,A,a@x\nb,\"B,b@x\nc,C,c@x\n",
                "line 3:",
            ),
            (
                "username,display_name,email\na,A,a@x\nA,A2,b@x\n",
                "line 3: username A already appears on line 2",
            ),
            ("username,display_name,email\na,A,x@x\nb,B,X@x\n", "line 3:"),
            (
                "username,display_name,email\n,A,a@x\n",
                "line 2: empty username",
            ),
            (
                "username,display_name,email\na,,a@x\n",
                "line 2: empty display_name",
            ),
            ("username,display_name,email\na,A,nope\n", "line 2:"),
            ("username,name,email\n", "line 1:"),
            ("# only a comment\n", "no header"),
        ];
        for (csv, want) in cases {
            let err = parse(csv.as_bytes()).err().unwrap_or_default();
            assert!(
                err.contains(want),
                "{csv:?}: {err:?} should contain {want:?}"
            );
        }
        let err = parse(b"username,display_name,email\na,\xff,a@x\n")
            .err()
            .unwrap();
        assert!(err.contains("line 2: not UTF-8"), "{err}");
    }
}
