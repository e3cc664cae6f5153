use std::path::PathBuf;

use crate::encode::TextEncoder;
use crate::Result;

#[derive(clap::Args)]
pub struct Args {
    /// Model folder (config.json, tokenizer.json, model.safetensors).
    #[arg(long)]
    model: PathBuf,
    /// Texts to encode.
    #[arg(required = true)]
    texts: Vec<String>,
    /// `cpu` or `cuda[:N]`.
    #[arg(long, default_value = "cpu")]
    device: String,
    /// Print full vectors as JSON lines instead of a summary.
    #[arg(long)]
    json: bool,
}

pub fn run(args: Args) -> Result<()> {
    let device = crate::device::select(&args.device)?;
    let started = std::time::Instant::now();
    let encoder = TextEncoder::load(&args.model, &device)?;
    let loaded = started.elapsed();
    let texts: Vec<&str> = args.texts.iter().map(String::as_str).collect();
    let started = std::time::Instant::now();
    let out = encoder.embed(&texts)?;
    let ran = started.elapsed();
    for (text, e) in texts.iter().zip(&out) {
        if args.json {
            let line = serde_json::json!({
                "text": text,
                "tokens": e.encoded.tokens,
                "offsets": e.encoded.offsets,
                "last_hidden_state": e.last_hidden_state,
                "pooler_output": e.pooler_output,
            });
            println!("{line}");
            continue;
        }
        println!("{text}");
        println!("  tokens ({}): {}", e.encoded.len(), e.encoded.tokens.join(" "));
        let cls = &e.last_hidden_state[0];
        println!("  [CLS] state, first 6 of {}: {:.4?}", cls.len(), &cls[..6.min(cls.len())]);
        if let Some(p) = &e.pooler_output {
            println!("  pooler output, first 6: {:.4?}", &p[..6.min(p.len())]);
        }
    }
    if !args.json {
        let cfg = &encoder.config;
        eprintln!(
            "model: {} layers, hidden {}, {} heads; loaded in {:.0?}, encoded {} text(s) in {:.0?}",
            cfg.num_hidden_layers, cfg.hidden_size, cfg.num_attention_heads, loaded, texts.len(), ran
        );
    }
    Ok(())
}
