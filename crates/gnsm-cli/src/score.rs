//! `gnsm score`: score every row of a file with a saved detector, streaming the results.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::io::{BufRead, BufReader, Seek, Write};
use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use clap::{Args, ValueEnum};
use gnsm::{Calibration, Contribution, DecisionRule, Explanation, Gnsm};

use crate::args::{csv_options, device};
use crate::io::{read_chunks, spreadsheet_safe, terminal_safe, Destination, Sink};

/// Output format of the scores.
#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum Format {
    /// CSV: `row,line,score,rank`, then `column_i,value_i,expected_i,share_i,unseen_i` for
    /// each listed contributor.
    Csv,
    /// One JSON array of row objects (written as it goes, never held in memory).
    Json,
    /// JSON Lines: one row object per line.
    Jsonl,
    /// Parquet: the CSV's columns, typed (written in row groups; not to standard output
    /// unless it is redirected to a file or pipe).
    #[cfg(feature = "parquet")]
    Parquet,
}

/// `gnsm score` options.
#[derive(Args, Debug)]
pub struct ScoreArgs {
    /// A model written by `gnsm fit`.
    pub model: PathBuf,
    /// CSV, CSV.gz or Parquet file to score (`-` for standard input).
    pub data: PathBuf,
    /// Where to write the scores (`-` for standard output; the summary then goes to
    /// standard error).
    #[arg(long)]
    pub out: PathBuf,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Csv)]
    pub format: Format,
    /// Flag a row when its conformal p-value is at most this (the false-positive rate on
    /// inliers stays at most alpha).
    #[arg(long, default_value_t = 0.01)]
    pub alpha: f64,
    /// Flag instead the rows scoring above the top share of the calibration inliers
    /// (PyOD's contamination).
    #[arg(long, conflicts_with = "alpha")]
    pub contamination: Option<f64>,
    /// Copy this column (a key such as a customer id) into the output beside each score.
    #[arg(long)]
    pub id: Option<String>,
    /// How many of the most anomalous rows to summarise.
    #[arg(long, default_value_t = 10)]
    pub top: usize,
    /// Contributing columns listed per row.
    #[arg(long, default_value_t = 3)]
    pub columns: usize,
    /// Field delimiter of the input.
    #[arg(long, default_value = ",")]
    pub delimiter: char,
    /// Where to score: cpu, cuda, cuda:N or metal (see `gnsm fit --help`).
    #[arg(long, default_value = "cpu")]
    pub device: String,
    /// No summary, no progress bar.
    #[arg(long, short)]
    pub quiet: bool,
}

/// Rows explained per pass (bounds memory).
const CHUNK: usize = 2048;

/// Rows read from the input at a time: the input is never held whole, so scoring a file
/// needs memory for one chunk plus a few numbers per row (score, rank), whatever its size.
const READ_ROWS: usize = 65_536;

/// A CSV field: control characters escaped (no raw CR, LF, ESC or BEL in the file), quoted
/// when it must be, neutralised when a spreadsheet would run it.
fn csv_field(text: &str) -> String {
    let safe = spreadsheet_safe(&terminal_safe(text));
    if safe.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", safe.replace('"', "\"\""))
    } else {
        safe
    }
}

/// A row's p-value and decision, when the model is calibrated.
fn decision(calibration: Option<&Calibration>, threshold: f64, score: f64) -> Option<(f64, bool)> {
    calibration.map(|c| (c.p_value(score), score.is_nan() || score > threshold))
}

/// One row's line of the output, without its rank (which needs every score): CSV fields
/// `row,line,score,p_value,is_anomaly,…`, or a JSON object without `rank`.
fn row_record(
    format: Format,
    e: &Explanation,
    decided: Option<(f64, bool)>,
    id: Option<&str>,
    columns: usize,
) -> String {
    let top = &e.contributions[..columns.min(e.contributions.len())];
    match format {
        Format::Csv => {
            let mut line = format!("{},{},{}", e.row + 1, e.line, e.score);
            match decided {
                Some((p, flag)) => line.push_str(&format!(",{p},{flag}")),
                None => line.push_str(",,"),
            }
            if let Some(id) = id {
                line.push(',');
                line.push_str(&csv_field(id));
            }
            for i in 0..columns {
                match top.get(i) {
                    Some(c) => line.push_str(&format!(
                        ",{},{},{},{},{}",
                        csv_field(&c.feature),
                        csv_field(&c.value),
                        csv_field(&c.expected),
                        c.share,
                        c.unseen
                    )),
                    None => line.push_str(",,,,,"),
                }
            }
            line
        }
        _ => {
            let mut record = serde_json::json!({
                "row": e.row + 1, "line": e.line, "score": e.score,
                "p_value": decided.map(|d| d.0), "is_anomaly": decided.map(|d| d.1),
                "contributions": top,
            });
            if let Some(id) = id {
                record["id"] = serde_json::Value::String(id.into());
            }
            record.to_string()
        }
    }
}

/// The CSV header for `columns` contributors, with the key column when there is one.
fn csv_header(columns: usize, id: Option<&str>) -> String {
    let mut header = String::from("row,line,score,rank,p_value,is_anomaly");
    if let Some(id) = id {
        header.push(',');
        header.push_str(&csv_field(id));
    }
    for i in 1..=columns {
        header.push_str(&format!(
            ",column_{i},value_{i},expected_{i},share_{i},unseen_{i}"
        ));
    }
    header
}

/// A short human description of the top contributors.
pub fn describe(contributions: &[Contribution], columns: usize) -> String {
    contributions
        .iter()
        .take(columns)
        .map(|c| {
            let (feature, value, expected) = (
                terminal_safe(&c.feature),
                terminal_safe(&c.value),
                terminal_safe(&c.expected),
            );
            let share = 100.0 * c.share;
            if c.unseen {
                format!("{feature}={value} (never seen; expected {expected}, {share:.0}%)")
            } else if c.value == c.expected {
                format!("{feature}={value} ({share:.0}%)")
            } else {
                format!("{feature}={value} (expected {expected}, {share:.0}%)")
            }
        })
        .collect::<Vec<_>>()
        .join("; ")
}

/// A score ordered for the heap of the most anomalous rows.
#[derive(PartialEq)]
struct Ranked(f64, usize, String);

impl Eq for Ranked {}

impl PartialOrd for Ranked {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Ranked {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.0.total_cmp(&other.0).then(other.1.cmp(&self.1))
    }
}

/// Run `gnsm score`.
pub fn run(args: ScoreArgs) -> Result<()> {
    let inputs = [args.model.clone(), args.data.clone()];
    let out = Destination::check(&args.out, &inputs, "scores")?;
    let options = csv_options(args.delimiter)?;
    if !args.model.exists() {
        bail!("{}: no such model file", args.model.display());
    }
    let rule = match args.contamination {
        Some(c) => DecisionRule::Contamination(c),
        None => DecisionRule::Alpha(args.alpha),
    };
    rule.validate()?;
    let detector = Gnsm::load(&args.model, &device(&args.device)?)?;
    let calibration = detector.calibration();
    let threshold = match calibration {
        Some(c) => c.threshold(rule)?,
        None => f64::INFINITY,
    };
    let mut flagged = 0usize;
    let table_id = |table: &gnsm::data::Table| -> Result<Option<usize>> {
        match &args.id {
            None => Ok(None),
            Some(name) => table.column_index(name).map(Some).with_context(|| {
                format!(
                    "--id {name:?}: {} has no such column (columns: {})",
                    args.data.display(),
                    table.column_names().join(", ")
                )
            }),
        }
    };
    let quiet = args.quiet;
    // The input's length is unknown while it streams: a spinner with the rows done.
    let bar = if quiet {
        indicatif::ProgressBar::hidden()
    } else {
        indicatif::ProgressBar::new_spinner()
    };
    bar.set_style(
        indicatif::ProgressStyle::with_template("scoring {spinner} {pos} rows {per_sec}")
            .expect("valid template"),
    );
    // Rows go to a spill file as they are scored (ranks need every score, and memory must
    // not grow with the file); only the scores and the top rows stay in memory.
    let mut spill = BufWriterFile::new()?;
    let mut scores = Vec::new();
    let mut top: BinaryHeap<Reverse<Ranked>> = BinaryHeap::new();
    let mut id_column = None;
    for (index, table) in read_chunks(&args.data, &options, READ_ROWS)?.enumerate() {
        let table = table?;
        if index == 0 {
            id_column = table_id(&table)?;
        }
        // Rows are numbered across the whole input, not per chunk.
        let base = scores.len();
        let rows: Vec<usize> = (0..table.rows()).collect();
        for chunk in rows.chunks(CHUNK) {
            for mut e in detector.explain(&table, chunk)? {
                let value = id_column.map(|c| table.column(c).value(e.row));
                e.row += base;
                let decided = decision(calibration, threshold, e.score);
                flagged += usize::from(decided.is_some_and(|d| d.1));
                writeln!(
                    spill.file,
                    "{}",
                    row_record(args.format, &e, decided, value, args.columns)
                )?;
                scores.push(e.score);
                if args.top > 0 {
                    top.push(Reverse(Ranked(
                        e.score,
                        e.row,
                        format!(
                            "line {:>7}  score {:>10.3}  {}",
                            e.line,
                            e.score,
                            describe(&e.contributions, args.columns)
                        ),
                    )));
                    if top.len() > args.top {
                        top.pop();
                    }
                }
            }
            bar.inc(chunk.len() as u64);
        }
    }
    bar.finish_and_clear();
    let mut order: Vec<usize> = (0..scores.len()).collect();
    order.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]).then(a.cmp(&b)));
    let mut rank = vec![0usize; scores.len()];
    for (r, &i) in order.iter().enumerate() {
        rank[i] = r + 1;
    }
    let decided = Decided {
        calibration,
        rule,
        threshold,
        flagged,
    };
    let mut sink = out.open()?;
    let spilled = spill.reopen()?;
    let sink = match args.format {
        #[cfg(feature = "parquet")]
        Format::Parquet => {
            crate::parquet_out::write(sink, spilled, &rank, args.columns, args.id.as_deref())?
        }
        format => {
            write_text(&mut sink, spilled, format, &rank, &args)?;
            sink
        }
    };
    sink.finish()?;
    summarize(&args, &out, &scores, decided, top)
}

/// The spilled rows as CSV, JSON or JSON Lines, each with its rank put in.
fn write_text(
    sink: &mut Sink,
    spilled: impl BufRead,
    format: Format,
    rank: &[usize],
    args: &ScoreArgs,
) -> Result<()> {
    let json = matches!(format, Format::Json);
    match format {
        Format::Csv => writeln!(sink, "{}", csv_header(args.columns, args.id.as_deref()))?,
        _ if json => writeln!(sink, "[")?,
        _ => {}
    }
    let (indent, rows) = (if json { "  " } else { "" }, rank.len());
    for (i, line) in spilled.lines().enumerate() {
        let line = line?;
        if matches!(format, Format::Csv) {
            // `row,line,score` are plain numbers: the rank goes after the third comma.
            let mut commas = line.match_indices(',').map(|(p, _)| p);
            let cut = commas.nth(2).unwrap_or(line.len());
            writeln!(sink, "{},{}{}", &line[..cut], rank[i], &line[cut..])?;
        } else {
            let sep = if json && i + 1 < rows { "," } else { "" };
            writeln!(sink, "{indent}{{\"rank\":{},{}{sep}", rank[i], &line[1..])?;
        }
    }
    if json {
        writeln!(sink, "]")?;
    }
    Ok(())
}

/// How rows were decided, for the summary.
struct Decided<'a> {
    calibration: Option<&'a Calibration>,
    rule: DecisionRule,
    threshold: f64,
    flagged: usize,
}

/// The human summary: rows scored, rows flagged, the most anomalous ones.
fn summarize(
    args: &ScoreArgs,
    out: &Destination,
    scores: &[f64],
    decided: Decided<'_>,
    top: BinaryHeap<Reverse<Ranked>>,
) -> Result<()> {
    if args.quiet {
        return Ok(());
    }
    let Decided {
        calibration,
        rule,
        threshold,
        flagged,
    } = decided;
    // With the scores on standard output, the summary must not mix into them.
    let mut say: Box<dyn Write> = if out.is_stdout() {
        Box::new(std::io::stderr())
    } else {
        Box::new(std::io::stdout())
    };
    writeln!(
        say,
        "scored {} rows of {}; scores written to {out}",
        scores.len(),
        args.data.display()
    )?;
    let level = match rule {
        DecisionRule::Alpha(a) => format!("p-value at most {a}"),
        DecisionRule::Contamination(c) => {
            format!("above the top {c} share of the calibration inliers")
        }
    };
    match calibration {
        Some(c) => {
            writeln!(
                say,
                "{flagged} rows flagged anomalous ({level}; threshold score {threshold:.4}, from {} held-out inliers)",
                c.len()
            )?;
            if threshold.is_infinite() {
                writeln!(
                    say,
                    "note: with {} calibration rows no p-value can be below {:.4}; a smaller alpha flags nothing",
                    c.len(),
                    1.0 / (c.len() + 1) as f64
                )?;
            }
        }
        None => writeln!(
            say,
            "this model holds no calibration (an older file, or fitted with calibration_fraction 0): p_value and is_anomaly are left empty"
        )?,
    }
    if !top.is_empty() {
        writeln!(say, "most anomalous:")?;
        for Reverse(Ranked(_, _, text)) in top.into_sorted_vec() {
            writeln!(say, "  {text}")?;
        }
    }
    Ok(())
}

/// An anonymous temporary file (removed by the system when closed).
struct BufWriterFile {
    file: std::io::BufWriter<std::fs::File>,
}

impl BufWriterFile {
    fn new() -> Result<Self> {
        let file = tempfile::tempfile().context("cannot create a temporary file for the scores")?;
        Ok(Self {
            file: std::io::BufWriter::new(file),
        })
    }

    fn reopen(self) -> Result<BufReader<std::fs::File>> {
        let mut file = self.file.into_inner().map_err(|e| e.into_error())?;
        file.rewind()?;
        Ok(BufReader::new(file))
    }
}
