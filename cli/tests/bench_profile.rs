//! `concord bench --profile` on the demo model: one table per phase whose rows add up to the
//! phase's wall time, whose op launches are most (not all, not more) of it, and whose launch
//! counts are the model's graph: one attention op per layer per token, one embedding.

mod common;
use common::concord_ok;

/// The demo model's `num_hidden_layers` (models/demo/config.json).
const DEMO_LAYERS: f64 = 4.0;

/// One parsed table: its title line, the wall time it states, and its rows.
struct Table {
    title: String,
    wall_ms: f64,
    /// (label, per step, total ms); per step is `None` for rows without a count.
    rows: Vec<(String, Option<f64>, f64)>,
}

impl Table {
    fn row(&self, label: &str) -> (Option<f64>, f64) {
        let (_, per, ms) = self
            .rows
            .iter()
            .find(|(l, _, _)| l == label)
            .unwrap_or_else(|| panic!("no row {label:?} in {:?}", self.title));
        (*per, *ms)
    }
}

/// The tables of `stdout`: a `profile: …, X ms over …` line, a header, rows up to a blank line.
fn tables(stdout: &str) -> Vec<Table> {
    let mut out = Vec::new();
    let mut lines = stdout.lines();
    while let Some(line) = lines.next() {
        let Some(rest) = line.strip_prefix("profile: ") else {
            continue;
        };
        let wall_ms: f64 = rest
            .rsplit_once(" ms over ")
            .and_then(|(head, _)| head.rsplit(' ').next())
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("no wall time in {line:?}"));
        let header = lines.next().expect("a header");
        assert!(
            header.contains("total ms") && header.contains("us/launch"),
            "{header}"
        );
        let mut rows = Vec::new();
        for row in lines.by_ref().take_while(|l| !l.trim().is_empty()) {
            // label, per step, total ms, µs per launch, %: the label may hold spaces.
            let fields: Vec<&str> = row.split_whitespace().collect();
            let n = fields.len();
            assert!(n >= 5, "short row {row:?}");
            let label = fields[..n - 4].join(" ");
            let per = fields[n - 4].parse().ok();
            let ms: f64 = fields[n - 3].parse().expect("total ms");
            rows.push((label, per, ms));
        }
        out.push(Table {
            title: line.to_string(),
            wall_ms,
            rows,
        });
    }
    out
}

fn check_sums(t: &Table) {
    let launches: f64 = t
        .rows
        .iter()
        .filter(|(l, _, _)| !l.starts_with("(outside ops)") && !l.starts_with("total "))
        .map(|(_, _, ms)| ms)
        .sum();
    let outside: f64 = t
        .rows
        .iter()
        .filter(|(l, _, _)| l.starts_with("(outside ops)"))
        .map(|(_, _, ms)| ms)
        .sum();
    let (_, in_launches) = t.row("total in op launches");
    // Each printed figure is rounded to 1 µs.
    let rounding = 0.001 * t.rows.len() as f64;
    assert!(
        (launches - in_launches).abs() <= rounding,
        "{}: op rows {launches} ms, total row {in_launches} ms",
        t.title
    );
    assert!(
        (launches + outside - t.wall_ms).abs() <= rounding + 0.01,
        "{}: rows add up to {} ms of a {} ms phase",
        t.title,
        launches + outside,
        t.wall_ms
    );
    assert!(
        in_launches <= t.wall_ms,
        "{}: {in_launches} ms in launches of a {} ms phase",
        t.title,
        t.wall_ms
    );
    // The demo's kernels are small, and a shared machine's load lands between them (this
    // file's three tests run concurrently, two threads each: 11 % seen in one CI run, 5–14 %
    // with three copies of this file running at once, with or without the CPU backend's
    // keepers; 67–84 % on an idle machine), but they are never a sliver of the phase.
    assert!(
        in_launches >= 0.05 * t.wall_ms,
        "{}: only {in_launches} ms in launches of a {} ms phase",
        t.title,
        t.wall_ms
    );
}

#[test]
fn profile_prints_a_table_per_phase_that_adds_up() {
    let stdout = concord_ok(&[
        "bench",
        "--profile",
        "--prompt-tokens",
        "16",
        "--decode-tokens",
        "8",
    ]);
    let t = tables(&stdout);
    assert_eq!(t.len(), 2, "prefill and decode tables:\n{stdout}");
    assert!(
        t[0].title.contains("prefill of 16 tokens"),
        "{}",
        t[0].title
    );
    assert!(t[1].title.contains("decode of 8 tokens"), "{}", t[1].title);
    for table in &t {
        check_sums(table);
        assert_eq!(table.row("embedding").0, Some(1.0), "{}", table.title);
        table.row("(outside ops) output allocation");
        table.row("(outside ops) host work: planning, sampling, …");
    }
    // A prompt runs the naive MLA form once per layer, a decode step the absorbed one.
    assert_eq!(t[0].row("mla_prefill").0, Some(DEMO_LAYERS));
    assert_eq!(t[1].row("mla_decode").0, Some(DEMO_LAYERS));
}

#[test]
fn profile_with_mtp_adds_a_table_for_each_generation() {
    let stdout = concord_ok(&[
        "bench",
        "--profile",
        "--speculative",
        "mtp",
        "--prompt-tokens",
        "8",
        "--decode-tokens",
        "8",
    ]);
    let t = tables(&stdout);
    assert_eq!(t.len(), 4, "prefill, decode, plain, MTP:\n{stdout}");
    assert!(t[2].title.contains("without drafts"), "{}", t[2].title);
    assert!(t[3].title.contains("with MTP drafts"), "{}", t[3].title);
    for table in &t {
        check_sums(table);
    }
    // Plain greedy generation: one embedding and one sample per token, and one hand-off of
    // the step to the thread pool (the forward pass inside it needs none of its own).
    let handoff = "(outside ops) hand-off to the thread pool";
    assert_eq!(t[2].row("embedding").0, Some(1.0));
    assert_eq!(t[2].row("sample").0, Some(1.0));
    assert_eq!(t[2].row(handoff).0, Some(1.0));
    // With MTP the demo accepts nearly every draft: a round decides several tokens (about
    // four with the default three drafts), and only the first costs a trip to the pool.
    let per_token = t[3].row(handoff).0.expect("a count");
    assert!(per_token < 0.75, "{per_token} hand-offs per token with MTP");
}

#[test]
fn help_shows_a_profile_example() {
    let stdout = concord_ok(&["bench", "--help"]);
    assert!(
        stdout.contains("concord --threads 2 bench --profile"),
        "{stdout}"
    );
}
