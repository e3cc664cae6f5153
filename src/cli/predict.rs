use std::io::{BufRead, BufReader};
use std::path::PathBuf;

use serde::Deserialize;

use crate::tasks::{Model, Prediction, Tagging};
use crate::text::relation::CharSpan;
use crate::{Error, Result};

#[derive(clap::Args)]
pub struct Args {
    /// Model folder (config.json with id2label and task_head, tokenizer.json, model.safetensors).
    #[arg(long)]
    model: PathBuf,
    /// JSON lines: {"text": …} with optional "text_pair" (classify) or "head"/"tail" spans (relate).
    #[arg(long, conflicts_with = "text")]
    input: Option<PathBuf>,
    /// Text to run (instead of --input).
    text: Option<String>,
    /// Second text of a pair (classify).
    #[arg(long)]
    pair: Option<String>,
    /// Head span for relate, in characters: START:END
    #[arg(long, value_parser = parse_span)]
    head: Option<CharSpan>,
    /// Tail span for relate, in characters: START:END
    #[arg(long, value_parser = parse_span)]
    tail: Option<CharSpan>,
    /// Print JSON (always the case with --input).
    #[arg(long)]
    json: bool,
    /// `cpu` or `cuda[:N]`.
    #[arg(long, default_value = "cpu")]
    device: String,
}

fn parse_span(s: &str) -> std::result::Result<CharSpan, String> {
    let (a, b) = s.split_once(':').ok_or("expected START:END")?;
    Ok(CharSpan { start: a.trim().parse().map_err(|_| "bad START")?, end: b.trim().parse().map_err(|_| "bad END")? })
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Line {
    text: String,
    #[serde(default)]
    text_pair: Option<String>,
    #[serde(default)]
    head: Option<CharSpan>,
    #[serde(default)]
    tail: Option<CharSpan>,
}

enum Output {
    Label(Prediction),
    Tags(Tagging),
}

fn run_one(model: &Model, line: &Line) -> Result<Output> {
    match model.task.task_name() {
        "classify" => Ok(Output::Label(model.classify(&line.text, line.text_pair.as_deref())?)),
        "tag" => Ok(Output::Tags(model.tag(&line.text)?)),
        _ => match (line.head, line.tail) {
            (Some(h), Some(t)) => Ok(Output::Label(model.relate(&line.text, h, t)?)),
            _ => Err(Error::Input("a relate model needs \"head\" and \"tail\" spans".into())),
        },
    }
}

fn to_json(o: &Output) -> String {
    match o {
        Output::Label(p) => serde_json::to_string(p),
        Output::Tags(t) => serde_json::to_string(t),
    }
    .unwrap_or_default()
}

pub fn run(args: Args) -> Result<()> {
    let device = crate::device::select(&args.device)?;
    let model = Model::load(&args.model, &device)?;
    if let Some(path) = &args.input {
        let file = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
        for (i, line) in BufReader::new(file).lines().enumerate() {
            let where_ = format!("{}:{}", path.display(), i + 1);
            let line = line.map_err(|e| Error::Input(format!("{where_}: {e}")))?;
            if line.trim().is_empty() {
                continue;
            }
            let parsed: Line = serde_json::from_str(&line).map_err(|e| Error::Input(format!("{where_}: {e}")))?;
            let out = run_one(&model, &parsed).map_err(|e| Error::Input(format!("{where_}: {e}")))?;
            println!("{}", to_json(&out));
        }
        return Ok(());
    }
    let text = args.text.clone().ok_or_else(|| Error::Input("give a text or --input FILE.jsonl".into()))?;
    let line = Line { text, text_pair: args.pair.clone(), head: args.head, tail: args.tail };
    let out = run_one(&model, &line)?;
    if args.json {
        println!("{}", to_json(&out));
        return Ok(());
    }
    match out {
        Output::Label(p) => {
            println!("{}  ({:.3})", p.label, p.score);
            for (label, score) in &p.scores.0 {
                println!("  {label:<24} {score:.4}  {}", "█".repeat((score * 40.0).round() as usize));
            }
        }
        Output::Tags(t) => {
            println!("{:<16} {:>5} {:>5}  {:<12} {:>6}", "token", "start", "end", "tag", "score");
            for tok in &t.tokens {
                println!("{:<16} {:>5} {:>5}  {:<12} {:>6.3}", tok.text, tok.start, tok.end, tok.tag, tok.score);
            }
            println!("\nspans:");
            for s in &t.spans {
                println!("  {:<10} {:>4}..{:<4} {}", s.label, s.start, s.end, s.text);
            }
        }
    }
    Ok(())
}
