//! Autocompletion in a file directory of 50,000 people: one call per keystroke, so each should
//! take well under a millisecond or two. `cargo bench -p whereis-directory --bench suggest`.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion};
use whereis_directory::file::FileDirectory;
use whereis_directory::Entry;

const PEOPLE: usize = 50_000;
const FIRST: [&str; 12] = [
    "Jane",
    "Janek",
    "José",
    "Hélène",
    "Anna",
    "Bo",
    "Zoë",
    "Sam",
    "Lee",
    "Carla",
    "Mary Ann",
    "Jean-Pierre",
];
const LAST: [&str; 11] = [
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
    "O'Brien",
];

fn directory() -> FileDirectory {
    let people = (0..PEOPLE).map(|i| {
        let first = FIRST[i % FIRST.len()];
        let last = LAST[(i / FIRST.len()) % LAST.len()];
        let username = format!("{}{}{i}", first[..1].to_lowercase(), last.to_lowercase());
        let entry = Entry {
            display_name: format!("{first} {last} {i}"),
            email: Some(format!("{username}@example.com")),
            username,
            ..Default::default()
        };
        (entry, vec![format!("{first}{i}")])
    });
    FileDirectory::from_entries(people).expect("generated people are valid")
}

fn suggest(c: &mut Criterion) {
    let directory = directory();
    let mut group = c.benchmark_group("suggest_50k");
    for query in [
        "ja", "jane", "jane d", "doe ja", "jose gar", "jdoe12", "zz", "nobody",
    ] {
        group.bench_function(query, |b| {
            b.iter(|| directory.suggest(black_box(query), black_box(10)))
        });
    }
    group.finish();
}

criterion_group!(benches, suggest);
criterion_main!(benches);
