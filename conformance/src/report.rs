//! The report: per backend, per case verdicts; written as JSON and as one self-contained HTML
//! file.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::fast::FastMode;

/// The outcome of one case on one backend.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Verdict {
    /// Every output byte matches the CPU reference (NaN matches any NaN).
    BitExact,
    /// Some output differs from the reference.
    Mismatch,
    /// The backend reports the op/dtype as unsupported.
    Unsupported,
    /// The backend could not be opened here.
    Unavailable,
    /// The case failed to run (launch error, reference failure, bytes written out of bounds).
    Error,
}

impl Verdict {
    /// The verdict as the report spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::BitExact => "bit-exact",
            Verdict::Mismatch => "mismatch",
            Verdict::Unsupported => "unsupported",
            Verdict::Unavailable => "unavailable",
            Verdict::Error => "error",
        }
    }
}

/// One case on one backend.
#[derive(Debug, Clone, Serialize)]
pub struct CaseResult {
    /// Case name (`--case`).
    pub name: String,
    /// `op` or `model`.
    pub level: &'static str,
    /// Op kind, or the model check (`logits`, `greedy`, …).
    pub op: String,
    /// Seed of the case's generator (`--seed`).
    pub seed: u64,
    /// The outcome.
    pub verdict: Verdict,
    /// Why (unsupported, unavailable, error) or the first differing element (mismatch).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Largest distance in ulps (0 when bit-exact; `null` when not compared;
    /// 18446744073709551615 when a NaN meets a number).
    pub max_ulp: Option<u64>,
    /// Normalised mean squared error vs the reference (`null` when not compared or integer).
    pub nmse: Option<f64>,
    /// Differing elements.
    pub mismatched_elements: Option<usize>,
    /// The command that runs this case alone.
    pub replay: String,
}

/// Counts of each verdict.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Counts {
    /// Bit-exact cases.
    pub bit_exact: usize,
    /// Mismatching cases.
    pub mismatch: usize,
    /// Unsupported cases.
    pub unsupported: usize,
    /// Cases not run because the backend is unavailable.
    pub unavailable: usize,
    /// Cases that failed to run.
    pub error: usize,
}

/// One backend's results.
#[derive(Debug, Clone, Serialize)]
pub struct BackendReport {
    /// Backend name.
    pub name: String,
    /// Whether it opened here.
    pub available: bool,
    /// Why not, when unavailable.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Listed in `--require` / CONCORD_REQUIRE_BACKENDS.
    pub required: bool,
    /// Device name as the vendor reports it.
    pub device: Option<String>,
    /// Driver / library versions.
    pub driver: Option<String>,
    /// Verdict counts.
    pub counts: Counts,
    /// Wall time of its cases, in seconds.
    pub seconds: f64,
    /// Fast-mode section.
    pub fast_mode: FastMode,
    /// Every case, in suite order.
    pub cases: Vec<CaseResult>,
}

impl BackendReport {
    /// Whether this backend fails the run: an exact-mode mismatch, an error, or unavailable
    /// while required.
    pub fn failed(&self) -> bool {
        self.counts.mismatch > 0
            || self.counts.error > 0
            || self.fast_mode.failed > 0
            || (self.required && !self.available)
    }

    /// The one-line summary printed per backend.
    pub fn summary_line(&self) -> String {
        if !self.available {
            return format!(
                "{:8} {}  {}",
                self.name,
                if self.required {
                    "UNAVAILABLE (required)"
                } else {
                    "unavailable"
                },
                self.reason.as_deref().unwrap_or("")
            );
        }
        let c = &self.counts;
        format!(
            "{:8} {}  {} bit-exact, {} mismatch, {} unsupported, {} error  ({:.1} s)  {} ({})",
            self.name,
            if self.failed() { "FAIL" } else { "pass" },
            c.bit_exact,
            c.mismatch,
            c.unsupported,
            c.error,
            self.seconds,
            self.device.as_deref().unwrap_or(""),
            self.driver.as_deref().unwrap_or("")
        )
    }
}

/// The whole run.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// `pass` or `fail`.
    pub verdict: &'static str,
    /// Concord's version.
    pub concord_version: &'static str,
    /// `git rev-parse HEAD` of the working directory, when it is a git checkout.
    pub git_commit: Option<String>,
    /// When the run started, UTC, RFC 3339.
    pub generated_utc: String,
    /// The reference backend (`cpu`) and its device.
    pub reference: String,
    /// Model directory of the model-level cases, if any.
    pub model: Option<String>,
    /// `--case` filter, if any.
    pub case_filter: Option<String>,
    /// `--seed` override, if any.
    pub seed_override: Option<u64>,
    /// The test-only perturbation in effect (`backend:op`), if any.
    pub perturbation: Option<String>,
    /// Number of cases per backend.
    pub cases_per_backend: usize,
    /// One entry per selected backend.
    pub backends: Vec<BackendReport>,
}

impl Report {
    /// Whether any backend failed.
    pub fn failed(&self) -> bool {
        self.backends.iter().any(BackendReport::failed)
    }

    /// `backend case: verdict` for every mismatch and error.
    pub fn failures(&self) -> Vec<String> {
        let mut out = Vec::new();
        for b in &self.backends {
            if b.required && !b.available {
                out.push(format!("{}: required but unavailable", b.name));
            }
            for c in &b.cases {
                if matches!(c.verdict, Verdict::Mismatch | Verdict::Error) {
                    out.push(format!(
                        "{} {}: {} — {}",
                        b.name,
                        c.name,
                        c.verdict.as_str(),
                        c.reason.as_deref().unwrap_or("")
                    ));
                }
            }
            for c in &b.fast_mode.cases {
                if matches!(c.verdict, "beyond" | "error") {
                    out.push(format!(
                        "{} {} (fast mode): {} — {}",
                        b.name,
                        c.name,
                        c.verdict,
                        c.reason.as_deref().unwrap_or("")
                    ));
                }
            }
        }
        out
    }

    /// The report as pretty JSON.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("the report serializes")
    }

    /// Writes `conformance.json` and `conformance.html` into `dir` (created if needed).
    pub fn write(&self, dir: &Path) -> std::io::Result<(PathBuf, PathBuf)> {
        std::fs::create_dir_all(dir)?;
        let json = dir.join("conformance.json");
        let html = dir.join("conformance.html");
        std::fs::write(&json, self.to_json())?;
        std::fs::write(&html, self.to_html())?;
        Ok((json, html))
    }

    /// The report as one self-contained HTML page: the verdict at the top, a backend × case
    /// table, and each failing case with its replay command.
    pub fn to_html(&self) -> String {
        let mut h = String::new();
        let verdict_colour = if self.failed() { "#c62828" } else { "#2e7d32" };
        let _ = write!(
            h,
            "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>Concord conformance</title>\n\
             <style>body{{font-family:sans-serif;margin:1.5em}}table{{border-collapse:collapse;font-size:12px}}\
             td,th{{border:1px solid #ccc;padding:2px 6px}}th{{background:#eee}}\
             .bit-exact{{background:#a5d6a7}}.mismatch{{background:#ef9a9a}}.error{{background:#ff7043}}\
             .unsupported,.unavailable{{background:#ddd;color:#555}}\
             .verdict{{color:#fff;background:{verdict_colour};padding:.5em 1em;font-size:1.4em;display:inline-block}}\
             code{{background:#f4f4f4;padding:1px 4px}}</style></head><body>\n\
             <h1>Concord conformance</h1>\n<div class=\"verdict\">{}</div>\n",
            if self.failed() { "FAIL" } else { "PASS" }
        );
        let _ = write!(
            h,
            "<p>Concord {} · commit {} · {} · reference {} · {} cases per backend{}</p>\n<ul>\n",
            esc(self.concord_version),
            esc(self.git_commit.as_deref().unwrap_or("unknown")),
            esc(&self.generated_utc),
            esc(&self.reference),
            self.cases_per_backend,
            self.perturbation
                .as_ref()
                .map(|p| format!(" · <b>test-only perturbation {}</b>", esc(p)))
                .unwrap_or_default()
        );
        for b in &self.backends {
            let _ = writeln!(
                h,
                "<li><b>{}</b>: {} — fast mode: {}</li>",
                esc(&b.name),
                esc(&b.summary_line()),
                esc(&b.fast_mode.note)
            );
        }
        h.push_str("</ul>\n");
        let failures: Vec<(&BackendReport, &CaseResult)> = self
            .backends
            .iter()
            .flat_map(|b| b.cases.iter().map(move |c| (b, c)))
            .filter(|(_, c)| matches!(c.verdict, Verdict::Mismatch | Verdict::Error))
            .collect();
        if !failures.is_empty() {
            h.push_str("<h2>Failures</h2>\n<ul>\n");
            for (b, c) in failures {
                let _ = writeln!(
                    h,
                    "<li class=\"{}\"><b>{}</b> {}: {} (max ulp {}, nmse {}) — {}<br>replay: <code>{}</code></li>",
                    c.verdict.as_str(),
                    esc(&b.name),
                    esc(&c.name),
                    c.verdict.as_str(),
                    c.max_ulp.map(|u| u.to_string()).unwrap_or_else(|| "–".into()),
                    c.nmse.map(|n| format!("{n:.3e}")).unwrap_or_else(|| "–".into()),
                    esc(c.reason.as_deref().unwrap_or("")),
                    esc(&c.replay)
                );
            }
            h.push_str("</ul>\n");
        }
        h.push_str("<h2>Cases</h2>\n<table>\n<tr><th>case</th><th>seed</th>");
        for b in &self.backends {
            let _ = write!(h, "<th>{}</th>", esc(&b.name));
        }
        h.push_str("</tr>\n");
        for i in 0..self.cases_per_backend {
            let Some(first) = self.backends.first().and_then(|b| b.cases.get(i)) else {
                break;
            };
            let _ = write!(
                h,
                "<tr><td>{}</td><td>{}</td>",
                esc(&first.name),
                first.seed
            );
            for b in &self.backends {
                match b.cases.get(i) {
                    Some(c) => {
                        let mut title = c.reason.clone().unwrap_or_default();
                        if matches!(c.verdict, Verdict::Mismatch | Verdict::Error) {
                            title = format!("{title} | replay: {}", c.replay);
                        }
                        let extra = match (c.verdict, c.max_ulp) {
                            (Verdict::Mismatch, Some(u)) => format!(" ({u} ulp)"),
                            _ => String::new(),
                        };
                        let _ = write!(
                            h,
                            "<td class=\"{}\" title=\"{}\">{}{}</td>",
                            c.verdict.as_str(),
                            esc(&title),
                            c.verdict.as_str(),
                            extra
                        );
                    }
                    None => h.push_str("<td></td>"),
                }
            }
            h.push_str("</tr>\n");
        }
        h.push_str("</table>\n</body></html>\n");
        h
    }
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// Seconds since the Unix epoch as `YYYY-MM-DDTHH:MM:SSZ`.
pub fn utc_rfc3339(secs: u64) -> String {
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    // Civil date from days since 1970-01-01 (H. Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn utc_dates() {
        assert_eq!(super::utc_rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(super::utc_rfc3339(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(super::utc_rfc3339(1_700_000_000), "2023-11-14T22:13:20Z");
    }
}
